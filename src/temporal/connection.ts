/**
 * Connections to Temporal, built from config in one place: address, namespace, TLS / mTLS and API key
 * (Temporal Cloud) apply alike to the API's client and to every worker, and so does the payload codec.
 */
import { readFileSync } from 'node:fs';
import type { Interceptor } from '@grpc/grpc-js';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config';
import { dataConverterOf } from './codec';

type TemporalConfig = Config['temporal'];

function tlsOptions(t: TemporalConfig): TLSConfig | false {
  if (!t.tls) return false;
  return {
    serverNameOverride: t.tlsServerName,
    serverRootCACertificate: t.tlsCaPath ? readFileSync(t.tlsCaPath) : undefined,
    clientCertPair: t.tlsCertPath && t.tlsKeyPath ? { crt: readFileSync(t.tlsCertPath), key: readFileSync(t.tlsKeyPath) } : undefined,
  };
}

/**
 * A client for request/response paths (the API). It connects lazily so the API can start, and answer
 * 503, while Temporal is down; gRPC retries are bounded so a request fails fast instead of hanging.
 * `observers` wrap the retries, so they see each call's final outcome (the API counts failures).
 */
export function createClient(t: TemporalConfig, observers: Interceptor[] = []): Client {
  const connection = Connection.lazy({
    address: t.address,
    tls: tlsOptions(t),
    apiKey: t.apiKey,
    connectTimeout: '3s',
    interceptors: [...observers, makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 3, initialIntervalMs: () => 100 }))],
  });
  return new Client({ connection, namespace: t.namespace, dataConverter: dataConverterOf(t.payloads) });
}

/** The one native connection a worker process shares across all its workers. */
export function connectWorker(t: TemporalConfig): Promise<NativeConnection> {
  return NativeConnection.connect({
    address: t.address,
    tls: tlsOptions(t),
    apiKey: t.apiKey,
    grpcCompression: { codec: t.grpcCompression },
  });
}

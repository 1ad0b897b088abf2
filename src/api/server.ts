/** The API process: one lazy Temporal client, the Express app, and a clean stop on SIGTERM. */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createBlobStore } from '../blobs';
import { DEFAULT_MAX_PENDING } from '../conversations/contract';
import { tenantPolicy, webhookSecretOf, type Config } from '../config';
import type { Logger } from '../logger';
import { createClient } from '../temporal/connection';
import { ConversationClient } from '../clients/conversations/client';
import { JobClient } from '../clients/jobs/client';
import { PoolClient } from '../clients/pools';
import { createApp } from './app';
import { isLoopback } from './auth';
import { createApiMetrics } from './metrics';
import { Problem, rawProblemResponse, type ProblemCode } from './problems';
import { API_LISTENING } from './ready-line';

const PARSER_PROBLEMS: Record<string, ProblemCode> = {
  HPE_HEADER_OVERFLOW: 'headers-too-large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'payload-too-large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request-timeout',
};

/**
 * Requests Node's HTTP parser rejects (a control character in a header, a broken request line, headers
 * over the size limit) never reach Express. Answer them as problems too, where Node would send a bare
 * status line; like Node, write only if no response has started on the connection, then close it.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    socket.write(rawProblemResponse(new Problem(PARSER_PROBLEMS[err.code ?? ''] ?? 'invalid-request', err.message)));
  }
  socket.destroy();
}

export async function startApi(config: Config, log: Logger): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  if (config.api.keys.length === 0 && !isLoopback(config.api.host)) {
    throw new Error(`SWITCHYARD_API_KEYS is empty: the API runs without keys only on loopback, not on ${config.api.host}`);
  }
  const metrics = createApiMetrics();
  const temporal = createClient(config.temporal, [metrics.grpcInterceptor]);
  const blobs = createBlobStore(config.blobs);
  // What the job and conversation clients both need: where links point, queue names, tenants' policies, blobs.
  const shared = {
    namespace: config.temporal.namespace,
    uiUrl: config.temporal.uiUrl,
    taskQueuePrefix: config.temporal.taskQueuePrefix,
    heartbeatTimeoutMs: config.limits.heartbeatTimeoutMs,
    tenantPolicy: (tenant: string) => tenantPolicy(config.tenants, tenant),
    blobs,
  };
  const jobs = new JobClient(temporal, shared);
  const pools = new PoolClient(temporal, { taskQueuePrefix: config.temporal.taskQueuePrefix, pools: config.pools });
  metrics.observePools(pools, Object.keys(config.pools), log);
  const conversations = new ConversationClient(temporal, {
    ...shared,
    defaults: { pipeline: config.chat.pipeline, maxPending: DEFAULT_MAX_PENDING },
    pools: Object.keys(config.pools),
    webhookSecretOf: (tenant) => webhookSecretOf(config, tenant),
    outbound: config.outbound,
  });
  const app = createApp({ config, jobs, conversations, blobs, log, metrics });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.once('error', reject);
    s.on('clientError', answerClientError);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.api.port;
  const url = `http://${config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host}:${port}`;
  log.log('info', API_LISTENING, {
    url,
    auth: config.api.keys.length ? `${config.api.keys.length} API keys` : 'none (loopback only; every caller is tenant "default")',
  });
  return {
    server,
    url,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await temporal.connection.close();
    },
  };
}

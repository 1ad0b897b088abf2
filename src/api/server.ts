/** The API process: one lazy Temporal client, the Express app, and a clean stop on SIGTERM. */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createBlobStore } from '../blobs';
import { DEFAULT_MAX_PENDING } from '../conversations/contract';
import { tenantPolicy, webhookSecretOf, type Config } from '../config';
import type { Logger } from '../logger';
import { createClient } from '../temporal/connection';
import { BatchClient } from '../clients/batches/client';
import { ConversationClient } from '../clients/conversations/client';
import { JobClient } from '../clients/jobs/client';
import { PoolClient } from '../clients/pools';
import { serveMetrics } from '../scaling/autoscaler-metrics';
import { createApp } from './app';
import { offLoopbackProblems } from './auth';
import { createApiMetrics } from './metrics';
import { Problem, rawProblemResponse, type ProblemCode } from './problems';
import { API_LISTENING } from './ready-line';

const PARSER_PROBLEMS: Record<string, ProblemCode> = {
  HPE_HEADER_OVERFLOW: 'headers-too-large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'payload-too-large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request-timeout',
};

/** How often Node looks for requests over their timeout: a timeout fires within this of its deadline. */
const TIMEOUT_CHECK_MS = 1000;

/**
 * Requests Node's HTTP parser rejects (a control character in a header, a broken request line, headers
 * over the size limit) or that take longer than the request timeout never reach Express, or never finish
 * there. Answer them as problems too, where Node would send a bare status line; like Node, write only if
 * the request has not been answered — a body still arriving after an early answer (a 413 before reading
 * it) is not answered twice — then close the connection.
 */
function answerClientErrors(server: Server): void {
  const lastResponse = new WeakMap<Duplex, ServerResponse>();
  server.on('request', (_req, res: ServerResponse) => lastResponse.set(res.req.socket, res));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const last = lastResponse.get(socket);
    // The answer to a request that has fully arrived is not this one's: the error is about a new request.
    const answered = last !== undefined && !last.req.complete && last.headersSent;
    if (socket.writable && !answered) {
      socket.write(rawProblemResponse(new Problem(PARSER_PROBLEMS[err.code ?? ''] ?? 'invalid-request', err.message)));
    }
    socket.destroy();
  });
}

export async function startApi(config: Config, log: Logger): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const offLoopback = offLoopbackProblems(config);
  if (offLoopback.length) throw new Error(offLoopback.join('\n'));
  const metrics = createApiMetrics();
  const temporal = createClient(config.temporal, [metrics.grpcInterceptor]);
  const blobs = createBlobStore(config.blobs);
  // What the job, conversation and batch clients all need: where links point, queue names, tenants' policies, blobs.
  const shared = {
    namespace: config.temporal.namespace,
    uiUrl: config.temporal.uiUrl,
    taskQueuePrefix: config.temporal.taskQueuePrefix,
    heartbeatTimeoutMs: config.limits.heartbeatTimeoutMs,
    tenantPolicy: (tenant: string) => tenantPolicy(config.tenants, tenant),
    blobs,
  };
  const jobs = new JobClient(temporal, { ...shared, maxInputBytes: config.limits.maxInputBytes });
  const pools = new PoolClient(temporal, { taskQueuePrefix: config.temporal.taskQueuePrefix, pools: config.pools });
  metrics.observePools(pools, Object.keys(config.pools), log);
  const conversations = new ConversationClient(temporal, {
    ...shared,
    defaults: { pipeline: config.chat.pipeline, maxPending: DEFAULT_MAX_PENDING },
    pools: Object.keys(config.pools),
    webhookSecretOf: (tenant) => webhookSecretOf(config, tenant),
    outbound: config.outbound,
  });
  const batches = new BatchClient(temporal, {
    ...shared,
    pools: config.pools,
    batches: config.batches,
    limits: config.limits,
    admitOpenJob: (tenant, start, opened) => jobs.admitOpenJob(tenant, start, opened),
  });
  const app = createApp({ config, jobs, conversations, batches, blobs, log, metrics });
  // Metrics name tenants and pools: served apart from the API, on an address of their own (loopback by default).
  const metricsServer = await serveMetrics(config.api.metricsAddress, metrics.registry);
  const timeoutMs = config.api.requestTimeoutMs;
  const server = createServer(
    { requestTimeout: timeoutMs, headersTimeout: timeoutMs, connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, timeoutMs) },
    app,
  );
  answerClientErrors(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.api.port, config.api.host, resolve);
  });
  const urlOf = (s: Server, host: string) => {
    const address = s.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  };
  const url = urlOf(server, config.api.host);
  const metricsHost = config.api.metricsAddress.slice(0, config.api.metricsAddress.lastIndexOf(':'));
  log.log('info', API_LISTENING, {
    url,
    metrics: `${urlOf(metricsServer, metricsHost)}/metrics`,
    auth: config.api.keys.length ? `${config.api.keys.length} API keys` : 'none (loopback only; every caller is tenant "default")',
  });
  return {
    server,
    url,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      metricsServer.close();
      metricsServer.closeAllConnections();
      await temporal.connection.close();
    },
  };
}

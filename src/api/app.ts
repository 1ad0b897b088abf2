/** The Express app, built without listening so tests and the server share it. */
import express from 'express';
import helmet from 'helmet';
import type { BlobStore } from '../blobs/store';
import { tenantPolicy, type Config } from '../config';
import { buildSubmitSchema, type DocumentJobSpec } from '../jobs/spec';
import type { Logger } from '../logger';
import type { BatchClient } from '../clients/batches/client';
import type { ConversationClient } from '../clients/conversations/client';
import type { JobClient } from '../clients/jobs/client';
import { PoolClient } from '../clients/pools';
import { payloadCodecsOf } from '../temporal/codec';
import { allowDocumentedMethods } from './allowed-methods';
import { authenticate, requireOperator, requireOperatorFor, requireTenant } from './auth';
import { declaredBodyLimit, jsonDepthLimit } from './body';
import { codecCors, codecRouter, uiOrigins } from './codec';
import { documentSourceOf } from './document-jobs';
import { docsUi } from './docs-ui';
import { DocumentLibrary } from './documents';
import { errorHandler } from './error-problems';
import { type ApiMetrics, createApiMetrics } from './metrics';
import { buildOpenApi } from './openapi';
import { Problem } from './problems';
import { replicaQuota, tenantRateLimit } from './rate-limit';
import { batchesRouter } from './routes/batches';
import { conversationsRouter } from './routes/conversations';
import { documentsRouter } from './routes/documents';
import { failuresRouter } from './routes/failures';
import { jobDataRouter } from './routes/job-data';
import { jobRunsRouter } from './routes/job-runs';
import { jobsRouter } from './routes/jobs';
import { poolsRouter } from './routes/pools';

export interface AppDeps {
  config: Pick<Config, 'api' | 'limits' | 'pools' | 'documents' | 'batches' | 'outbound' | 'tenants' | 'webhookSecret'> & {
    temporal: Pick<Config['temporal'], 'namespace' | 'taskQueuePrefix' | 'uiUrl' | 'payloads'>;
  };
  jobs: JobClient;
  conversations: ConversationClient;
  batches: BatchClient;
  /** Uploaded documents and document jobs' data (results). */
  blobs: BlobStore;
  log: Logger;
  /** The app's metrics; its own registry when not given (the server passes the one its Temporal client reports to). */
  metrics?: ApiMetrics;
}

export function createApp({ config, jobs, conversations, batches, blobs, log, metrics = createApiMetrics() }: AppDeps): express.Express {
  const pools = Object.keys(config.pools);
  const documents = new DocumentLibrary(blobs);
  const submitSchema = buildSubmitSchema(config.limits, pools);
  const openapi = buildOpenApi(submitSchema, pools, config.temporal.namespace);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // An API of JSON: nothing it answers may load, run or be framed by anything (/docs sets its own policy).
  app.use(helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }));
  app.use((req, res, next) => {
    const start = process.hrtime.bigint();
    metrics.trackRoute(req, res);
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      metrics.requestFinished(req, res, ms / 1000);
      log.log(res.statusCode >= 500 ? 'error' : 'info', 'request', {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        tenant: res.locals.tenant,
      });
    });
    next();
  });
  // Before the methods check, which would answer the Temporal UI's preflight without CORS.
  app.use('/codec', codecCors(uiOrigins(config.temporal.uiUrl)));
  // Before authentication: which methods a path has is in the public document anyway.
  app.use(allowDocumentedMethods(openapi.paths as Record<string, object>));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const namespace = config.temporal.namespace;
    try {
      await jobs.temporal.connection.withDeadline(Date.now() + 2000, () => jobs.temporal.workflowService.describeNamespace({ namespace }));
      res.json({ status: 'ready', temporal: 'reachable', namespace });
    } catch (err) {
      // The reason goes to the log, not to unauthenticated callers (it names internal addresses).
      log.log('warn', 'not ready: Temporal unreachable', { error: String((err as Error).message) });
      res.status(503).set('Retry-After', '5').json({ status: 'unready', temporal: 'unreachable', namespace });
    }
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use('/docs', docsUi());

  // Authenticate before reading a body: unknown callers get a 401, callers in the wrong role a 403,
  // not a parse of what they sent. Tenants own jobs; operators manage the pools all tenants share.
  app.use('/v1', authenticate({ tenants: config.api.keys, operators: config.api.operatorKeys }));
  app.use(
    '/v1',
    tenantRateLimit((tenant) => replicaQuota(tenantPolicy(config.tenants, tenant).requestsPerSecond, config.api.replicas)),
  );
  app.use('/v1/jobs', requireTenant);
  app.use('/v1/documents', requireTenant);
  app.use('/v1/failures', requireTenant);
  app.use('/v1/conversations', requireTenant);
  app.use('/v1/batches', requireTenant);
  app.use('/v1/pools', requireOperator);
  // Uploads stream into the blob store as they arrive: before the JSON parser, which would read them whole.
  app.use('/v1/documents', documentsRouter(documents, config.documents.maxBytes));
  app.use('/v1/batches', batchesRouter({ batches, documents, config, pools }));
  // Not strict: a body that is valid JSON but no object (null, "text", 42) is an invalid request, not malformed JSON.
  app.use('/v1', declaredBodyLimit(config.api.bodyLimitBytes));
  app.use('/v1', express.json({ limit: config.api.bodyLimitBytes, strict: false, type: ['application/json', 'application/*+json'] }));
  app.use('/v1', jsonDepthLimit);
  const documentSource = (tenant: string, spec: DocumentJobSpec) => documentSourceOf(tenant, spec, { documents, config });
  app.use(
    '/v1/jobs',
    jobRunsRouter(jobs, pools),
    jobsRouter(jobs, submitSchema, pools, documentSource, metrics.jobSubmitted),
    jobDataRouter(jobs),
  );
  app.use('/v1/failures', failuresRouter(jobs, pools));
  app.use('/v1/conversations', conversationsRouter(conversations, pools));
  const poolClient = new PoolClient(jobs.temporal, { taskQueuePrefix: config.temporal.taskQueuePrefix, pools: config.pools });
  app.use('/v1/pools', poolsRouter(poolClient));
  // Decoded payloads are every tenant's data: operators only.
  app.use(
    '/codec',
    authenticate({ tenants: config.api.keys, operators: config.api.operatorKeys }),
    requireOperatorFor('Decoding payloads needs an operator key (SWITCHYARD_OPERATOR_KEYS)'),
    codecRouter(payloadCodecsOf(config.temporal.payloads), config.temporal.namespace),
  );
  app.use((req, _res, next) => next(new Problem('not-found', `No route ${req.method} ${req.path}`)));
  app.use(errorHandler((fields) => log.log('error', String(fields.msg), fields)));
  return app;
}

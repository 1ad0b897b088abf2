/**
 * The API's Prometheus metrics, on a registry of its own per app (never prom-client's global one, so
 * two apps in one process do not share counts). Labels are bounded: route templates, never raw paths.
 */
import { InterceptingCall, type Interceptor, status as GrpcStatus } from '@grpc/grpc-js';
import type { Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SubmitRequest } from '../jobs/spec';
import type { Logger } from '../logger';
import { heldBackSchema } from '../scaling/signal';
import type { PoolResource } from '../clients/pools';

/** Requests no route matched (unknown paths, and requests refused by authentication before routing). */
const UNMATCHED = 'unmatched';
const HELD_BACK_REASONS = heldBackSchema.unwrap().options;

/** Reads a pool as GET /v1/pools/:name shows it (PoolClient). */
export interface PoolReader {
  get(name: string): Promise<PoolResource | null>;
}

export function createApiMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Histogram({
    name: 'switchyard_http_request_duration_seconds',
    help: 'HTTP requests by route template, method and status, with their latency',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobsSubmitted = new Counter({
    name: 'switchyard_jobs_submitted_total',
    help: 'Jobs created (202), by type, tenant, priority and pool; idempotent repeats are not counted',
    labelNames: ['type', 'tenant', 'priority', 'pool'] as const,
    registers: [registry],
  });
  const temporalErrors = new Counter({
    name: 'switchyard_temporal_client_errors_total',
    help: 'Temporal calls that failed with a gRPC error after retries, by operation (RPC method) and gRPC status (e.g. UNAVAILABLE)',
    labelNames: ['operation', 'code'] as const,
    registers: [registry],
  });

  return {
    registry,

    /**
     * Remembers the route template as Express matches it: `req.route` is set while `req.baseUrl` is still
     * the router's mount point; an error thrown later restores `baseUrl` before the response is sent.
     */
    trackRoute(req: Request, res: Response): void {
      let route: unknown;
      Object.defineProperty(req, 'route', {
        configurable: true,
        enumerable: true,
        get: () => route,
        set(value: { path?: unknown } | undefined) {
          route = value;
          if (typeof value?.path === 'string') res.locals.routeTemplate = `${req.baseUrl}${value.path}`.replace(/(.)\/$/, '$1');
        },
      });
    },

    requestFinished(req: Request, res: Response, seconds: number): void {
      const route = (res.locals.routeTemplate as string | undefined) ?? UNMATCHED;
      requests.observe({ route, method: req.method, status: String(res.statusCode) }, seconds);
    },

    jobSubmitted: (tenant: string, spec: SubmitRequest): void => {
      jobsSubmitted.inc({ type: spec.type, tenant, priority: String(spec.priority), pool: spec.pool });
    },

    /**
     * Per pool, read at scrape time: the load signal and the policy's answer GET /v1/pools/:name shows.
     * Every gauge of one scrape shares one read. A pool that cannot be read is logged and left out of that
     * scrape; the other pools and metrics are still served.
     */
    observePools(pools: PoolReader, names: readonly string[], log: Logger): void {
      let reading: Promise<PoolResource[]> | null = null;
      const readPool = (name: string) =>
        pools.get(name).catch((err: unknown) => {
          log.log('warn', 'metrics: cannot read the pool', { pool: name, error: (err as Error)?.message ?? String(err) });
          return null;
        });
      // prom-client collects every metric of a scrape at once: the first gauge starts the read, the rest join it.
      const read = () =>
        (reading ??= Promise.all(names.map(readPool))
          .then((all) => all.filter((p): p is PoolResource => p !== null))
          .finally(() => (reading = null)));
      const perPool = <L extends string>(name: string, help: string, labelNames: L[], set: (gauge: Gauge<L>, pool: PoolResource) => void) =>
        new Gauge<L>({
          name,
          help,
          labelNames,
          registers: [registry],
          async collect() {
            const current = await read();
            this.reset();
            for (const pool of current) set(this, pool);
          },
        });
      perPool(
        'switchyard_pool_desired_workers',
        "Worker processes the pool's scaling policy wants for the load signal now, read at scrape time. Stateless: no stabilization window (KEDA's HPA or the autoscaler applies one), busy slots estimated",
        ['pool'],
        (g, p) => g.set({ pool: p.name }, p.scaling.desiredWorkers),
      );
      perPool(
        'switchyard_pool_workers_polling',
        'Worker processes that polled the pool recently, as the Temporal server saw them',
        ['pool'],
        (g, p) => g.set({ pool: p.name }, p.scaling.workersPolling),
      );
      perPool('switchyard_pool_backlog', "Inference calls waiting in the pool's task queue (approximate)", ['pool'], (g, p) => {
        if (p.queue) g.set({ pool: p.name }, p.queue.backlog);
      });
      perPool('switchyard_pool_backlog_age_seconds', 'How long the oldest waiting call of the pool has waited', ['pool'], (g, p) => {
        if (p.queue) g.set({ pool: p.name }, p.queue.backlogAgeMs / 1000);
      });
      perPool(
        'switchyard_pool_held_back',
        'The limit holding waiting calls back (1) so that more workers would not run them sooner; 0 for the others',
        ['pool', 'reason'],
        (g, p) => {
          for (const reason of HELD_BACK_REASONS) g.set({ pool: p.name, reason }, p.scaling.signal.heldBack === reason ? 1 : 0);
        },
      );
    },

    /** Outermost on the Temporal connection, so a call retried and then successful is no error. */
    grpcInterceptor: ((options, nextCall) =>
      new InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          next(metadata, {
            onReceiveStatus(status, nextStatus) {
              if (status.code !== GrpcStatus.OK) {
                const operation = options.method_definition.path.split('/').pop() ?? 'unknown';
                temporalErrors.inc({ operation, code: GrpcStatus[status.code] ?? String(status.code) });
              }
              nextStatus(status);
            },
          });
        },
      })) as Interceptor,
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;

/**
 * The API's Prometheus metrics, on a registry of its own per app (never prom-client's global one, so
 * two apps in one process do not share counts). Labels are bounded: route templates, never raw paths.
 */
import { InterceptingCall, type Interceptor, status as GrpcStatus } from '@grpc/grpc-js';
import type { Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { SubmitRequest } from '../jobs/spec';

/** Requests no route matched (unknown paths, and requests refused by authentication before routing). */
const UNMATCHED = 'unmatched';

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

    jobSubmitted(tenant: string, spec: SubmitRequest): void {
      jobsSubmitted.inc({ type: spec.type, tenant, priority: String(spec.priority), pool: spec.pool });
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

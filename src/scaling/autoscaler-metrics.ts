/**
 * The process autoscaler's own Prometheus metrics: per pool, what its policy wants — with the
 * stabilization window, which the API's stateless `switchyard_pool_desired_workers` cannot apply — and
 * how many worker processes it runs. Read from the actuator at scrape time.
 */
import { createServer, type Server } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { PoolStatus } from './process-actuator';

export function autoscalerRegistry(status: () => PoolStatus[]): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'switchyard_autoscaler_desired_workers',
    help: "Worker processes the pool's scaling policy wants, stabilization window included (the process autoscaler's decision)",
    labelNames: ['pool'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of status()) if (s.desiredWorkers !== null) this.set({ pool: s.pool }, s.desiredWorkers);
    },
  });
  new Gauge({
    name: 'switchyard_autoscaler_workers',
    help: "The pool's worker processes the autoscaler runs, a draining one included",
    labelNames: ['pool'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of status()) this.set({ pool: s.pool }, s.workers);
    },
  });
  return registry;
}

/** Serves `registry` at http://<address>/metrics. */
export async function serveMetrics(address: string, registry: Registry): Promise<Server> {
  const at = address.lastIndexOf(':');
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A bracketed IPv6 host ([::]) is what the address holds; listen wants it bare.
    server.listen(Number(address.slice(at + 1)), address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), resolve);
  });
  return server;
}

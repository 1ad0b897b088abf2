/**
 * The `process` actuator: local `switchyard worker --pool <name>` processes that follow each pool's
 * scaling policy. Every tick it reads the pool's load signal the way GET /v1/pools/:name does, lets
 * `decide` (with the stabilization state kept here) say how many workers the pool wants, and starts or
 * stops processes to match. Scale-up starts all missing workers at once; scale-down sends SIGTERM to one
 * process at a time and waits for it to drain and exit, so no running inference is cancelled. A worker
 * that crashes is restarted by its supervisor.
 */
import type { PoolConfig } from '../config';
import type { Logger } from '../logger';
import type { PoolClient } from '../temporal/pools';
import { supervise, type Supervised } from '../cli/supervisor';
import { decide, NO_HISTORY, type PolicyState } from './policy';
import { scalingSettingsOf } from './signal';

export const TICK_MS = 1000;

interface PoolProcesses {
  name: string;
  pool: PoolConfig;
  running: { worker: Supervised; metricsPort: number | null }[];
  state: PolicyState;
  lastDesired: number | null;
  /** A scale-down in progress: the pool is left alone until its worker has drained. */
  draining: Promise<void> | null;
  started: number;
}

export interface ProcessActuatorOptions {
  pools: Record<string, PoolConfig>;
  poolClient: PoolClient;
  env: NodeJS.ProcessEnv;
  /**
   * With SWITCHYARD_WORKER_METRICS_ADDRESS set, each worker gets its own port from it upwards (processes
   * on one machine cannot share one); a stopped worker's port is reused by the next one started.
   */
  metricsAddress: string | undefined;
  log: Logger;
  /** Where the workers' output lines go. */
  print: (line: string) => void;
}

export class ProcessActuator {
  private readonly pools: PoolProcesses[];
  private readonly ports: MetricsPorts | null;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ProcessActuatorOptions) {
    this.pools = Object.entries(opts.pools).map(([name, pool]) => ({
      name,
      pool,
      running: [],
      state: NO_HISTORY,
      lastDesired: null,
      draining: null,
      started: 0,
    }));
    this.ports = opts.metricsAddress ? new MetricsPorts(opts.metricsAddress) : null;
  }

  start(): void {
    const loop = () => {
      this.ticking = this.tick().finally(() => {
        if (this.timer) this.timer = setTimeout(loop, TICK_MS);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  /**
   * Stops ticking and drains every worker in parallel (nothing is left to take their work). Each is marked
   * stopping at once, so one that exits on a terminal's Ctrl-C of its own is not restarted.
   */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const stopped = Promise.all(this.pools.flatMap((p) => [p.draining, ...p.running.splice(0).map((r) => r.worker.stop())]));
    await this.ticking;
    await stopped;
  }

  private async tick(): Promise<void> {
    await Promise.all(this.pools.map((p) => this.scalePool(p)));
  }

  private async scalePool(p: PoolProcesses): Promise<void> {
    let resource;
    try {
      resource = await this.opts.poolClient.get(p.name);
    } catch (err) {
      this.opts.log.log('warn', 'autoscale: cannot read the pool signal', { pool: p.name, error: (err as Error).message });
      return;
    }
    if (!resource || this.timer === null) return;
    const now = Date.now();
    // Busy slots stay null: the policy estimates them from the dispatch rate and the polling workers.
    const decision = decide(resource.scaling.signal, scalingSettingsOf(p.pool), p.state, now);
    p.state = decision.state;
    const desired = decision.desiredWorkers;
    const running = p.running.length;
    if (desired !== p.lastDesired || (desired !== running && !p.draining)) {
      this.opts.log.log('info', 'autoscale decision', { pool: p.name, running, desired, draining: p.draining !== null, reason: decision.reason });
    }
    p.lastDesired = desired;
    if (p.draining) return;
    if (desired > running) {
      for (let i = running; i < desired; i++) this.startWorker(p);
    } else if (desired < running) {
      p.draining = this.stopOneWorker(p).finally(() => (p.draining = null));
    }
  }

  private startWorker(p: PoolProcesses): void {
    const metricsPort = this.ports?.take() ?? null;
    const env = { ...this.opts.env };
    delete env.SWITCHYARD_WORKER_METRICS_ADDRESS;
    if (metricsPort !== null) env.SWITCHYARD_WORKER_METRICS_ADDRESS = this.ports!.address(metricsPort);
    const name = `pool:${p.name}#${++p.started}`;
    const worker = supervise(name, ['worker', '--pool', p.name], env, this.opts.print);
    p.running.push({ worker, metricsPort });
    this.opts.log.log('info', 'autoscale: worker started', {
      pool: p.name,
      worker: name,
      workers: p.running.length,
      ...(metricsPort !== null ? { metrics: `http://${this.ports!.address(metricsPort)}/metrics` } : {}),
    });
  }

  /** The newest worker is stopped first: SIGTERM, then it finishes its in-flight calls and exits. */
  private async stopOneWorker(p: PoolProcesses): Promise<void> {
    const last = p.running.pop()!;
    this.opts.log.log('info', 'autoscale: draining worker', { pool: p.name, worker: last.worker.name, workers: p.running.length + 1 });
    await last.worker.stop();
    if (last.metricsPort !== null) this.ports!.release(last.metricsPort);
    this.opts.log.log('info', 'autoscale: worker stopped', { pool: p.name, worker: last.worker.name, workers: p.running.length });
  }
}

/** Ports from the configured metrics address upwards, lowest free first. */
class MetricsPorts {
  private readonly host: string;
  private readonly base: number;
  private readonly used = new Set<number>();

  constructor(address: string) {
    const at = address.lastIndexOf(':');
    this.host = address.slice(0, at);
    this.base = Number(address.slice(at + 1));
  }

  take(): number {
    let port = this.base;
    while (this.used.has(port)) port++;
    if (port > 65535) throw new Error(`SWITCHYARD_WORKER_METRICS_ADDRESS: no free port from ${this.base} for another worker`);
    this.used.add(port);
    return port;
  }

  release(port: number): void {
    this.used.delete(port);
  }

  address(port: number): string {
    return `${this.host}:${port}`;
  }
}

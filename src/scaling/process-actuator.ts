/**
 * The `process` actuator: local `switchyard worker --pool <name>` processes that follow each pool's
 * scaling policy. Every tick it reads the pool's load signal the way GET /v1/pools/:name does, lets
 * `decide` (with the stabilization state kept here) say how many workers the pool wants, and starts or
 * stops processes to match. The busy slots the policy needs come from the workers' own metrics: every
 * worker serves them on a port of its own, read each tick (./busy-slots.ts). Scale-up starts all missing
 * workers at once; scale-down sends SIGTERM to one process at a time and waits for it to drain and exit,
 * so no running inference is cancelled. A worker that crashes is restarted (src/local/processes.ts).
 */
import type { PoolConfig } from '../config';
import type { Logger } from '../logger';
import type { PoolClient } from '../clients/pools';
import { startSwitchyard, stopGraceFor, type LocalProcess } from '../local/processes';
import { pickFreePort } from '../local/dev-server';
import { poolBusySlots } from './busy-slots';
import { decide, NO_HISTORY, type PolicyState } from './policy';
import { scalingSettingsOf } from './signal';

export const TICK_MS = 1000;

interface RunningWorker {
  worker: LocalProcess;
  /** Where it serves its metrics (host:port). */
  metricsAddress: string;
  /** It has logged that it polls; before that it runs nothing and its endpoint may not be up. */
  ready: boolean;
}

interface PoolProcesses {
  name: string;
  pool: PoolConfig;
  running: RunningWorker[];
  state: PolicyState;
  lastDesired: number | null;
  /** A scale-down in progress: the pool is left alone until its worker has drained. */
  draining: Promise<void> | null;
  started: number;
  /** Whether the last tick could read every worker's busy slots (a change is logged). */
  slotsKnown: boolean;
}

/** What the autoscaler's own metrics show for a pool. */
export interface PoolStatus {
  pool: string;
  /** The policy's last answer, stabilization window included; null before the first tick. */
  desiredWorkers: number | null;
  /** Worker processes running, a draining one included. */
  workers: number;
}

export interface ProcessActuatorOptions {
  pools: Record<string, PoolConfig>;
  poolClient: PoolClient;
  env: NodeJS.ProcessEnv;
  /** SWITCHYARD_SHUTDOWN_GRACE_MS: how long a stopping worker drains before it is forced. */
  shutdownGraceMs: number;
  /**
   * SWITCHYARD_WORKER_METRICS_ADDRESS: the autoscaler's own metrics; its workers take the ports above it
   * (processes on one machine cannot share one). Unset, each worker gets a free loopback port.
   */
  metricsAddress: string | undefined;
  log: Logger;
  /** Where the workers' output lines go. */
  print: (line: string) => void;
}

export class ProcessActuator {
  private readonly pools: PoolProcesses[];
  private readonly addresses: WorkerMetricsAddresses;
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
      slotsKnown: true,
    }));
    this.addresses = new WorkerMetricsAddresses(opts.metricsAddress);
  }

  status(): PoolStatus[] {
    return this.pools.map((p) => ({ pool: p.name, desiredWorkers: p.lastDesired, workers: p.running.length + (p.draining ? 1 : 0) }));
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
    const stopped = Promise.all(
      this.pools.flatMap((p) => [p.draining ?? Promise.resolve(), ...p.running.splice(0).map((r) => r.worker.stop())]),
    );
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
    const busySlots = await this.busySlots(p, resource.taskQueue);
    const signal = { ...resource.scaling.signal, busySlots };
    const decision = decide(signal, scalingSettingsOf(p.pool), p.state, Date.now());
    p.state = decision.state;
    const desired = decision.desiredWorkers;
    const running = p.running.length;
    if (desired !== p.lastDesired || (desired !== running && !p.draining)) {
      this.opts.log.log('info', 'autoscale decision', {
        pool: p.name,
        running,
        desired,
        draining: p.draining !== null,
        reason: decision.reason,
      });
    }
    p.lastDesired = desired;
    if (p.draining) return;
    if (desired > running) {
      const addresses = await Promise.all(Array.from({ length: desired - running }, () => this.addresses.take()));
      // stop() may have come while the ports were picked: it must not miss a worker started after it.
      for (const address of addresses) {
        if (this.timer === null) this.addresses.release(address);
        else this.startWorker(p, address);
      }
    } else if (desired < running) {
      p.draining = this.stopOneWorker(p).finally(() => (p.draining = null));
    }
  }

  /**
   * The sum of the ready workers' busy slots, or null — the policy then estimates them — when one cannot
   * be read (it crashed and is restarting, or does not answer within the scrape timeout).
   */
  private async busySlots(p: PoolProcesses, taskQueue: string): Promise<number | null> {
    const read = await poolBusySlots(
      p.running.filter((r) => r.ready).map((r) => r.metricsAddress),
      taskQueue,
    );
    if ((read.busySlots !== null) !== p.slotsKnown) {
      p.slotsKnown = read.busySlots !== null;
      if (read.busySlots === null)
        this.opts.log.log('warn', 'autoscale: cannot read busy slots, estimating them', { pool: p.name, reason: read.reason });
      else this.opts.log.log('info', 'autoscale: busy slots read again', { pool: p.name });
    }
    return read.busySlots;
  }

  private startWorker(p: PoolProcesses, metricsAddress: string): void {
    const env = { ...this.opts.env, SWITCHYARD_WORKER_METRICS_ADDRESS: metricsAddress };
    const name = `pool:${p.name}#${++p.started}`;
    const args = ['worker', '--pool', p.name];
    const worker = startSwitchyard(args, {
      name,
      env,
      print: this.opts.print,
      restart: true,
      stopGraceMs: stopGraceFor(args, this.opts.shutdownGraceMs),
    });
    const running: RunningWorker = { worker, metricsAddress, ready: false };
    // Rejected only when it is stopped before it polled: then it is no longer counted anyway.
    void worker.ready.then(
      () => (running.ready = true),
      () => undefined,
    );
    p.running.push(running);
    this.opts.log.log('info', 'autoscale: worker started', {
      pool: p.name,
      worker: name,
      workers: p.running.length,
      metrics: `http://${metricsAddress}/metrics`,
    });
  }

  /** The newest worker is stopped first: SIGTERM, then it finishes its in-flight calls and exits. */
  private async stopOneWorker(p: PoolProcesses): Promise<void> {
    const last = p.running.pop()!;
    this.opts.log.log('info', 'autoscale: draining worker', { pool: p.name, worker: last.worker.name, workers: p.running.length + 1 });
    await last.worker.stop();
    this.addresses.release(last.metricsAddress);
    this.opts.log.log('info', 'autoscale: worker stopped', { pool: p.name, worker: last.worker.name, workers: p.running.length });
  }
}

/**
 * A metrics address per worker. With a configured address (the autoscaler's own) the workers take the
 * ports above it, lowest free first, so a stopped worker's port goes to the next one started and a scrape
 * config can list a fixed range. Without one, each gets a free loopback port: the autoscaler still reads
 * its busy slots, and nothing is served beyond the machine that was not asked for.
 */
class WorkerMetricsAddresses {
  private readonly used = new Set<string>();
  private readonly base: { host: string; port: number } | null;

  constructor(address: string | undefined) {
    const at = address?.lastIndexOf(':') ?? -1;
    this.base = address ? { host: address.slice(0, at), port: Number(address.slice(at + 1)) } : null;
  }

  async take(): Promise<string> {
    let address: string;
    if (this.base) {
      let port = this.base.port + 1;
      while (this.used.has(`${this.base.host}:${port}`)) port++;
      if (port > 65535) throw new Error(`SWITCHYARD_WORKER_METRICS_ADDRESS: no free port above ${this.base.port} for another worker`);
      address = `${this.base.host}:${port}`;
    } else {
      do address = `127.0.0.1:${await pickFreePort()}`;
      while (this.used.has(address));
    }
    this.used.add(address);
    return address;
  }

  release(address: string): void {
    this.used.delete(address);
  }
}

/**
 * One BullMQ measurement, whole: its own Redis and worker processes (./side.ts), a warm-up, then `jobs`
 * jobs with `inFlight` outstanding from the producer (closed loop), what they cost, and everything
 * stopped again. For scenarios that set BullMQ beside Switchyard at one load.
 */
import { measureCost } from '../lib/cost';
import { assertNoErrors, closedLoop, completionRate } from '../lib/load';
import type { Appendfsync } from '../lib/redis';
import { round, summarize } from '../lib/stats';
import { startBullmqSide } from './side';

export interface BullmqRunOptions {
  /** When Redis fsyncs its AOF: `always` is at the durability of Switchyard's embedded server. */
  appendfsync: Appendfsync;
  jobs: number;
  /** Jobs outstanding from the producer at any time. */
  inFlight: number;
  /** Slots (BullMQ's concurrency) per worker process. */
  slots: number;
  /** The synthetic inference's time per job. */
  latencyMs: number;
  /** Worker processes (default 1). */
  workers?: number;
  /** Jobs run first and not measured, so JIT and connections are warm (default 2 × inFlight). */
  warmupJobs?: number;
  log: (line: string) => void;
}

export interface BullmqRunResult {
  /** Completions per second over the middle 80 % of them. */
  jobsPerSec: number;
  /** From `add` to the producer hearing `completed`, ms; with more in flight than slots, the wait for a slot counts. */
  e2e: { p50: number; p99: number };
  /** CPU ms per job by process: `redis-server`, `bullmq-worker` (all worker processes), `bench` (the producer). */
  cpuMsPerJob: Record<string, number>;
  /** Bytes redis-server wrote to disk per job (/proc/<pid>/io write_bytes); NaN where /proc cannot tell. */
  bytesWrittenPerJob: number;
}

const PROCESSES = ['redis-server', 'bullmq-worker', 'bench'];

export async function runBullmq(opts: BullmqRunOptions): Promise<BullmqRunResult> {
  const what = `bullmq, appendfsync ${opts.appendfsync}, ${opts.workers ?? 1} × ${opts.slots} slots × ${opts.latencyMs} ms`;
  const side = await startBullmqSide({
    appendfsync: opts.appendfsync,
    workers: opts.workers ?? 1,
    slots: opts.slots,
    latencyMs: opts.latencyMs,
    log: opts.log,
  });
  try {
    const closed = (count: number) => () => closedLoop({ concurrency: opts.inFlight, count, fire: () => side.run() });
    assertNoErrors(`${what}, warm-up`, await closed(opts.warmupJobs ?? 2 * opts.inFlight)());
    const cost = await measureCost(side.processes(), side.redis.pid, closed(opts.jobs));
    assertNoErrors(what, cost.load);
    const { p50, p99 } = summarize(cost.load.latenciesMs);
    const result: BullmqRunResult = {
      jobsPerSec: completionRate(cost.load),
      e2e: { p50, p99 },
      cpuMsPerJob: Object.fromEntries(PROCESSES.map((name) => [name, (1000 * (cost.cpu[name] ?? NaN)) / opts.jobs])),
      bytesWrittenPerJob: cost.diskBytes / opts.jobs,
    };
    opts.log(`${what}: ${opts.jobs} jobs, ${opts.inFlight} in flight, ${round(result.jobsPerSec)} jobs/s, e2e p50 ${round(p50)} ms`);
    return result;
  } finally {
    await side.stop();
  }
}

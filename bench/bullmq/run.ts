/**
 * One BullMQ measurement, whole: its own Redis and worker processes (./side.ts), a warm-up, then the
 * measured jobs, what they cost, and everything stopped again. For scenarios that set BullMQ beside
 * Switchyard at one load: `runBullmq` keeps `inFlight` jobs outstanding from the producer (closed loop);
 * `runBullmqBulk` adds all of them in one `addBulk`.
 */
import { measureCost, type LoadCost } from '../lib/cost';
import { assertNoErrors, closedLoop, completionRate } from '../lib/load';
import type { Appendfsync } from '../lib/redis';
import { round, summarize, throughput } from '../lib/stats';
import { startBullmqSide, type BullmqSide } from './side';

interface BullmqSetup {
  /** When Redis fsyncs its AOF: `always` is at the durability of Switchyard's embedded server. */
  appendfsync: Appendfsync;
  /** Slots (BullMQ's concurrency) per worker process. */
  slots: number;
  /** The synthetic inference's time per job. */
  latencyMs: number;
  /** Worker processes (default 1). */
  workers?: number;
  log: (line: string) => void;
}

export interface BullmqRunOptions extends BullmqSetup {
  jobs: number;
  /** Jobs outstanding from the producer at any time. */
  inFlight: number;
  /** Jobs run first and not measured, so JIT and connections are warm (default 2 × inFlight). */
  warmupJobs?: number;
}

/** What jobs cost, per job. */
interface JobCost {
  /** CPU ms per job by process: `redis-server`, `bullmq-worker` (all worker processes), `bench` (the producer). */
  cpuMsPerJob: Record<string, number>;
  /** Bytes redis-server wrote to disk per job (/proc/<pid>/io write_bytes); NaN where /proc cannot tell. */
  bytesWrittenPerJob: number;
}

export interface BullmqRunResult extends JobCost {
  /** Completions per second over the middle 80 % of them. */
  jobsPerSec: number;
  /** From `add` to the producer hearing `completed`, ms; with more in flight than slots, the wait for a slot counts. */
  e2e: { p50: number; p99: number };
}

const PROCESSES = ['redis-server', 'bullmq-worker', 'bench'];

const describe = (opts: BullmqSetup) =>
  `bullmq, appendfsync ${opts.appendfsync}, ${opts.workers ?? 1} × ${opts.slots} slots × ${opts.latencyMs} ms`;

/** Starts a side as `opts` asks, runs `measure` on it, and stops it whatever happens. */
async function withSide<T>(opts: BullmqSetup, measure: (side: BullmqSide) => Promise<T>): Promise<T> {
  const side = await startBullmqSide({
    appendfsync: opts.appendfsync,
    workers: opts.workers ?? 1,
    slots: opts.slots,
    latencyMs: opts.latencyMs,
    log: opts.log,
  });
  try {
    return await measure(side);
  } finally {
    await side.stop();
  }
}

function costPerJob(cost: LoadCost<unknown>, jobs: number): JobCost {
  return {
    cpuMsPerJob: Object.fromEntries(PROCESSES.map((name) => [name, (1000 * (cost.cpu[name] ?? NaN)) / jobs])),
    bytesWrittenPerJob: cost.diskBytes / jobs,
  };
}

export function runBullmq(opts: BullmqRunOptions): Promise<BullmqRunResult> {
  const what = describe(opts);
  return withSide(opts, async (side) => {
    const closed = (count: number) => () => closedLoop({ concurrency: opts.inFlight, count, fire: () => side.run() });
    assertNoErrors(`${what}, warm-up`, await closed(opts.warmupJobs ?? 2 * opts.inFlight)());
    const cost = await measureCost(side.processes(), side.redis.pid, closed(opts.jobs));
    assertNoErrors(what, cost.load);
    const { p50, p99 } = summarize(cost.load.latenciesMs);
    const result: BullmqRunResult = { jobsPerSec: completionRate(cost.load), e2e: { p50, p99 }, ...costPerJob(cost, opts.jobs) };
    opts.log(`${what}: ${opts.jobs} jobs, ${opts.inFlight} in flight, ${round(result.jobsPerSec)} jobs/s, e2e p50 ${round(p50)} ms`);
    return result;
  });
}

export interface BullmqBulkOptions extends BullmqSetup {
  jobs: number;
  /** Jobs of one `addBulk` run first and not measured, so JIT and connections are warm. */
  warmupJobs: number;
}

export interface BullmqBulkResult extends JobCost {
  /** How long `addBulk` took to resolve, ms. */
  addMs: number;
  /** From `addBulk` resolved to the producer hearing the last `completed`, ms. */
  acceptedToFinishedMs: number;
  /** Jobs per second over that span. */
  jobsPerSec: number;
}

export function runBullmqBulk(opts: BullmqBulkOptions): Promise<BullmqBulkResult> {
  const what = describe(opts);
  return withSide(opts, async (side) => {
    await side.runBulk(opts.warmupJobs);
    const cost = await measureCost(side.processes(), side.redis.pid, () => side.runBulk(opts.jobs));
    const { sentAt, acceptedAt, finishedAt } = cost.load;
    const result: BullmqBulkResult = {
      addMs: acceptedAt - sentAt,
      acceptedToFinishedMs: finishedAt - acceptedAt,
      jobsPerSec: throughput(opts.jobs, finishedAt - acceptedAt),
      ...costPerJob(cost, opts.jobs),
    };
    opts.log(`${what}: addBulk of ${opts.jobs} jobs in ${round(result.addMs)} ms, then ${round(result.jobsPerSec)} jobs/s`);
    return result;
  });
}

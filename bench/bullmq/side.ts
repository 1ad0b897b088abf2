/**
 * BullMQ as the benchmarks run it: a Redis of its own (bench/lib/redis.ts, with the AOF fsync mode asked
 * for), worker processes (bench/bullmq/worker.ts) on one queue, and a producer that adds a job and waits
 * for its `completed` event (QueueEvents, which reads Redis's event stream: what `job.waitUntilFinished`
 * uses), so a job's end-to-end time runs from `add` to the client hearing it completed — the same span
 * the Switchyard side measures. Or many jobs in one `addBulk`, waiting for all of their events.
 */
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { InferenceRequest } from '../../src/inference/provider';
import { logLineOf, startProcess, type LocalProcess } from '../../src/local/processes';
import { onInterrupt } from '../../testkit/interrupts';
import { startRedis, type Appendfsync, type RedisServer } from '../lib/redis';
import { jobBody } from '../lib/submit';
import { BULLMQ_WORKER_READY, JOB_OPTIONS, producerConnection, STREAMS, workerConnection } from './settings';

const WORKER = path.join(__dirname, 'worker.ts');
const READY_TIMEOUT_MS = 60_000;
/** The only queue on its Redis. */
const QUEUE = 'bench';
/** The job the Switchyard side POSTs (jobBody), as the inference request its activity hands the provider. */
const REQUEST: InferenceRequest = { task: 'sentiment', text: jobBody('').input.text };

/** One `addBulk` of jobs, timed with `performance.now()`. */
export interface BulkRun {
  /** When `addBulk` was called, and when it resolved: the jobs were accepted. */
  sentAt: number;
  acceptedAt: number;
  /** When the last `completed` event arrived. */
  finishedAt: number;
}

export interface BullmqSide {
  redis: RedisServer;
  /** Adds one job and resolves once its `completed` event arrives (rejects on `failed`). */
  run(): Promise<void>;
  /** Adds `count` jobs in one `addBulk` and resolves once every one's `completed` event arrived (rejects on a `failed`). */
  runBulk(count: number): Promise<BulkRun>;
  /** redis-server and the worker processes (`bullmq-worker`), for CPU accounting. */
  processes(): { name: string; pid: number }[];
  /** Closes the producer, stops (drains) the worker processes, then Redis. */
  stop(): Promise<void>;
}

function startWorker(args: string[]): LocalProcess {
  return startProcess(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    name: 'bullmq-worker',
    readyLine: logLineOf(BULLMQ_WORKER_READY),
    readyTimeoutMs: READY_TIMEOUT_MS,
  });
}

export async function startBullmqSide(opts: {
  appendfsync: Appendfsync;
  workers: number;
  slots: number;
  latencyMs: number;
  log?: (line: string) => void;
}): Promise<BullmqSide> {
  const workers: LocalProcess[] = [];
  let redis: RedisServer | undefined;
  let queue: Queue | undefined;
  let events: QueueEvents | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      unregister();
      await Promise.allSettled([queue?.close(), events?.close()]);
      await Promise.allSettled(workers.map((w) => w.stop()));
      await redis?.stop();
    })());
  const unregister = onInterrupt(stop);

  try {
    redis = await startRedis({ appendfsync: opts.appendfsync, log: opts.log });
    const { host, port } = redis;
    const args = [
      '--host',
      host,
      '--port',
      String(port),
      '--queue',
      QUEUE,
      '--concurrency',
      String(opts.slots),
      '--latency-ms',
      String(opts.latencyMs),
    ];
    workers.push(...Array.from({ length: opts.workers }, () => startWorker(args)));
    await Promise.all(workers.map((w) => w.ready));

    queue = new Queue(QUEUE, {
      connection: producerConnection(host, port),
      defaultJobOptions: JOB_OPTIONS,
      streams: STREAMS,
    });
    // QueueEvents blocks on XREAD, so it needs a connection of its own that may wait forever.
    events = new QueueEvents(QUEUE, { connection: workerConnection(host, port) });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

    // Registered before `add`: with 0-ms inference a job can complete before `add` has returned.
    const waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
    const settle = (jobId: string, err?: Error) => {
      const w = waiting.get(jobId);
      waiting.delete(jobId);
      if (!w) return;
      if (err) w.reject(err);
      else w.resolve();
    };
    events.on('completed', ({ jobId }) => settle(jobId));
    events.on('failed', ({ jobId, failedReason }) => settle(jobId, new Error(`bullmq job ${jobId} failed: ${failedReason}`)));
    let seq = 0;
    const [q, r] = [queue, redis];
    /** A new job id, and a promise of its `completed` event. */
    const expectJob = () => {
      const jobId = `${QUEUE}-${++seq}`;
      return { jobId, done: new Promise<void>((resolve, reject) => waiting.set(jobId, { resolve, reject })) };
    };
    /** Runs `add`; when it fails, nothing waits for the jobs' events any more. */
    const adding = async (jobIds: string[], add: () => Promise<unknown>) => {
      try {
        await add();
      } catch (err) {
        for (const jobId of jobIds) waiting.delete(jobId);
        throw err;
      }
    };
    return {
      redis: r,
      async run() {
        const { jobId, done } = expectJob();
        await adding([jobId], () => q.add('inference', { request: REQUEST }, { jobId }));
        await done;
      },
      async runBulk(count) {
        const jobs = Array.from({ length: count }, expectJob);
        let finishedAt = NaN;
        const all = Promise.all(jobs.map(({ done }) => done.then(() => void (finishedAt = performance.now()))));
        all.catch(() => undefined); // a job may fail before addBulk resolves: the rejection is awaited below
        const bulk = jobs.map(({ jobId }) => ({ name: 'inference', data: { request: REQUEST }, opts: { jobId } }));
        const sentAt = performance.now();
        await adding(
          jobs.map((j) => j.jobId),
          () => q.addBulk(bulk),
        );
        const acceptedAt = performance.now();
        await all;
        return { sentAt, acceptedAt, finishedAt };
      },
      processes: () => [{ name: 'redis-server', pid: r.pid }, ...workers.map((w) => ({ name: w.name, pid: w.pid }))],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The BullMQ side of the peer-bullmq scenario: worker processes (bench/bullmq/worker.ts) on one queue,
 * and a producer that adds a job and waits for its `completed` event (QueueEvents, which reads Redis's
 * event stream: what `job.waitUntilFinished` uses), so a job's end-to-end time runs from `add` to the
 * client hearing it completed — the same span the Switchyard side measures.
 */
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { InferenceRequest } from '../../src/inference/provider';
import { logLineOf, startProcess, type LocalProcess } from '../../src/local/processes';
import { onInterrupt } from '../../testkit/interrupts';
import { BULLMQ_WORKER_READY, JOB_OPTIONS, producerConnection, STREAMS, workerConnection } from './settings';

const WORKER = path.join(__dirname, 'worker.ts');
const READY_TIMEOUT_MS = 60_000;

export interface BullmqSide {
  /** Adds one job and resolves once its `completed` event arrives (rejects on `failed`). */
  run(request: InferenceRequest): Promise<void>;
  processes(): { name: string; pid: number }[];
  /** Closes the producer and stops (drains) the worker processes. */
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
  host: string;
  port: number;
  queue: string;
  workers: number;
  slots: number;
  latencyMs: number;
}): Promise<BullmqSide> {
  const workers: LocalProcess[] = [];
  let queue: Queue | undefined;
  let events: QueueEvents | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      unregister();
      await Promise.allSettled([queue?.close(), events?.close()]);
      await Promise.allSettled(workers.map((w) => w.stop()));
    })());
  const unregister = onInterrupt(stop);

  try {
    const args = [
      '--host',
      opts.host,
      '--port',
      String(opts.port),
      '--queue',
      opts.queue,
      '--concurrency',
      String(opts.slots),
      '--latency-ms',
      String(opts.latencyMs),
    ];
    workers.push(...Array.from({ length: opts.workers }, () => startWorker(args)));
    await Promise.all(workers.map((w) => w.ready));

    queue = new Queue(opts.queue, {
      connection: producerConnection(opts.host, opts.port),
      defaultJobOptions: JOB_OPTIONS,
      streams: STREAMS,
    });
    // QueueEvents blocks on XREAD, so it needs a connection of its own that may wait forever.
    events = new QueueEvents(opts.queue, { connection: workerConnection(opts.host, opts.port) });
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
    const q = queue;
    return {
      async run(request) {
        const jobId = `${opts.queue}-${++seq}`;
        const done = new Promise<void>((resolve, reject) => waiting.set(jobId, { resolve, reject }));
        try {
          await q.add('inference', { request }, { jobId });
        } catch (err) {
          waiting.delete(jobId);
          throw err;
        }
        await done;
      },
      processes: () => workers.map((w) => ({ name: w.name, pid: w.pid })),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

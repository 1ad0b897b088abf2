/**
 * BullMQ set up as its "Going to production" guide recommends, shared by the producer (the scenario)
 * and the worker processes, so both sides of the comparison are described in one place.
 */
import type { ConnectionOptions, DefaultJobOptions } from 'bullmq';

/** What a worker process logs once it polls (bench/bullmq/worker.ts). */
export const BULLMQ_WORKER_READY = 'bullmq worker ready';

/** Keep finished jobs bounded (BullMQ keeps them forever by default): an hour, at most 1000. */
const KEEP_COMPLETED = { age: 3600, count: 1000 };
const KEEP_FAILED = { age: 24 * 3600, count: 5000 };

/**
 * Like Switchyard's default retry policy (5 attempts, 1 s initial interval, coefficient 2; BullMQ's
 * exponential backoff has no maximum interval, Switchyard caps it at 60 s — never reached in 5 attempts).
 */
export const JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: KEEP_COMPLETED,
  removeOnFail: KEEP_FAILED,
};

/**
 * The queue's event stream keeps ~10,000 events by default, about 2,000 jobs' worth: a QueueEvents reader
 * more than a second behind at full speed would miss completions, and a closed loop waiting on them
 * would hang. A benchmark-only change; it costs Redis a little memory, not time.
 */
export const STREAMS = { events: { maxLen: 100_000 } };

/** Workers: block on Redis forever across reconnects (`maxRetriesPerRequest: null`, which BullMQ requires). */
export function workerConnection(host: string, port: number): ConnectionOptions {
  return { host, port, maxRetriesPerRequest: null };
}

/** Producers (what an HTTP handler would use): fail fast instead of queueing commands while Redis is away. */
export function producerConnection(host: string, port: number): ConnectionOptions {
  return { host, port, enableOfflineQueue: false };
}

/** Recorded with the results. */
export const BULLMQ_SETTINGS = {
  jobOptions: JOB_OPTIONS,
  worker: { maxRetriesPerRequest: null, lockDuration: '30000 ms (default)', stalledInterval: '30000 ms (default)' },
  producer: { enableOfflineQueue: false, streams: STREAMS },
};

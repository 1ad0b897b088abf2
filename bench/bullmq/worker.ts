/**
 * A BullMQ worker process for the benchmarks (bench/bullmq/side.ts): the counterpart of a Switchyard inference
 * worker process. Each job calls the same synthetic provider (src/inference/synthetic.ts) that a
 * Switchyard `synthetic` pool calls, so the "model" costs exactly the same on both sides.
 *
 *   node --import tsx bench/bullmq/worker.ts --port 6379 --queue q --concurrency 20 --latency-ms 50
 *
 * Prints one JSON line `{"msg":"bullmq worker ready",…}` when it polls; SIGTERM closes it gracefully
 * (no new jobs, in-flight jobs finish) and the process exits 0.
 */
import { parseArgs } from 'node:util';
import { Worker } from 'bullmq';
import { poolSchema } from '../../src/config';
import type { InferenceRequest } from '../../src/inference/provider';
import { createSyntheticProvider, type SyntheticPool } from '../../src/inference/synthetic';
import { BULLMQ_WORKER_READY, workerConnection } from './settings';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    queue: { type: 'string' },
    concurrency: { type: 'string', default: '20' },
    'latency-ms': { type: 'string', default: '0' },
  },
});
if (!values.port || !values.queue)
  throw new Error('usage: worker.ts --port <redis port> --queue <name> [--concurrency n] [--latency-ms ms]');

const concurrency = Number(values.concurrency);
// Parsed by the same schema as a Switchyard pool, so the provider gets exactly what a pool would give it.
const pool = poolSchema.parse({
  provider: 'synthetic',
  concurrency,
  latencyMs: Number(values['latency-ms']),
  jitterMs: 0,
}) as SyntheticPool;
const provider = createSyntheticProvider(pool);
const say = (msg: string, extra: Record<string, unknown> = {}) => console.log(JSON.stringify({ msg, pid: process.pid, ...extra }));

const worker = new Worker<{ request: InferenceRequest }>(
  values.queue,
  async (job, _token, signal) => {
    const result = await provider.infer(job.data.request, { signal: signal ?? new AbortController().signal, heartbeat: () => undefined });
    return { ...result, attempt: job.attemptsMade + 1 };
  },
  { connection: workerConnection(values.host, Number(values.port)), concurrency },
);
worker.on('error', (err) => say('worker error', { error: String(err) }));

void worker.waitUntilReady().then(() => say(BULLMQ_WORKER_READY, { queue: values.queue, concurrency, latencyMs: pool.latencyMs }));

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  void worker.close().then(
    () => (say('bullmq worker stopped'), process.exit(0)),
    (err: unknown) => (say('bullmq worker close failed', { error: String(err) }), process.exit(1)),
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

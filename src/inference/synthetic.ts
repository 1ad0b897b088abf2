/**
 * The synthetic provider, for benchmarks and tests only: every call is a timed wait (I/O-like, no CPU)
 * with a configured cost, so the orchestration's own cost can be measured apart from a model's.
 * It does every task, alone or in batches (a batch's outputs carry `batchSize`), and answers with a
 * small fixed output that says it is synthetic.
 */
import type { PoolConfig } from '../config';
import { asError } from '../errors';
import {
  type CallContext,
  INFERENCE_TASKS,
  type InferenceProvider,
  type InferenceRequest,
  type InferenceResult,
  safeHeartbeat,
} from './provider';

export type SyntheticPool = Extract<PoolConfig, { provider: 'synthetic' }>;
export const SYNTHETIC_MODEL = 'synthetic';
export const SYNTHETIC_TASKS = INFERENCE_TASKS;

/** Long waits heartbeat so a heartbeat timeout shorter than the configured latency does not fail them. */
const HEARTBEAT_EVERY_MS = 1000;

/** What one call with `items` items costs, given a uniform random number in [0, 1) for the jitter. */
export function syntheticCostMs(pool: Pick<SyntheticPool, 'latencyMs' | 'jitterMs' | 'callCost'>, items: number, random: number): number {
  return pool.latencyMs + Math.round(random * pool.jitterMs) + pool.callCost.fixedMs + pool.callCost.perItemMs * items;
}

/** Resolves after `ms`, heartbeating meanwhile; rejects with the signal's reason as soon as it aborts. */
function wait(ms: number, ctx: CallContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (finish: () => void) => () => {
      clearTimeout(timer);
      clearInterval(beat);
      ctx.signal.removeEventListener('abort', onAbort);
      finish();
    };
    const onAbort = settle(() => reject(asError(ctx.signal.reason)));
    const timer = setTimeout(settle(resolve), ms);
    const beat = setInterval(() => safeHeartbeat(ctx), HEARTBEAT_EVERY_MS);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The device behind the pool in one worker process: it serves `concurrency` calls at once and queues the
 * rest in arrival order, as a GPU server does; without a limit no call waits for another. Returns, for a
 * call of `costMs` arriving now, how long until it is done. A cancelled call keeps its booked turn.
 */
function device(concurrency: number | undefined): (costMs: number) => number {
  const freeAt = new Array<number>(concurrency ?? 0).fill(0);
  return (costMs) => {
    if (freeAt.length === 0) return costMs;
    const now = Date.now();
    const lane = freeAt.indexOf(Math.min(...freeAt));
    freeAt[lane] = Math.max(now, freeAt[lane]!) + costMs;
    return freeAt[lane] - now;
  };
}

function answer(request: InferenceRequest, latencyMs: number, batchSize?: number): InferenceResult {
  const cost = batchSize === undefined ? { synthetic: true, latencyMs } : { synthetic: true, latencyMs, batchSize };
  const output =
    request.task === 'chat'
      ? { message: { role: 'assistant', content: `synthetic reply after ${latencyMs} ms` }, finishReason: 'stop', ...cost }
      : cost;
  return { task: request.task, model: SYNTHETIC_MODEL, output };
}

export function createSyntheticProvider(pool: SyntheticPool, random: () => number = Math.random): InferenceProvider {
  const queueAndRun = device(pool.callCost.concurrency);
  /** One call to the device for `items` requests: resolves with its cost once it is done. */
  async function call(items: number, ctx: CallContext): Promise<number> {
    ctx.signal.throwIfAborted();
    const latencyMs = syntheticCostMs(pool, items, random());
    await wait(queueAndRun(latencyMs), ctx);
    return latencyMs;
  }
  return {
    kind: 'synthetic',
    tasks: SYNTHETIC_TASKS,
    batchTasks: SYNTHETIC_TASKS,
    async infer(request: InferenceRequest, ctx: CallContext): Promise<InferenceResult> {
      return answer(request, await call(1, ctx));
    },
    async inferBatch(requests: InferenceRequest[], ctx: CallContext): Promise<InferenceResult[]> {
      const latencyMs = await call(requests.length, ctx);
      return requests.map((r) => answer(r, latencyMs, requests.length));
    },
  };
}

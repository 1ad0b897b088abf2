/**
 * The synthetic provider, for benchmarks and tests only: every call is a timed wait (I/O-like, no CPU)
 * with a configured cost, so the orchestration's own cost can be measured apart from a model's.
 * It does every task and answers with a small fixed output that says it is synthetic.
 */
import type { PoolConfig } from '../config';
import { type CallContext, INFERENCE_TASKS, type InferenceProvider, type InferenceRequest, type InferenceResult } from './provider';

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
    const onAbort = settle(() => reject(ctx.signal.reason));
    const timer = setTimeout(settle(resolve), ms);
    const beat = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function createSyntheticProvider(pool: SyntheticPool, random: () => number = Math.random): InferenceProvider {
  return {
    kind: 'synthetic',
    tasks: SYNTHETIC_TASKS,
    async infer(request: InferenceRequest, ctx: CallContext): Promise<InferenceResult> {
      ctx.signal.throwIfAborted();
      const latencyMs = syntheticCostMs(pool, 1, random());
      await wait(latencyMs, ctx);
      const output =
        request.task === 'chat'
          ? { message: { role: 'assistant', content: `synthetic reply after ${latencyMs} ms` }, finishReason: 'stop', synthetic: true, latencyMs }
          : { synthetic: true, latencyMs };
      return { task: request.task, model: SYNTHETIC_MODEL, output };
    },
  };
}

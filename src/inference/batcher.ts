/**
 * Dynamic batching: concurrent calls in one worker process for the same task and model become one
 * provider call (`inferBatch`). Every call stays its own activity's: it heartbeats for it, honours its
 * cancellation, and gets its own result or error, so each job keeps its own retries and timeouts.
 */
import {
  type CallContext,
  type InferenceProvider,
  type InferenceRequest,
  type InferenceResult,
  ProviderError,
  safeHeartbeat,
} from './provider';

export interface BatchSettings {
  /** Calls per provider call; 1 or less turns batching off. */
  maxSize: number;
  /** How long a batch's first call waits for company before the batch is sent anyway. */
  maxWaitMs: number;
}

/** A call heartbeats on its own while it waits and runs: the wait plus the batch may outlast a heartbeat timeout. */
const HEARTBEAT_EVERY_MS = 1000;

interface Call {
  request: InferenceRequest;
  ctx: CallContext;
  /** True once the call's promise has settled (answered, failed or cancelled). */
  done: boolean;
  settle(outcome: { result: InferenceResult } | { error: unknown }): void;
}

interface Batch {
  key: string;
  /** The calls still wanting an answer; a sent batch's provider call keeps the array it was sent with. */
  calls: Call[];
  timer?: NodeJS.Timeout;
  /** The provider call's signal: aborted when every call of the batch has been cancelled. */
  abort: AbortController;
}

/** A call waiting in a batch; `onAbort` runs after its own cancellation has settled it. */
function newCall(
  request: InferenceRequest,
  ctx: CallContext,
  resolve: (result: InferenceResult) => void,
  reject: (err: unknown) => void,
  onAbort: (call: Call) => void,
): Call {
  const beat = setInterval(() => safeHeartbeat(ctx), HEARTBEAT_EVERY_MS);
  const aborted = () => {
    call.settle({ error: ctx.signal.reason });
    onAbort(call);
  };
  const call: Call = {
    request,
    ctx,
    done: false,
    settle(outcome) {
      if (call.done) return;
      call.done = true;
      clearInterval(beat);
      ctx.signal.removeEventListener('abort', aborted);
      if ('result' in outcome) resolve(outcome.result);
      else reject(outcome.error);
    },
  };
  ctx.signal.addEventListener('abort', aborted, { once: true });
  safeHeartbeat(ctx);
  return call;
}

/**
 * The provider with calls for its `batchTasks` grouped by task and model: a batch is sent when it holds
 * `maxSize` calls or `maxWaitMs` after its first. Other tasks go straight through. Returns the provider
 * itself when batching is off or it cannot batch.
 */
export function withBatching(
  provider: InferenceProvider,
  settings: BatchSettings,
  /** Told the size of every batch sent (metrics). */
  onBatch: (task: InferenceRequest['task'], size: number) => void = () => {},
): InferenceProvider {
  const batchTasks = provider.batchTasks;
  const inferBatch = provider.inferBatch?.bind(provider);
  if (settings.maxSize <= 1 || !inferBatch || !batchTasks?.length) return provider;
  const filling = new Map<string, Batch>();

  const close = (batch: Batch) => {
    clearTimeout(batch.timer);
    if (filling.get(batch.key) === batch) filling.delete(batch.key);
  };

  const send = async (batch: Batch) => {
    close(batch);
    const calls = batch.calls;
    if (calls.length > 0) onBatch(calls[0]!.request.task, calls.length);
    // The provider's heartbeats (e.g. between items of CPU-bound work) reach every call still waiting.
    const ctx: CallContext = { signal: batch.abort.signal, heartbeat: () => calls.forEach((c) => c.done || safeHeartbeat(c.ctx)) };
    try {
      const outcomes = await inferBatch(
        calls.map((c) => c.request),
        ctx,
      );
      calls.forEach((call, i) => {
        const outcome =
          outcomes[i] ??
          new ProviderError(
            `the ${provider.kind} provider answered ${outcomes.length} results for ${calls.length} requests`,
            'unavailable',
          );
        call.settle(outcome instanceof Error ? { error: outcome } : { result: outcome });
      });
    } catch (error) {
      for (const call of calls) call.settle({ error });
    }
  };

  /** A cancelled call leaves its batch; a batch nobody waits for any more is dropped, or aborted if sent. */
  const leave = (batch: Batch) => (call: Call) => {
    batch.calls = batch.calls.filter((c) => c !== call);
    if (batch.calls.length > 0) return;
    close(batch);
    batch.abort.abort(call.ctx.signal.reason);
  };

  return {
    kind: provider.kind,
    tasks: provider.tasks,
    async infer(request, ctx) {
      if (!batchTasks.includes(request.task)) return provider.infer(request, ctx);
      ctx.signal.throwIfAborted();
      const key = `${request.task}\u0000${request.model ?? ''}`;
      let batch = filling.get(key);
      if (!batch) {
        const created: Batch = { key, calls: [], abort: new AbortController() };
        created.timer = setTimeout(() => void send(created), settings.maxWaitMs);
        filling.set(key, created);
        batch = created;
      }
      const joined = batch;
      return new Promise<InferenceResult>((resolve, reject) => {
        joined.calls.push(newCall(request, ctx, resolve, reject, leave(joined)));
        if (joined.calls.length >= settings.maxSize) void send(joined);
      });
    },
  };
}

import { setMaxListeners } from 'node:events';
import { ApplicationFailure, cancellationDetails, Context } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import type { BlobStore } from '../src/blobs/store';
import type { BatchItem, BatchItemResult, BatchRetry, GroupProgress } from '../src/batches/contract';
import { asError } from '../src/errors';
import { appendPart, readGroupItems, readProgress } from './batch-files';
import type { Infer } from './inference-call';

export interface BatchGroupRequest {
  scope: string;
  index: number;
  /** Per item: its calls are retried inside the activity, each item on its own. */
  retry: BatchRetry;
  /** One call's time limit. */
  attemptTimeoutMs: number;
  /** Items of the group run at once. */
  itemConcurrency: number;
}

/** Finished items are written as a part once this many wait at the front, and every FLUSH_EVERY_MS (which heartbeats too). */
const PART_ITEMS = 100;
const FLUSH_EVERY_MS = 1000;

/**
 * A batch group on the pool's workers: its items through the pool's own `infer` (limiter, breaker,
 * batching, metrics, typed failures), each item retried on its own, and the results written to the blob
 * store in input order as they finish. The manifest and the heartbeats say how far the group got, so an
 * attempt after a crash resumes there: at most the items finished since the last part run again.
 */
export function createBatchGroupActivities({ blobs, infer, concurrency }: { blobs: BlobStore; infer: Infer; concurrency: number }) {
  const calls = new CallSlots(concurrency);

  return {
    async runBatchGroup({ scope, index, retry, attemptTimeoutMs, itemConcurrency }: BatchGroupRequest): Promise<GroupProgress> {
      const ctx = Context.current();
      // Every item waiting for a call slot or calling listens for the group's cancellation.
      setMaxListeners(0, ctx.cancellationSignal);
      const items = await readGroupItems(blobs, scope, index);
      const resumeAt = resumePoint(await readProgress(blobs, scope, index), ctx.info.heartbeatDetails);
      const results = new GroupResults(
        (progress, finished) => appendPart(blobs, scope, index, progress, finished, `a${ctx.info.attempt}`),
        resumeAt,
      );
      if (results.durable.done >= items.length) return results.durable;

      const heartbeatDetails = () => results.durable;
      async function runItem({ line, customId, request }: BatchItem): Promise<BatchItemResult> {
        for (let attempt = 1; ; attempt++) {
          try {
            const result = await calls.run(ctx.cancellationSignal, () => infer(request, { timeoutMs: attemptTimeoutMs, heartbeatDetails }));
            return { line, customId, ok: true, result, attempts: attempt };
          } catch (err) {
            if (ctx.cancellationSignal.aborted) throw err;
            const { error, final, retryInMs } = itemFailure(err);
            if (final || attempt >= retry.maxAttempts) return { line, customId, ok: false, error, attempts: attempt };
            await ctx.sleep(retryInMs ?? backoffMs(retry, attempt));
          }
        }
      }

      // The first failure stops every runner: a cancellation, or a part that could not be written.
      let failure: Error | undefined;
      let next = results.durable.done;
      const runner = async () => {
        try {
          while (next < items.length && failure === undefined) {
            const i = next++;
            await results.add(i, await runItem(items[i]!));
          }
        } catch (err) {
          failure ??= asError(err);
        }
      };
      const tick = setInterval(() => void results.flush().catch((err: unknown) => (failure ??= asError(err))), FLUSH_EVERY_MS);
      try {
        await Promise.all(Array.from({ length: Math.min(itemConcurrency, items.length - next) }, runner));
      } finally {
        clearInterval(tick);
      }
      if (failure === undefined || keepsWhatFinished()) await results.flush();
      if (failure !== undefined) throw failure;
      return results.durable;
    },
  };
}

/** Where an attempt starts: the manifest, or the last attempt's heartbeat if it got further (the details may carry a limiter's wait too). */
function resumePoint(manifest: GroupProgress, heartbeat: unknown): GroupProgress {
  const beat = heartbeat as Partial<GroupProgress> | undefined;
  if (typeof beat?.done !== 'number' || beat.done <= manifest.done || !Array.isArray(beat.parts)) return manifest;
  return { done: beat.done, completed: beat.completed ?? 0, failed: beat.failed ?? 0, parts: beat.parts };
}

/**
 * Whether a stopped attempt writes what finished before it stopped: when the workflow cancelled it (the
 * batch's window ended, or a client cancelled the batch) or its worker is shutting down, this attempt is
 * still the group's only one. When the server gave up on it (a heartbeat or schedule-to-close timeout,
 * the attempt not found) another attempt may be writing the same parts: this one writes nothing more.
 */
function keepsWhatFinished(): boolean {
  const why = cancellationDetails();
  return why?.cancelRequested === true || why?.workerShutdown === true;
}

/** A group's finished results on their way to the blob store: the finished items at the front, one part after another. */
class GroupResults {
  private readonly finished = new Map<number, BatchItemResult>();
  private writing = Promise.resolve();
  /** The write waiting for the one in progress: it takes whatever has finished when it starts, so one is enough. */
  private queued?: Promise<void>;

  constructor(
    private readonly write: (progress: GroupProgress, results: BatchItemResult[]) => Promise<GroupProgress>,
    public durable: GroupProgress,
  ) {}

  /** Takes item `i`'s result; once a part's worth waits at the front, resolves when it is written. */
  add(i: number, result: BatchItemResult): Promise<void> {
    this.finished.set(i, result);
    return this.front().length >= PART_ITEMS ? this.flush() : Promise.resolve();
  }

  /** Writes the finished items at the front as a part, then heartbeats the progress (also when there was none to write). */
  flush(): Promise<void> {
    if (!this.queued) {
      this.queued = this.writing.then(async () => {
        this.queued = undefined;
        const results = this.front();
        if (results.length > 0) {
          const from = this.durable.done;
          this.durable = await this.write(this.durable, results);
          for (let i = from; i < this.durable.done; i++) this.finished.delete(i);
        }
        Context.current().heartbeat(this.durable);
      });
      this.writing = this.queued;
    }
    return this.queued;
  }

  private front(): BatchItemResult[] {
    const results: BatchItemResult[] = [];
    for (let i = this.durable.done; this.finished.has(i); i++) results.push(this.finished.get(i)!);
    return results;
  }
}

/**
 * Provider calls in flight for batch groups in this worker process: at most the pool's concurrency. A
 * group holds one activity slot but runs `itemConcurrency` items, so the slots alone would let a worker
 * running N groups make N × itemConcurrency calls at once, past what the pool is sized for (a local
 * model's cores, an account's connections). Calls wait their turn in order; a cancelled wait leaves the line.
 */
class CallSlots {
  private readonly waiting: Array<() => void> = [];

  constructor(private free: number) {}

  async run<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    if (this.free > 0) this.free--;
    else await this.turn(signal);
    try {
      return await call();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }

  /** Resolves when a finishing call hands its slot over. */
  private turn(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(go), 1);
        reject(asError(signal.reason));
      };
      this.waiting.push(go);
      signal.addEventListener('abort', leave, { once: true });
    });
  }
}

/** An item's failed call: what its result says, whether another call could change it, and how long the provider asked to wait. */
function itemFailure(err: unknown): { error: Extract<BatchItemResult, { ok: false }>['error']; final: boolean; retryInMs?: number } {
  if (!(err instanceof ApplicationFailure)) {
    const { name, message } = asError(err);
    return { error: { type: name, message }, final: false };
  }
  const status = (err.details?.[0] as { status?: number } | undefined)?.status;
  return {
    error: { type: err.type ?? 'Error', message: err.message, ...(status === undefined ? {} : { status }) },
    final: err.nonRetryable === true,
    retryInMs: err.nextRetryDelay == null ? undefined : msToNumber(err.nextRetryDelay),
  };
}

const backoffMs = (retry: BatchRetry, attempt: number) =>
  Math.min(retry.maxIntervalMs, retry.initialIntervalMs * retry.backoffCoefficient ** (attempt - 1));

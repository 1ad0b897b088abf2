/**
 * The worker side of a fleet limiter: one per limiter per worker process. Calls ask it for a permit
 * before they go to the provider and report what became of them after. It coalesces everything its
 * calls ask and report into one update of the limiter workflow at a time (Temporal takes only a few
 * in-flight updates per workflow, and each costs a workflow task), starting the workflow on first use.
 * Every call asks: a call admitted by the process alone could go after the limiter had heard that the
 * provider asked every call to wait. A Retry-After this process is told holds its own calls at once.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { type Client, WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import { asError } from '../errors';
import type { Logger } from '../logger';
import { limiterExchangeUpdate, POOL_LIMITER_WORKFLOW, type PoolLimiterWorkflow } from './limiter-contract';
import type { Admission, AdmitRequest, LimiterBatch, LimiterSettings, Outcome, Settlement } from './limiter-state';
import { GRANT_SLACK_MS } from './token-window';

/** What a waiting call lends the limiter: its cancellation, and a heartbeat that shows why it waits. */
export interface WaitContext {
  signal: AbortSignal;
  heartbeat(details?: unknown): void;
}

export interface Permit {
  /** Reports what became of the call; once. `tokens`: what it used (the provider's usage, else the estimate). */
  settle(outcome: Outcome, tokens: number, retryAfterMs?: number): void;
}

export interface LimiterClientOptions {
  client: Client;
  /** `limiterWorkflowId(prefix, limiter)`. */
  workflowId: string;
  /** The workflows task queue, where the limiter workflow runs. */
  taskQueue: string;
  limiter: string;
  settings: LimiterSettings;
  log: Logger;
}

/**
 * A grant older than this (from sending the request) is given back unused: the window keeps each
 * reservation GRANT_SLACK_MS past its minute, and the call must reach the provider within that.
 */
const FRESH_GRANT_MS = GRANT_SLACK_MS - 500;
/** Successful calls' usage waits this long for company (the next admission) before going alone. */
const SETTLE_DELAY_MS = 200;
const HEARTBEAT_EVERY_MS = 1000;
const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5000;

const failed = (outcome: Outcome) => outcome === 'throttled' || outcome === 'unavailable';

interface Asker {
  request: AdmitRequest;
  /** The call stopped waiting (cancelled); a grant for it goes back unused. */
  gone: boolean;
  answer(admission: Admission, sentAt: number): void;
  fail(err: unknown): void;
}

export class LimiterClient {
  private readonly idPrefix = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private seq = 0;
  /** Calls waiting for the next update. */
  private readonly asking = new Map<string, Asker>();
  private settlements: Settlement[] = [];
  /** The gathered settlements should go with the next update even if no call asks. */
  private settleDue = false;
  private settleTimer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  /** Until when (performance.now()) a Retry-After this process was told holds its calls, before the limiter knows. */
  private heldUntil = 0;
  /** Aborted by close(): no more retries. */
  private readonly closed = new AbortController();

  constructor(private readonly opts: LimiterClientOptions) {}

  /** Waits until the limiter lets a call with `tokens` estimated tokens go, heartbeating meanwhile. */
  async acquire(tokens: number, ctx: WaitContext): Promise<Permit> {
    for (;;) {
      ctx.signal.throwIfAborted();
      // A fresh id for every ask: the limiter answers a known id as before, and a grant given back is gone.
      const id = this.nextId();
      const held = this.heldUntil - performance.now();
      if (held > 0) {
        await this.wait({ retryInMs: Math.ceil(held), reason: 'provider Retry-After' }, ctx);
        continue;
      }
      const { admission, sentAt } = await this.ask({ id, tokens }, ctx);
      if (admission.granted) {
        const age = performance.now() - sentAt;
        // A grant that crossed a Retry-After told to this process meanwhile goes back: the hold comes first.
        const stale = this.opts.settings.tokensPerMinute !== null && age > FRESH_GRANT_MS;
        if (stale || performance.now() < this.heldUntil) {
          if (stale)
            this.opts.log.log('warn', 'limiter grant came too late to use; asking again', {
              limiter: this.opts.limiter,
              ageMs: Math.round(age),
            });
          this.report({ id, outcome: 'abandoned', tokens: 0 });
          continue;
        }
        return { settle: (outcome, used, retryAfterMs) => this.report({ id, outcome, tokens: used, retryAfterMs }) };
      }
      if ('rejected' in admission) throw ApplicationFailure.nonRetryable(admission.rejected, 'InvalidInput');
      await this.wait(admission, ctx);
    }
  }

  /** Waits as the limiter (or a Retry-After this process was told) says, heartbeating why. */
  private async wait({ retryInMs, reason }: { retryInMs: number; reason: string }, ctx: WaitContext): Promise<void> {
    const details = { limiter: this.opts.limiter, waiting: reason, retryInMs };
    beat(ctx, details);
    await waitHeartbeating(delay(retryInMs, ctx.signal), ctx, details);
  }

  /**
   * Sends what is left to report, waiting at most `timeoutMs`, then stops: later calls fail, and an
   * update still unanswered (no workflow worker left to answer it) is left to the connection's close.
   */
  async close(timeoutMs = 2000): Promise<void> {
    this.settleDue = true;
    this.pump();
    const until = Date.now() + timeoutMs;
    while (this.inFlight && Date.now() < until) {
      await Promise.race([this.inFlight, delay(until - Date.now())]);
    }
    this.closed.abort(new Error(`limiter client ${this.opts.limiter} closed`));
    clearTimeout(this.settleTimer);
  }

  private nextId(): string {
    return `${this.idPrefix}-${++this.seq}`;
  }

  /** Failures and give-backs go at once; plain usage waits a little for the next update to ride along. */
  private report(s: Settlement): void {
    this.settlements.push(s);
    if (failed(s.outcome) && s.retryAfterMs !== undefined) {
      const hold = Math.min(s.retryAfterMs, this.opts.settings.breaker.maxOpenMs); // as the limiter will
      this.heldUntil = Math.max(this.heldUntil, performance.now() + hold);
    }
    if (s.outcome !== 'ok') {
      this.settleDue = true;
      return this.pump();
    }
    this.settleTimer ??= setTimeout(() => {
      this.settleTimer = undefined;
      this.settleDue = true;
      this.pump();
    }, SETTLE_DELAY_MS);
  }

  /** Joins the next update; resolves with this call's answer and when its update was sent. */
  private ask(request: AdmitRequest, ctx: WaitContext): Promise<{ admission: Admission; sentAt: number }> {
    const answered = new Promise<{ admission: Admission; sentAt: number }>((resolve, reject) => {
      const onAbort = () => {
        asker.gone = true;
        this.asking.delete(request.id);
        reject(asError(ctx.signal.reason));
      };
      const asker: Asker = {
        request,
        gone: false,
        answer: (admission, sentAt) => {
          ctx.signal.removeEventListener('abort', onAbort);
          resolve({ admission, sentAt });
        },
        fail: (err) => {
          ctx.signal.removeEventListener('abort', onAbort);
          reject(asError(err));
        },
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      this.asking.set(request.id, asker);
    });
    this.pump();
    return waitHeartbeating(answered, ctx);
  }

  /** Starts an update unless one is in flight; the next one takes whatever gathered meanwhile. */
  private pump(): void {
    if (this.inFlight) return;
    const askers = [...this.asking.values()];
    if (askers.length === 0 && !(this.settleDue && this.settlements.length)) return;
    this.asking.clear();
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    this.settleDue = false;
    const batch: LimiterBatch = { settings: this.opts.settings, settle: this.settlements, admit: askers.map((a) => a.request) };
    this.settlements = [];
    this.inFlight = this.send(batch, askers).finally(() => {
      this.inFlight = undefined;
      this.pump();
    });
  }

  private async send(batch: LimiterBatch, askers: Asker[]): Promise<void> {
    const sentAt = performance.now();
    let admissions: Admission[];
    try {
      admissions = await this.exchangeWithRetry(batch);
    } catch (err) {
      for (const a of askers) a.fail(err);
      return;
    }
    const byId = new Map(admissions.map((a) => [a.id, a]));
    for (const asker of askers) {
      const admission = byId.get(asker.request.id);
      if (!admission) asker.fail(new Error(`limiter ${this.opts.limiter} did not answer call ${asker.request.id}`));
      else if (!asker.gone) asker.answer(admission, sentAt);
      else if (admission.granted) this.report({ id: admission.id, outcome: 'abandoned', tokens: 0 });
    }
  }

  /** One update-with-start; transient failures (server busy or unreachable, a continue-as-new under way) are retried. */
  private async exchangeWithRetry(batch: LimiterBatch): Promise<Admission[]> {
    const updateId = `${this.nextId()}-update`; // the same on every try: the server applies it at most once per run
    const { signal } = this.closed;
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      try {
        return await this.exchangeOnce(batch, updateId);
      } catch (err) {
        if (signal.aborted || err instanceof WorkflowUpdateFailedError) throw err; // closed, or the limiter itself refused
        const waitMs = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** attempt);
        this.opts.log.log(attempt < 2 ? 'debug' : 'warn', 'limiter update failed; retrying', {
          limiter: this.opts.limiter,
          attempt: attempt + 1,
          retryInMs: waitMs,
          error: (err as Error)?.message ?? String(err),
        });
        await delay(waitMs, signal);
      }
    }
  }

  private exchangeOnce(batch: LimiterBatch, updateId: string): Promise<Admission[]> {
    return this.opts.client.workflow.executeUpdateWithStart(limiterExchangeUpdate, {
      args: [batch],
      updateId,
      startWorkflowOperation: new WithStartWorkflowOperation<PoolLimiterWorkflow>(POOL_LIMITER_WORKFLOW, {
        workflowId: this.opts.workflowId,
        taskQueue: this.opts.taskQueue,
        args: [{ limiter: this.opts.limiter, settings: this.opts.settings }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        // Its workflow tasks go ahead of the jobs' on the shared queue: every waiting call waits on them.
        priority: { priorityKey: 1 },
        staticSummary: `limiter ${this.opts.limiter}: token budget and circuit breaker`,
      }),
    });
  }
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(asError(signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(asError(signal!.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A heartbeat that cannot throw: inside a timer, a throw would take the worker down. */
function beat(ctx: WaitContext, details?: unknown): void {
  try {
    ctx.heartbeat(details);
  } catch {
    // the next beat tries again
  }
}

/**
 * Heartbeats every second until `promise` settles, so a long wait is neither presumed dead nor deaf to
 * cancellation; `details` say why it waits (the Temporal UI shows them on the pending activity).
 */
async function waitHeartbeating<T>(promise: Promise<T>, ctx: WaitContext, details?: unknown): Promise<T> {
  const timer = setInterval(() => beat(ctx, details), HEARTBEAT_EVERY_MS);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

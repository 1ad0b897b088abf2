/**
 * How a conversation's reads and submits wait for its workflow: one submit at a time per conversation, and
 * calls asked again while the workflow cannot answer yet, until their deadline.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { CHAT_FAILURES } from '../../conversations/contract';

/** At most `limit` calls at a time per key; the others wait their turn in order. */
export class KeyedLimiter {
  private readonly keys = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(private readonly limit: number) {}

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = { running: 0, waiting: [] }));
    if (state.running >= this.limit) await new Promise<void>((resolve) => state.waiting.push(resolve));
    state.running++;
    try {
      return await work();
    } finally {
      state.running--;
      const next = state.waiting.shift();
      if (next) next();
      else if (state.running === 0) this.keys.delete(key);
    }
  }
}

/**
 * Runs `call` again, after a short random pause, while the workflow cannot answer yet (or for a reason
 * `alsoRetry` names), until `deadline`.
 */
export async function whileBusy<T>(deadline: number, call: () => Promise<T>, alsoRetry = (_err: unknown) => false): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(cannotAnswerYet(err) || alsoRetry(err)) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 150));
    }
  }
}

/**
 * A failed submit update the workflow never saw: the conversation refuses only with its own failure types,
 * so any other was the server's (its workflow task ended without processing the update). The update id is
 * the message id, so sending it again cannot add the message twice.
 */
export function notTaken(err: unknown): boolean {
  const ownTypes: string[] = Object.values(CHAT_FAILURES);
  return err instanceof WorkflowUpdateFailedError && !(err.cause instanceof ApplicationFailure && ownTypes.includes(err.cause.type ?? ''));
}

/**
 * The server's answers while a conversation's workflow task is in flight or being retried: too busy (one
 * query is held per workflow meanwhile), or a failed precondition (a task that failed or timed out, as a
 * restarted worker's long replay on a loaded machine can, is retried before the workflow answers again).
 */
const NOT_YET = [GrpcStatus.RESOURCE_EXHAUSTED, GrpcStatus.FAILED_PRECONDITION];

function cannotAnswerYet(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) if (NOT_YET.includes((e as { code?: GrpcStatus }).code!)) return true;
  return false;
}

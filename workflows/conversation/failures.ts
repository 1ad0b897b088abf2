/** How a handler's or a delivery's failure reads in a message's record. */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { FailureInfo } from '../../src/conversations/contract';

/** The first application failure or timeout in the chain, as the record shows it. */
export function failureOf(err: unknown): FailureInfo {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
    if (e instanceof TimeoutFailure) {
      const kind = (e.timeoutType ?? '').toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
      return { type: `Timeout${kind}`, message: e.message };
    }
  }
  return { type: err instanceof Error ? err.name : 'Error', message: err instanceof Error ? err.message : String(err) };
}

/** Attempts a failed activity made, when its failure says: all of them when the retry policy ran out. */
export function attemptsOf(err: unknown, maxAttempts: number): number | null {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ActivityFailure) return e.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? maxAttempts : null;
  }
  return null;
}

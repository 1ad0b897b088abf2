/** How every job workflow names and files its failures: the deadline, and the dead-letter search attribute. */
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState, TimeoutType } from '@temporalio/common';
import { DEADLINE_EXCEEDED } from '../src/jobs/job';
import { SEARCH_ATTRIBUTES } from '../src/jobs/search-attributes';

/**
 * The failure of a job that ran out of time, or undefined when `err` is not about time. Call it only
 * for errors not caused by a client's cancellation: any other cancellation is the deadline's timer.
 */
export function deadlineFailure(deadlineMs: number, err: unknown): ApplicationFailure | undefined {
  const deadlinePassed = isCancellation(err);
  // The server gives up at an activity's schedule-to-close timeout, and when the next attempt would start
  // after it or after the execution timeout.
  const noTimeToRetry = err instanceof ActivityFailure && err.retryState === RetryState.TIMEOUT;
  if (!deadlinePassed && !noTimeToRetry) return undefined;
  return deadlineExceeded(deadlineMs, err instanceof Error ? err : undefined);
}

export function deadlineExceeded(deadlineMs: number, cause?: Error): ApplicationFailure {
  return ApplicationFailure.create({
    type: DEADLINE_EXCEEDED,
    message: `the job did not finish within its deadline of ${deadlineMs} ms`,
    nonRetryable: true,
    cause,
  });
}

/**
 * Files a failing job under its failure type: dead letters are listed and counted by this attribute
 * (jobs filed in visibility carry a tenant); the failure itself stays in the history.
 */
export function recordFailureType(err: unknown): void {
  if (workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.tenant) !== undefined) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.errorType, value: failureType(err) }]);
  }
}

/** The type a failure is filed under: the first application failure's type in the chain, as the API shows it. */
export function failureType(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
    if (e instanceof TimeoutFailure) return `Timeout${timeoutName(e.timeoutType)}`;
  }
  return 'Error';
}

/** The message of the first application failure in the chain (an activity failure's own message says only that it failed). */
export function failureMessage(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure || e instanceof TimeoutFailure) return e.message;
  }
  return err instanceof Error ? err.message : String(err);
}

const timeoutName = (t: TimeoutType | undefined) =>
  t === TimeoutType.START_TO_CLOSE
    ? 'StartToClose'
    : t === TimeoutType.HEARTBEAT
      ? 'Heartbeat'
      : t === TimeoutType.SCHEDULE_TO_CLOSE
        ? 'ScheduleToClose'
        : 'ScheduleToStart';

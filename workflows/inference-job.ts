import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState, TimeoutType } from '@temporalio/common';
import type { InferenceJobInput, InferenceOutcome } from '../src/jobs/job';
import { DEADLINE_EXCEEDED, NON_RETRYABLE_ERRORS, QUEUE_TIMEOUT } from '../src/jobs/job';
import { SEARCH_ATTRIBUTES } from '../src/jobs/search-attributes';
import type { InferenceActivities } from '../activities';

/**
 * One inference call on the job's pool, with the job's retry policy and timeouts, inside the job's
 * deadline. Past the deadline the call is cancelled and the job fails as `JobDeadlineExceeded`; an
 * attempt that waits longer than `maxQueueMs` for a worker ends it as `JobQueueTimeout`.
 */
export async function inferenceJob(input: InferenceJobInput): Promise<InferenceOutcome> {
  const { runInference } = proxyActivities<InferenceActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: input.attemptTimeoutMs,
    heartbeatTimeout: input.heartbeatTimeoutMs,
    scheduleToStartTimeout: input.maxQueueMs,
    retry: {
      maximumAttempts: input.retry.maxAttempts,
      initialInterval: input.retry.initialIntervalMs,
      backoffCoefficient: input.retry.backoffCoefficient,
      maximumInterval: input.retry.maxIntervalMs,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERRORS],
    },
    summary: `${input.request.task} on pool ${input.pool}`,
  });
  // The deadline counts from when the job was accepted, not from when a workflow worker got to it.
  const remainingMs = Math.max(0, input.deadlineMs - (Date.now() - workflowInfo().startTime.getTime()));
  try {
    return await CancellationScope.withTimeout(remainingMs, () => runInference(input.request));
  } catch (err) {
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err; // cancelled by a client
    const failure = jobFailure(input, err);
    // Dead letters are listed and counted by this attribute (jobs filed in visibility carry a tenant);
    // the failure itself stays in the history.
    if (workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.tenant) !== undefined) {
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.errorType, value: failureType(failure) }]);
    }
    throw failure;
  }
}

/** The failure a job ends with: its own timeouts named as such, anything else as it came. */
function jobFailure(input: InferenceJobInput, err: unknown): unknown {
  // First: the server reports a schedule-to-start timeout with retry state TIMEOUT too (it is never retried).
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START) {
    return ApplicationFailure.create({
      type: QUEUE_TIMEOUT,
      message: `the job waited more than its maxQueueMs of ${input.maxQueueMs} ms in the queue of pool ${input.pool} without a worker starting it`,
      nonRetryable: true,
      cause: err,
    });
  }
  // Not cancelled by a client (see the caller), so a cancellation here is the deadline's timer.
  const deadlinePassed = isCancellation(err);
  // The server also gives up retrying when the next attempt would start after the execution timeout.
  const noTimeToRetry = err instanceof ActivityFailure && err.retryState === RetryState.TIMEOUT;
  if (deadlinePassed || noTimeToRetry) {
    return ApplicationFailure.create({
      type: DEADLINE_EXCEEDED,
      message: `the job did not finish within its deadline of ${input.deadlineMs} ms`,
      nonRetryable: true,
      cause: err instanceof Error ? err : undefined,
    });
  }
  return err;
}

/** The type a failure is filed under: the first application failure's type in the chain, as the API shows it. */
function failureType(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = (e as Error).cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
    if (e instanceof TimeoutFailure) return `Timeout${timeoutName(e.timeoutType)}`;
  }
  return 'Error';
}

const timeoutName = (t: TimeoutType | undefined) =>
  t === TimeoutType.START_TO_CLOSE ? 'StartToClose' : t === TimeoutType.HEARTBEAT ? 'Heartbeat' : t === TimeoutType.SCHEDULE_TO_CLOSE ? 'ScheduleToClose' : 'ScheduleToStart';

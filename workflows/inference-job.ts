import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { InferenceJobInput, InferenceOutcome } from '../src/jobs/inference-contract';
import { NON_RETRYABLE_ERRORS, QUEUE_TIMEOUT } from '../src/jobs/job';
import type { InferenceActivities } from '../activities';
import { deadlineFailure, recordFailureType } from './job-failure';

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
    recordFailureType(failure);
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
  return deadlineFailure(input.deadlineMs, err) ?? err;
}

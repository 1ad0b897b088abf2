import { ActivityFailure, ApplicationFailure, isCancellation, proxyActivities, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { InferenceJobInput, InferenceOutcome } from '../src/jobs/inference-contract';
import { NON_RETRYABLE_ERRORS, QUEUE_TIMEOUT } from '../src/jobs/job';
import type { InferenceActivities } from '../activities';
import { deadlineExceeded, deadlineFailure, recordFailureType } from './job-failure';

/**
 * One inference call on the job's pool, with the job's retry policy and timeouts, inside the job's
 * deadline. The deadline is the activity's schedule-to-close timeout, so the server enforces it with no
 * timer of the workflow's own: past it the call is given up and the job fails as `JobDeadlineExceeded`;
 * an attempt that waits longer than `maxQueueMs` for a worker ends it as `JobQueueTimeout`.
 */
export async function inferenceJob(input: InferenceJobInput): Promise<InferenceOutcome> {
  // The deadline counts from when the job was accepted, not from when a workflow worker got to it.
  const remainingMs = input.deadlineMs - (Date.now() - workflowInfo().startTime.getTime());
  if (remainingMs <= 0) throw failed(deadlineExceeded(input.deadlineMs));
  const { runInference } = proxyActivities<InferenceActivities>({
    taskQueue: input.taskQueue,
    scheduleToCloseTimeout: remainingMs,
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
  try {
    return await runInference(input.request);
  } catch (err) {
    if (isCancellation(err)) throw err; // cancelled by a client
    throw failed(jobFailure(input, err));
  }
}

/** Files the job's failure under its type (dead letters) and hands it back to be thrown. */
function failed(failure: unknown): unknown {
  recordFailureType(failure);
  return failure;
}

/** The failure a job ends with: its own timeouts named as such, anything else as it came. */
function jobFailure(input: InferenceJobInput, err: unknown): unknown {
  // First: the server reports a schedule-to-start timeout with retry state TIMEOUT too (it is never retried).
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START) {
    // The server caps the wait for a worker at the deadline (schedule-to-close) and reports reaching it as
    // a schedule-to-start timeout: it is the deadline's if the deadline has passed.
    const deadlinePassed = Date.now() >= workflowInfo().startTime.getTime() + input.deadlineMs;
    if (deadlinePassed) return deadlineExceeded(input.deadlineMs, err);
    return ApplicationFailure.create({
      type: QUEUE_TIMEOUT,
      message: `the job waited more than its maxQueueMs of ${input.maxQueueMs} ms in the queue of pool ${input.pool} without a worker starting it`,
      nonRetryable: true,
      cause: err,
    });
  }
  return deadlineFailure(input.deadlineMs, err) ?? err;
}

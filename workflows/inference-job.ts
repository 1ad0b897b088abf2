import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { InferenceJobInput, InferenceOutcome } from '../src/jobs/job';
import { DEADLINE_EXCEEDED, NON_RETRYABLE_ERRORS } from '../src/jobs/job';
import type { InferenceActivities } from '../activities';

/**
 * One inference call on the job's pool, with the job's retry policy and timeouts, inside the job's
 * deadline. Past the deadline the call is cancelled and the job fails as `JobDeadlineExceeded`.
 */
export async function inferenceJob(input: InferenceJobInput): Promise<InferenceOutcome> {
  const { runInference } = proxyActivities<InferenceActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: input.attemptTimeoutMs,
    heartbeatTimeout: input.heartbeatTimeoutMs,
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
    const deadlinePassed = isCancellation(err) && !CancellationScope.current().consideredCancelled;
    // The server also gives up retrying when the next attempt would start after the execution timeout.
    const noTimeToRetry = err instanceof ActivityFailure && err.retryState === RetryState.TIMEOUT;
    if (deadlinePassed || noTimeToRetry) {
      throw ApplicationFailure.create({
        type: DEADLINE_EXCEEDED,
        message: `the job did not finish within its deadline of ${input.deadlineMs} ms`,
        nonRetryable: true,
        cause: err instanceof Error ? err : undefined,
      });
    }
    throw err;
  }
}

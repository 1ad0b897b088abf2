import { proxyActivities } from '@temporalio/workflow';
import type { InferenceJobInput, InferenceOutcome } from '../src/jobs/job';
import { NON_RETRYABLE_ERRORS } from '../src/jobs/job';
import type { InferenceActivities } from '../activities';

/**
 * One inference call on the job's pool, with the job's retry policy and timeouts. The job's overall
 * deadline is the workflow execution timeout, set by the API when it starts the job.
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
  return runInference(input.request);
}

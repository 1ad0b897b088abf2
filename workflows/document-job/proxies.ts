/** The activities a document job calls, with the retry policies and timeouts each kind of work needs. */
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { InferenceActivities } from '../../activities';
import type { PipelineActivities } from '../../activities/pipeline';
import { DOCUMENT_FAILURES, type DocumentJobInput } from '../../src/documents/contract';
import { NON_RETRYABLE_ERRORS } from '../../src/jobs/job';
import { webhookActivities } from '../webhook';

/** Pipeline steps (extraction, splitting, aggregation) read and write whole documents: minutes, not the inference attempt's seconds. */
const PIPELINE_ATTEMPT_MS = 10 * 60_000;
const PIPELINE_HEARTBEAT_MS = 60_000;
/** Cleanup retries on its own: it must not give up while the blob store is briefly away. */
const CLEANUP_RETRY = { initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 60_000, maximumAttempts: 10 };
/** Failures no retry can change; the activities mark others final case by case (a 4xx from a URL). */
const NON_RETRYABLE = [
  ...NON_RETRYABLE_ERRORS,
  DOCUMENT_FAILURES.urlRefused,
  DOCUMENT_FAILURES.unsupportedDocument,
  DOCUMENT_FAILURES.emptyDocument,
  DOCUMENT_FAILURES.documentTooLarge,
];

export type DocumentActivities = ReturnType<typeof documentActivities>;

export function documentActivities(input: DocumentJobInput) {
  const retry = {
    maximumAttempts: input.retry.maxAttempts,
    initialInterval: input.retry.initialIntervalMs,
    backoffCoefficient: input.retry.backoffCoefficient,
    maximumInterval: input.retry.maxIntervalMs,
    nonRetryableErrorTypes: NON_RETRYABLE,
  };
  return {
    /** Fetching, extraction, splitting, aggregation and publishing, on the workflows task queue. */
    pipeline: proxyActivities<PipelineActivities>({
      taskQueue: input.pipelineTaskQueue,
      startToCloseTimeout: PIPELINE_ATTEMPT_MS,
      heartbeatTimeout: PIPELINE_HEARTBEAT_MS,
      retry,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }),
    cleanup: proxyActivities<PipelineActivities>({ taskQueue: input.pipelineTaskQueue, startToCloseTimeout: 60_000, retry: CLEANUP_RETRY }),
    /** Inference on the job's pool; `summary` names the call in the UI. */
    pool: (summary: string) =>
      proxyActivities<InferenceActivities>({
        taskQueue: input.poolTaskQueue,
        // Each task of a chunk is one provider call, each given the job's attempt timeout.
        startToCloseTimeout: input.attemptTimeoutMs * input.tasks.length,
        heartbeatTimeout: input.heartbeatTimeoutMs,
        retry,
        summary,
        // Unset means TRY_CANCEL, whatever the docs say: the cleanup must wait until the chunks have stopped.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      }),
    webhook: (url: string) => webhookActivities(input.pipelineTaskQueue, url),
  };
}

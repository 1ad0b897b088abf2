/** The activities a batch calls: its groups on the pool, its finalization and webhook beside the workflow. */
import { ActivityCancellationType, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { InferenceActivities } from '../../activities';
import type { BatchFinalizeActivities } from '../../activities/batch-finalize';
import type { BatchJobInput } from '../../src/batches/contract';
import { webhookActivities } from '../webhook';

/**
 * How long past the window's end a group may still run. The window's own timer cancels the groups
 * first, and they write what they finished before they acknowledge; the server's limit only stops a
 * group by itself when no workflow worker was there to cancel it.
 */
const CANCELLATION_GRACE_MS = 10 * 60_000;
/**
 * A group attempt fails for its worker's sake (gone, its blob store away), never an item's: it is retried,
 * resuming where its manifest says, for as long as the window lasts (no maximumAttempts: unlimited).
 */
const GROUP_RETRY = { initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 5 * 60_000 };
/** Finalization reads and writes a manifest per group: minutes at most; it waits out a blob store that is away. */
const FINALIZE_ATTEMPT_MS = 10 * 60_000;
const FINALIZE_HEARTBEAT_MS = 60_000;
const FINALIZE_RETRY = { initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 60_000 };

export type BatchActivities = ReturnType<typeof batchActivities>;

export function batchActivities(input: BatchJobInput, windowEndsAt: number) {
  // The workflows' own task queue: its worker has the blob store and the webhook secrets.
  const beside = workflowInfo().taskQueue;
  return {
    /** Group `index`'s activity, bounded by what is left of the window when it is scheduled. */
    group: (index: number) =>
      proxyActivities<InferenceActivities>({
        taskQueue: input.taskQueue,
        scheduleToCloseTimeout: Math.max(0, windowEndsAt - Date.now()) + CANCELLATION_GRACE_MS,
        heartbeatTimeout: input.heartbeatTimeoutMs,
        retry: GROUP_RETRY,
        priority: { priorityKey: input.priority, fairnessKey: input.tenant, fairnessWeight: input.fairnessWeight },
        // The groups write what they finished before the batch is finalized.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary: `batch ${input.batchId} group ${index + 1}/${input.groups} on pool ${input.pool}`,
      }).runBatchGroup,
    finalize: proxyActivities<BatchFinalizeActivities>({
      taskQueue: beside,
      startToCloseTimeout: FINALIZE_ATTEMPT_MS,
      heartbeatTimeout: FINALIZE_HEARTBEAT_MS,
      retry: FINALIZE_RETRY,
    }).finalizeBatch,
    webhook: (url: string) => webhookActivities(beside, url).deliverWebhook,
  };
}

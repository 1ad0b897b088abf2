import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BlobStore } from '../src/blobs/store';
import { BATCH_FAILURES, BATCH_ITEM_FAILURES, type BatchCounts, type GroupProgress } from '../src/batches/contract';
import { appendPart, readGroupItems, readProgress } from './batch-files';

export interface FinalizeBatchRequest {
  scope: string;
  groups: number;
  groupSize: number;
  items: number;
  reason: 'completed' | 'expired' | 'cancelled';
}

/** Groups finalized at once: a remote store answers many small requests in parallel. */
const PARALLEL_GROUPS = 16;
const NOT_RUN = { expired: 'the batch expired before this item ran', cancelled: 'the batch was cancelled before this item ran' };

/**
 * A batch's last step, run by the workflow worker beside the workflow: it needs the blob store, not a
 * model, so it never waits for a pool that is paused or scaled to zero. Every item that has no result
 * gets one saying why it never ran, and the counts are summed from the groups' manifests. A retry
 * finds the groups it already finished complete and counts them again.
 */
export function createBatchFinalizeActivities({ blobs }: { blobs: BlobStore }) {
  return {
    async finalizeBatch({ scope, groups, groupSize, items, reason }: FinalizeBatchRequest): Promise<BatchCounts> {
      const finalizeGroup = async (index: number): Promise<GroupProgress> => {
        const size = Math.min(groupSize, items - index * groupSize);
        const progress = await readProgress(blobs, scope, index);
        if (progress.done >= size) return progress;
        if (reason === 'completed') {
          const message = `group ${index} of ${scope} has results for ${progress.done} of its ${size} items`;
          throw ApplicationFailure.nonRetryable(message, BATCH_FAILURES.dataMissing);
        }
        const error = { type: BATCH_ITEM_FAILURES[reason], message: NOT_RUN[reason] };
        const rest = (await readGroupItems(blobs, scope, index)).slice(progress.done);
        return appendPart(
          blobs,
          scope,
          index,
          progress,
          rest.map(({ line, customId }) => ({ line, customId, ok: false, error, attempts: 0 })),
          'final',
        );
      };

      const counts: BatchCounts = { total: items, completed: 0, failed: 0 };
      let next = 0;
      const finalizer = async () => {
        for (let index = next++; index < groups; index = next++) {
          const { completed, failed } = await finalizeGroup(index);
          counts.completed += completed;
          counts.failed += failed;
          Context.current().heartbeat();
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL_GROUPS, groups) }, finalizer));
      return counts;
    },
  };
}

export type BatchFinalizeActivities = ReturnType<typeof createBatchFinalizeActivities>;

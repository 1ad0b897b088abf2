import { CancellationScope, continueAsNew, setHandler, sleep } from '@temporalio/workflow';
import { batchStateQuery, type BatchJobInput, type BatchJobWorkflow, type BatchOutcome } from '../../src/batches/contract';
import { Batch } from './batch';
import { finish } from './finish';
import { runGroups } from './groups';

/**
 * A batch: its groups (written to the blob store by the API) run on the pool's workers, a few at once,
 * each an activity that runs its items and writes their results; at the end the items that never ran
 * get a result saying why, and the outcome carries the counts. The completion window is a durable timer
 * from the batch's acceptance: when it fires, or when a client cancels, the running groups are cancelled
 * (they write what they finished first) and the batch ends `expired` or `cancelled` with an outcome,
 * never a failure. The workflow holds counts, never items, and continues as new between groups.
 */
export async function batchJob(input: BatchJobInput): Promise<BatchOutcome> {
  // A client's cancel is taken over, not let through: the batch still finalizes and returns its outcome.
  const cancelRequested = CancellationScope.current().cancelRequested;
  return CancellationScope.nonCancellable(async () => {
    const batch = new Batch(input);
    setHandler(batchStateQuery, () => batch.state());
    cancelRequested.catch(() => batch.stop({ reason: 'cancelled' }));
    batch.publish();
    const windowLeftMs = batch.windowEndsAt - Date.now();
    if (windowLeftMs > 0) void sleep(windowLeftMs).then(() => batch.stop({ reason: 'expired' }));
    else batch.stop({ reason: 'expired' });

    const next = await runGroups(batch, input.carried?.nextGroup ?? 0);
    if (!batch.stopped && next < input.groups) await continueAsNew<BatchJobWorkflow>({ ...input, carried: batch.carry(next) });
    return finish(batch);
  });
}

/** The groups of a batch on its pool, at most `maxParallelGroups` at once, the next starting as soon as one ends. */
import { condition, workflowInfo } from '@temporalio/workflow';
import type { Batch } from './batch';

/**
 * Continue as new past this many history events even if the server never suggests it (servers before
 * 1.20, the time-skipping test server); Temporal's own suggestion comes at about 4K events.
 */
const MAX_HISTORY_EVENTS = 10_000;

/**
 * Runs the groups from `next` on in a sliding window; returns the next group not started, early when the
 * batch stops or the run should continue as new. It returns only once no group runs, so every group
 * below the index returned has ended: a run continues as new between groups, never carrying one.
 */
export async function runGroups(batch: Batch, next: number): Promise<number> {
  const { input, scope } = batch;
  const { retry, attemptTimeoutMs, itemConcurrency } = input;
  const inFlight = new Set<number>();
  let started = 0;
  const start = (index: number) => {
    inFlight.add(index);
    started++;
    const runBatchGroup = batch.activities.group(index);
    batch.groups
      .run(() => runBatchGroup({ scope, index, retry, attemptTimeoutMs, itemConcurrency }))
      .then(
        (progress) => batch.groupDone(progress),
        (err: unknown) => batch.groupFailed(index, err),
      )
      .finally(() => inFlight.delete(index));
  };
  const timeToContinue = () =>
    started >= (input.groupsPerRun ?? Infinity) ||
    workflowInfo().continueAsNewSuggested ||
    workflowInfo().historyLength > MAX_HISTORY_EVENTS;
  while (next < input.groups && !batch.stopped && !timeToContinue()) {
    await condition(() => inFlight.size < input.maxParallelGroups || batch.stopped !== undefined);
    if (!batch.stopped) start(next++);
  }
  await condition(() => inFlight.size === 0);
  return next;
}

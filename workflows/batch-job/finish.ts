/** How a batch ends: the items that never ran filed as expired or cancelled, the counts summed from its files, and the webhook. */
import { upsertMemo } from '@temporalio/workflow';
import { BATCH_OUTCOME_MEMO, type BatchOutcome } from '../../src/batches/contract';
import { failureMessage, failureType } from '../job-failure';
import type { Batch } from './batch';

export async function finish(batch: Batch): Promise<BatchOutcome> {
  const { stopped } = batch;
  const outcome =
    stopped?.reason === 'failed'
      ? batch.outcome('failed', batch.counts, stopped.error)
      : await finalize(batch, stopped?.reason ?? 'completed');
  upsertMemo({ [BATCH_OUTCOME_MEMO]: outcome });
  if (batch.input.webhook) await notify(batch, batch.input.webhook.url, outcome);
  return outcome;
}

async function finalize(batch: Batch, reason: 'completed' | 'expired' | 'cancelled'): Promise<BatchOutcome> {
  const { input, scope } = batch;
  if (reason !== 'cancelled') batch.finalizing(); // a cancelled batch shows `cancelling` until it has ended, as OpenAI's do
  try {
    const counts = await batch.activities.finalize({ scope, groups: input.groups, groupSize: input.groupSize, items: input.items, reason });
    return batch.outcome(reason, counts);
  } catch (err) {
    // Finalization retries until it can read the files; a final failure says they are gone.
    return batch.outcome('failed', batch.counts, { type: failureType(err), message: failureMessage(err) });
  }
}

/** The signed webhook; a receiver that stays down does not change how the batch ended. */
async function notify(batch: Batch, url: string, outcome: BatchOutcome): Promise<void> {
  const { input } = batch;
  const type = `batch.${outcome.status}`;
  const event = { type, tenant: input.tenant, batch: { id: input.batchId, status: outcome.status, requestCounts: outcome.counts } };
  await batch.activities
    .webhook(url)({ url, tenant: input.tenant, id: `${input.batchId}.${type}`, event })
    .catch(() => undefined);
}

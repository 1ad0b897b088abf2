import { BlobNotFoundError, type BlobRef } from '../src/blobs/store';
import {
  applyDeliveries,
  messageCompletedEvent,
  messageRecordKey,
  type DeliveryRequest,
  type DeliveryResult,
  type MessageRecord,
  type RecordDeliveriesRequest,
} from '../src/conversations/contract';
import { createPipelineActivities, type PipelineActivityDeps } from './pipeline';

/**
 * The conversation workflow's own activities, run by the workflow worker (which has the blob store):
 * storing message records, and delivering a finished message to a target as a signed webhook.
 */
export function createChatActivities(deps: PipelineActivityDeps) {
  const { blobs } = deps;
  const pipeline = createPipelineActivities(deps);
  const readRecord = async (tenant: string, conversationId: string, seq: number): Promise<MessageRecord> =>
    JSON.parse((await blobs.get(messageRecordKey(tenant, conversationId, seq))).toString('utf8')) as MessageRecord;

  return {
    /** Stores a finished (or cancelled) message's record, replacing an earlier version. */
    async recordMessage({ tenant, record }: { tenant: string; record: MessageRecord }): Promise<BlobRef> {
      return blobs.putAt(messageRecordKey(tenant, record.conversationId, record.seq), JSON.stringify(record));
    },

    /** Merges a message's settled deliveries and their events into its stored record. */
    async recordDeliveries({ tenant, conversationId, seq, deliveries, events }: RecordDeliveriesRequest): Promise<void> {
      const record = await readRecord(tenant, conversationId, seq).catch((err: unknown) => {
        if (err instanceof BlobNotFoundError) return undefined; // removed meanwhile: nothing left to update
        throw err;
      });
      if (!record) return;
      applyDeliveries(record, deliveries, events);
      await blobs.putAt(messageRecordKey(tenant, conversationId, seq), JSON.stringify(record));
    },

    /**
     * One attempt to POST the signed `conversation.message.completed` event, built from the stored record
     * (the history carries only references). Signing, the SSRF guard and how a failure is retried are the
     * pipeline's webhook delivery, shared; a failure carries `{ status, attempt }`.
     */
    async deliverToTarget({ tenant, conversationId, seq, target, webhookId }: DeliveryRequest): Promise<DeliveryResult> {
      const event = messageCompletedEvent(tenant, await readRecord(tenant, conversationId, seq));
      const { status, attempts } = await pipeline.deliverWebhook({ url: target.url, tenant, id: webhookId, event });
      return { httpStatus: status, attempt: attempts };
    },
  };
}

export type ChatActivities = ReturnType<typeof createChatActivities>;

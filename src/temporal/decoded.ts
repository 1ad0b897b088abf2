/**
 * The raw protos the clients read themselves — a description's pending activities, a history's events —
 * with every payload in them decoded by the client's own codecs (./codec.ts), in place, so results,
 * heartbeat details and failures read as they were written.
 */
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { decode } from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const isPayload = (value: object): value is Payload =>
  'data' in value && value.data instanceof Uint8Array && 'metadata' in value && typeof value.metadata === 'object';

/** Walks a decoded proto message: each Payload anywhere in it is replaced by what the codecs decode it to. */
async function decodeWithin(node: object, codecs: PayloadCodec[]): Promise<void> {
  for (const [field, value] of Object.entries(node) as [string, unknown][]) {
    if (!value || typeof value !== 'object' || value instanceof Uint8Array) continue;
    if (isPayload(value)) (node as Record<string, unknown>)[field] = (await decode(codecs, [value]))[0];
    else await decodeWithin(value, codecs);
  }
}

const codecsOf = (handle: WorkflowHandle) => handle.client.options.loadedDataConverter.payloadCodecs;

export async function describeDecoded(handle: WorkflowHandle): Promise<WorkflowExecutionDescription> {
  const description = await handle.describe();
  await decodeWithin(description.raw, codecsOf(handle));
  return description;
}

export async function fetchHistoryDecoded(handle: WorkflowHandle): Promise<History> {
  const history = await handle.fetchHistory();
  await decodeWithin(history, codecsOf(handle));
  return history;
}

/** Only the event that closed the run (its result or its failure): one call, however long the history. */
export async function closeEventDecoded(client: Client, workflowId: string, runId: string): Promise<HistoryEvent | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    historyEventFilterType: temporal.api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
  });
  const event = history?.events?.[0];
  if (event) await decodeWithin(event, client.options.loadedDataConverter.payloadCodecs);
  return event;
}

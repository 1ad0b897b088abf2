/** A message's record: how it is made, what it logs, how much it weighs, and where it is stored. */
import { proxyActivities } from '@temporalio/workflow';
import type { ChatActivities } from '../../activities/chat';
import {
  webhookIdOf,
  type ChatEventBody,
  type DeliveryState,
  type HandlerOutcome,
  type MessageRecord,
  type SubmitMessageRequest,
} from '../../src/conversations/contract';
import type { ChatHandler, ChatStage, ChatTarget } from '../../src/conversations/pipeline';

/**
 * Record writes run on the conversation's own task queue, whose workers have the blob store. They are
 * not local activities: replayed after a workflow worker restart, local-activity results interleaved with
 * submit updates resolved in another order than they ran, a nondeterminism error that stalled the conversation.
 */
export const { recordMessage, recordDeliveries } = proxyActivities<ChatActivities>({
  startToCloseTimeout: 30_000,
  // A blob store that is down holds the conversation until it is back: records are not dropped.
  retry: { initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 60_000 },
});

/** Workflow time, as records show it. */
export const now = (): string => new Date().toISOString();

/** Appends an event to the message's log; its id is its place in the log. */
export function logEvent(record: MessageRecord, body: ChatEventBody): void {
  record.events.push({ id: record.events.length + 1, at: now(), ...body });
}

export function newRecord(request: SubmitMessageRequest, seq: number, conversationId: string, stages: readonly ChatStage[]): MessageRecord {
  return {
    id: request.id,
    conversationId,
    seq,
    text: request.text,
    author: request.author ?? null,
    metadata: request.metadata ?? null,
    status: 'pending',
    error: null,
    acceptedAt: now(),
    startedAt: null,
    finishedAt: null,
    stages: stages.map((stage, i) => ({
      index: i + 1,
      name: stage.name ?? null,
      fanIn: stage.fanIn,
      status: 'pending',
      handlers: stage.handlers.map(newOutcome),
    })),
    deliveries: [],
    events: [],
  };
}

const newOutcome = (h: ChatHandler): HandlerOutcome => ({
  name: h.name,
  pool: h.pool,
  task: h.task,
  status: 'pending',
  output: null,
  model: null,
  usage: null,
  error: null,
  attempts: null,
  startedAt: null,
  finishedAt: null,
});

export const newDelivery = (record: MessageRecord, target: ChatTarget): DeliveryState => ({
  target: target.name,
  url: target.url,
  webhookId: webhookIdOf(record.id, target.name),
  status: 'pending',
  attempts: null,
  httpStatus: null,
  lastError: null,
  startedAt: null,
  finishedAt: null,
});

/** The characters a message holds in the workflow's state. */
export function messageChars(m: { text: string; author?: string | null; metadata?: Record<string, unknown> | null }): number {
  return m.text.length + (m.author?.length ?? 0) + (m.metadata ? JSON.stringify(m.metadata).length : 0);
}

/** The newest records whose JSON fits `chars`, oldest first. */
export function newestWithin(records: readonly MessageRecord[], chars: number): MessageRecord[] {
  const kept: MessageRecord[] = [];
  let used = 0;
  for (let i = records.length - 1; i >= 0; i--) {
    used += JSON.stringify(records[i]).length;
    if (used > chars) break;
    kept.unshift(records[i]!);
  }
  return kept;
}

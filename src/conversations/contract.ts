/**
 * The conversation as both sides see it: the entity workflow's input, the message it is sent, the record
 * it keeps of every message (per-stage and per-handler outcomes, deliveries, the ordered event log), what
 * its queries answer, and where finished records are stored. Pure code: workflows import it too.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { TokenUsage } from '../inference/provider';
import type { ChatPipeline, ChatTarget, FanIn } from './pipeline';

/** Chosen by the client. */
export const CONVERSATION_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The workflow type: `workflows/conversation/` exports a function of this name and shape. */
export const CONVERSATION_WORKFLOW = 'conversation';
export type ConversationWorkflow = (input: ConversationInput) => Promise<never>;
export const conversationWorkflowId = (tenant: string, conversationId: string): string => `${tenant}/conversation/${conversationId}`;

/** Failure types: of a rejected `submitMessage` (the update's failure cause), and of a message (its record's `error.type`). */
export const CHAT_FAILURES = {
  /** The conversation's queue is full; answered 429 with Retry-After. */
  tooManyPending: 'TooManyPendingMessages',
  /** The conversation is being cancelled and takes no more messages; a message it stopped ends with it too. */
  conversationCancelled: 'ConversationCancelled',
  /** A stage's fan-in failed; the message says which stage and how its handlers failed. */
  stageFailed: 'StageFailed',
} as const;

export const MESSAGE_LIMITS = { textChars: 32_000, authorChars: 200, metadataChars: 4000 } as const;
export const DEFAULT_MAX_PENDING = 100;
export const MAX_PENDING = 1000;

/** The workflow's argument: everything resolved, nothing left for the workflow to look up. */
export interface ConversationInput {
  tenant: string;
  conversationId: string;
  pipeline: ChatPipeline;
  /** Messages waiting (not yet started) beyond which `submitMessage` is rejected. */
  maxPending: number;
  /** Pool task queues are `<prefix>-pool-<pool>`. */
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  /** Messages a run accepts, or starts, before it continues as new; tests lower it. */
  messagesPerRun?: number;
  /** Set by continue-as-new: the state of the previous run. */
  carried?: ConversationCarry;
}

/** The argument of `submitMessage`. The id is the API's (from the Idempotency-Key when there is one). */
export interface SubmitMessageRequest {
  id: string;
  text: string;
  author?: string;
  metadata?: Record<string, unknown>;
}

/**
 * What `submitMessage` answers; a repeat of a known id answers the message it already is. (A repeat
 * with the same update id in the same run gets Temporal's stored answer to the first call.)
 */
export interface SubmittedMessage {
  id: string;
  seq: number;
  /** `pending` for a new message; a repeat's current status, or null when its record is only stored. */
  status: MessageStatus | null;
}

export const MESSAGE_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];
export const STAGE_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];
export const HANDLER_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'] as const;
export type HandlerStatus = (typeof HANDLER_STATUSES)[number];
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface FailureInfo {
  type: string;
  message: string;
}

export interface HandlerOutcome {
  name: string;
  pool: string;
  task: string;
  status: HandlerStatus;
  output: unknown;
  model: string | null;
  usage: TokenUsage | null;
  error: FailureInfo | null;
  /** Attempts made; null when the failure does not say (a non-retryable failure, a cancellation). */
  attempts: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface StageRecord {
  /** 1-based. */
  index: number;
  name: string | null;
  fanIn: FanIn;
  status: StageStatus;
  handlers: HandlerOutcome[];
}

export interface DeliveryState {
  target: string;
  url: string;
  /** The `webhook-id` header: the same on every attempt and after continue-as-new, so receivers can dedupe. */
  webhookId: string;
  status: DeliveryStatus;
  /** Attempts of the delivery's latest activity; null while it has not ended. */
  attempts: number | null;
  /** The receiver's HTTP status of the last answer. */
  httpStatus: number | null;
  lastError: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

type EventBody =
  | { type: 'message.accepted'; seq: number }
  | { type: 'handler.started'; stage: number; handler: string }
  | { type: 'handler.succeeded'; stage: number; handler: string; output: unknown; attempts: number }
  | { type: 'handler.failed'; stage: number; handler: string; error: FailureInfo; attempts: number | null }
  | { type: 'handler.cancelled'; stage: number; handler: string }
  | { type: 'stage.completed'; stage: number; status: StageStatus }
  | { type: 'message.completed'; status: MessageStatus }
  | { type: 'delivery.delivered'; target: string; attempts: number; httpStatus: number }
  | { type: 'delivery.failed'; target: string; error: string; attempts: number | null };

/** One entry of a message's event log; ids are 1, 2, … per message (SSE `id:`), `type` is the SSE `event:`. */
export type ChatEvent = { id: number; at: string } & EventBody;
export type ChatEventType = ChatEvent['type'];
/** An event as it is recorded: the id and time are given by the log. */
export type ChatEventBody = EventBody;

export interface MessageRecord {
  id: string;
  conversationId: string;
  seq: number;
  text: string;
  author: string | null;
  metadata: Record<string, unknown> | null;
  status: MessageStatus;
  /** Why a failed or cancelled message ended so: which stage, and its handlers' failures. */
  error: FailureInfo | null;
  acceptedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  stages: StageRecord[];
  deliveries: DeliveryState[];
  events: ChatEvent[];
}

export interface TargetHealth {
  name: string;
  url: string;
  delivered: number;
  failed: number;
  /** Deliveries that failed since the last one that got through. */
  consecutiveFailures: number;
  /** Deliveries not yet settled, queued or being attempted. */
  pending: number;
  lastDeliveredAt: string | null;
  lastError: string | null;
}

/** What `conversationState` answers (GET /v1/conversations/:cid). */
export interface ConversationState {
  conversationId: string;
  tenant: string;
  /** `active` while a message is processed or waiting. */
  status: 'active' | 'idle' | 'cancelled';
  /** The highest seq given out: the number of messages accepted. */
  lastSeq: number;
  /** Messages finished (succeeded or failed). */
  messageCount: number;
  /** Messages waiting, not counting the one being processed. */
  pending: number;
  maxPending: number;
  current: { id: string; seq: number } | null;
  pipeline: ChatPipeline;
  targets: TargetHealth[];
}

/** A message the workflow no longer holds: its record is the blob at `key`. */
export interface StoredMessage {
  seq: number;
  key: string;
}

/** `messageRecord(idOrSeq)`: the live record, where an older one is stored, or null for a message the conversation does not know. */
export type MessageRecordAnswer = { record: MessageRecord } | { stored: StoredMessage } | null;

/**
 * `messageEvents(idOrSeq, afterEventId)`: the events after that id; `done` once the message finished and
 * its deliveries settled (nothing more will be logged).
 */
export type MessageEventsAnswer = { events: ChatEvent[]; status: MessageStatus; done: boolean } | { stored: StoredMessage } | null;

/** The deliveries of one finished message that have not all settled, with their events not yet in the stored record. */
export interface OutboxEntry {
  seq: number;
  messageId: string;
  /** The id the message's next event gets. */
  nextEventId: number;
  deliveries: DeliveryState[];
  events: ChatEvent[];
}

/** What a run hands the next one when it continues as new. */
export interface ConversationCarry {
  lastSeq: number;
  messageCount: number;
  /** Accepted, not started; in seq order. */
  pending: MessageRecord[];
  /** The latest finished records, oldest first (as many as fit the carry budget). */
  recent: MessageRecord[];
  /** Recent message ids and their seq, oldest first: a repeat after continue-as-new answers the same message. */
  recentIds: [string, number][];
  outbox: OutboxEntry[];
  targets: TargetHealth[];
}

/** Retries of a webhook delivery: its own policy, independent of the handlers'. */
export const DELIVERY_POLICY = {
  attemptTimeoutMs: 30_000,
  maxAttempts: 10,
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maxIntervalMs: 60_000,
  /** From the first attempt; also bounds a delivery re-issued after continue-as-new. */
  giveUpAfterMs: 15 * 60_000,
  /** Deliveries to one target attempted at once; the rest wait in the outbox. */
  inFlightPerTarget: 20,
  /** Unsettled deliveries one target may have; past it a new one fails at once (a target down for long sheds load). */
  queuedPerTarget: 200,
} as const;

/** The argument of the `deliverToTarget` activity: the body is built from the stored record (claim check). */
export interface DeliveryRequest {
  tenant: string;
  conversationId: string;
  seq: number;
  target: ChatTarget;
  webhookId: string;
}

export interface DeliveryResult {
  httpStatus: number;
  attempt: number;
}

/** The argument of `recordDeliveries`: settled deliveries and their events, merged into the stored record. */
export interface RecordDeliveriesRequest {
  tenant: string;
  conversationId: string;
  seq: number;
  deliveries: DeliveryState[];
  events: ChatEvent[];
}

/** Everything a conversation keeps in the blob store. */
export const conversationScope = (tenant: string, conversationId: string): string => `conversations/${tenant}/${conversationId}`;
export const messageRecordKey = (tenant: string, conversationId: string, seq: number): string =>
  `${conversationScope(tenant, conversationId)}/messages/${seq}.json`;

/** The webhook id of a message's delivery to a target. */
export const webhookIdOf = (messageId: string, target: string): string => `${messageId}.${target}`;

/** Puts settled deliveries (by target) and their events (by id, once) into a record. */
export function applyDeliveries(record: MessageRecord, deliveries: readonly DeliveryState[], events: readonly ChatEvent[]): void {
  for (const d of deliveries) {
    const i = record.deliveries.findIndex((own) => own.target === d.target);
    if (i >= 0) record.deliveries[i] = d;
    else record.deliveries.push(d);
  }
  const known = new Set(record.events.map((e) => e.id));
  record.events.push(...events.filter((e) => !known.has(e.id)));
  record.events.sort((a, b) => a.id - b.id);
}

/** The signed body each target receives for a finished message. */
export function messageCompletedEvent(tenant: string, record: MessageRecord) {
  return {
    type: 'conversation.message.completed' as const,
    tenant,
    conversationId: record.conversationId,
    message: {
      id: record.id,
      seq: record.seq,
      status: record.status,
      text: record.text,
      author: record.author,
      metadata: record.metadata,
      error: record.error,
      acceptedAt: record.acceptedAt,
      finishedAt: record.finishedAt,
      stages: record.stages.map((s) => ({
        index: s.index,
        name: s.name,
        status: s.status,
        handlers: s.handlers.map((h) => ({ name: h.name, status: h.status, output: h.output, model: h.model, error: h.error })),
      })),
    },
  };
}

/** Accepts a message into the conversation's queue (rejected when the queue is full or the conversation is cancelled). */
export const submitMessageUpdate = defineUpdate<SubmittedMessage, [SubmitMessageRequest]>('submitMessage');
export const conversationStateQuery = defineQuery<ConversationState>('conversationState');
/** A message by id, or by seq (a number, or its decimal string as it comes from a URL): its live record, or its stored one. */
export const messageRecordQuery = defineQuery<MessageRecordAnswer, [string | number]>('messageRecord');
/** A message's events after the given event id. */
export const messageEventsQuery = defineQuery<MessageEventsAnswer, [string | number, number]>('messageEvents');

/**
 * The conversation and message resources the API returns, as zod schemas (they generate the OpenAPI
 * document), and how they are built from what the conversation workflow answers.
 */
import { z } from 'zod';
import {
  DELIVERY_STATUSES,
  HANDLER_STATUSES,
  MESSAGE_STATUSES,
  STAGE_STATUSES,
  type ConversationState,
  type DeliveryState,
  type MessageRecord,
  type TargetHealth,
} from '../../conversations/contract';
import { fanInSchema, pipelineSchema, type ChatPipeline } from '../../conversations/pipeline';
import { temporalUiLink, temporalUiLinkSchema, type JobLinkBase } from '../../jobs/resource';

const time = z.iso.datetime();
const failureSchema = z.object({ type: z.string().describe('Stable failure type, e.g. ProviderRejected'), message: z.string() });

const handlerOutcomeSchema = z.object({
  name: z.string(),
  pool: z.string(),
  task: z.string(),
  status: z.enum(HANDLER_STATUSES),
  output: z.unknown().describe("The handler's task output (as for a job's result.output); null until it succeeded"),
  model: z.string().nullable(),
  usage: z.object({ promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() }).nullable(),
  error: failureSchema.nullable(),
  attempts: z.number().int().nullable().describe('Attempts made; null while it runs, and when a failure does not say'),
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
});

const stageRecordSchema = z.object({
  index: z.number().int().min(1),
  name: z.string().nullable(),
  fanIn: fanInSchema,
  status: z.enum(STAGE_STATUSES),
  handlers: z.array(handlerOutcomeSchema),
});

const deliverySchema = z.object({
  target: z.string(),
  url: z.string(),
  webhookId: z.string().describe('The webhook-id header: the same on every attempt, so a receiver can drop repeats'),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int().nullable().describe('Attempts so far, also while a pending delivery is being retried'),
  httpStatus: z.number().int().nullable().describe("The receiver's status code of the last answer"),
  lastError: z.string().nullable().describe('Why the last attempt failed, also while a pending delivery is being retried'),
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
});

const messageLinksSchema = z.object({ self: z.string(), events: z.string(), conversation: z.string() });

/** What POST /v1/conversations/:cid/messages answers: the message as it was accepted. */
export const acceptedMessageSchema = z.object({
  id: z.string().describe('Message id; repeats of one Idempotency-Key get the same id'),
  conversationId: z.string(),
  seq: z.number().int().min(1).describe('Position in the conversation: messages are processed in this order'),
  status: z.enum(MESSAGE_STATUSES),
  links: messageLinksSchema,
});

export const messageResourceSchema = acceptedMessageSchema.extend({
  text: z.string(),
  author: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  error: failureSchema.nullable().describe('Why a failed or cancelled message ended so'),
  acceptedAt: time,
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
  stages: z.array(stageRecordSchema),
  deliveries: z.array(deliverySchema).describe('One per target, once the message has finished'),
});

const targetResourceSchema = z.object({
  name: z.string(),
  url: z.string(),
  healthy: z.boolean().describe('False while the latest delivery failed or a pending one is being retried'),
  delivered: z.number().int(),
  failed: z.number().int(),
  consecutiveFailures: z.number().int().describe('Deliveries that failed since the last one that got through'),
  pending: z.number().int().describe('Deliveries not yet settled'),
  lastDeliveredAt: time.nullable(),
  lastError: z.string().nullable(),
});

export const conversationResourceSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  status: z.enum(['active', 'idle', 'cancelled']).describe('active while a message is processed or waiting'),
  lastSeq: z.number().int().describe('The seq of the latest message accepted: how many were accepted'),
  messageCount: z.number().int().describe('Messages finished'),
  pending: z.number().int().describe('Messages waiting, not counting the one being processed'),
  maxPending: z.number().int(),
  current: z.object({ id: z.string(), seq: z.number().int() }).nullable().describe('The message being processed'),
  pipeline: pipelineSchema,
  targets: z.array(targetResourceSchema),
  links: z.object({ self: z.string(), messages: z.string(), temporalUi: temporalUiLinkSchema }),
});

export type AcceptedMessage = z.infer<typeof acceptedMessageSchema>;
export type MessageResource = z.infer<typeof messageResourceSchema>;
export type ConversationResource = z.infer<typeof conversationResourceSchema>;

/** The state of a conversation just started: what its workflow will answer before its first message. */
export function newConversationState(
  tenant: string,
  conversationId: string,
  pipeline: ChatPipeline,
  maxPending: number,
): ConversationState {
  return {
    conversationId,
    tenant,
    status: 'idle',
    lastSeq: 0,
    messageCount: 0,
    pending: 0,
    maxPending,
    current: null,
    pipeline,
    targets: pipeline.targets.map((t) => ({
      name: t.name,
      url: t.url,
      delivered: 0,
      failed: 0,
      consecutiveFailures: 0,
      pending: 0,
      lastDeliveredAt: null,
      lastError: null,
    })),
  };
}

export const conversationPath = (conversationId: string) => `/v1/conversations/${conversationId}`;

export function messageLinks(conversationId: string, messageId: string) {
  const conversation = conversationPath(conversationId);
  const self = `${conversation}/messages/${messageId}`;
  return { self, events: `${self}/events`, conversation };
}

/** What Temporal says of a delivery under way: attempts made (the one running included), and the last one's failure. */
export interface DeliveryAttempts {
  attempts: number;
  lastError: string | null;
}

/** The message resource of a record; `retrying` (by target) fills in pending deliveries from their activities. */
export function messageResource(record: MessageRecord, retrying: ReadonlyMap<string, DeliveryAttempts> = new Map()): MessageResource {
  const { events: _events, ...rest } = record;
  return {
    ...rest,
    deliveries: record.deliveries.map((d) => withAttempts(d, retrying.get(d.target))),
    links: messageLinks(record.conversationId, record.id),
  };
}

function withAttempts(d: DeliveryState, live: DeliveryAttempts | undefined): DeliveryState {
  if (d.status !== 'pending' || !live) return d;
  return { ...d, attempts: live.attempts, lastError: live.lastError ?? d.lastError };
}

export function conversationResource(
  state: ConversationState,
  opts: { closed: boolean; links: JobLinkBase & { workflowId: string; runId: string }; retrying?: ReadonlyMap<string, DeliveryAttempts> },
): ConversationResource {
  return {
    id: state.conversationId,
    tenant: state.tenant,
    status: opts.closed ? 'cancelled' : state.status,
    lastSeq: state.lastSeq,
    messageCount: state.messageCount,
    pending: state.pending,
    maxPending: state.maxPending,
    current: state.current,
    pipeline: state.pipeline,
    targets: state.targets.map((t) => targetResource(t, opts.retrying?.get(t.name))),
    links: {
      self: conversationPath(state.conversationId),
      messages: `${conversationPath(state.conversationId)}/messages`,
      temporalUi: temporalUiLink(opts.links, opts.links.workflowId, opts.links.runId),
    },
  };
}

function targetResource(t: TargetHealth, live: DeliveryAttempts | undefined) {
  const failing = live?.lastError != null;
  return { ...t, healthy: t.consecutiveFailures === 0 && !failing, lastError: failing ? live.lastError : t.lastError };
}

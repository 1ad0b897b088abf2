/**
 * Conversations mapped onto Temporal: a conversation is one long-running workflow, a message is an
 * update to it (sent with the workflow's start when the conversation does not exist yet), and what the
 * API says about either is read back through the workflow's queries — or, for a message the workflow
 * no longer holds, from the record it stored in the blob store. Nothing is kept elsewhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
  type WorkflowStartOptions,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { BlobStore } from '../../blobs/store';
import type { TenantPolicy } from '../../config';
import {
  CHAT_FAILURES,
  conversationStateQuery,
  CONVERSATION_WORKFLOW,
  conversationWorkflowId,
  messageEventsQuery,
  messageRecordQuery,
  submitMessageUpdate,
  type ConversationWorkflow,
  type ChatEvent,
  type ConversationInput,
  type MessageRecord,
  type MessageStatus,
  type SubmitMessageRequest,
  type SubmittedMessage,
} from '../../conversations/contract';
import { unknownPools, type ChatPipeline } from '../../conversations/pipeline';
import { requestFingerprint } from '../../jobs/ids';
import type { JobLinkBase } from '../../jobs/resource';
import { checkUrl, UrlRefusedError, type OutboundPolicy } from '../../net/outbound';
import { JOB_PRIORITIES } from '../../jobs/spec';
import { placement, SEARCH_ATTRIBUTES } from '../../jobs/search-attributes';
import {
  conversationResource,
  messageLinks,
  messageResource,
  newConversationState,
  type AcceptedMessage,
  type ConversationResource,
  type DeliveryAttempts,
  type MessageResource,
} from './resource';
import {
  ConversationEndedError,
  ConversationExistsError,
  MessageConflictError,
  MessageNotTakenError,
  TargetRefusedError,
  TooManyPendingError,
  WebhookSecretMissingError,
} from './errors';
import { describeDecoded } from '../../temporal/decoded';
import { attemptsBegun, rootFailure } from '../../temporal/proto';
import { workflowTaskQueue } from '../../temporal/task-queues';
import { KeyedLimiter, notTaken, whileBusy } from './waiting';

/** A message is named by its id (`msg-` and 32 hex digits) or its seq. */
export const MESSAGE_REF = /^(msg-[0-9a-f]{32}|[1-9][0-9]{0,14})$/;

/** A fresh message id: random, where an Idempotency-Key's is the first 32 hex digits of a SHA-256. */
export const newMessageId = (): string => `msg-${randomBytes(16).toString('hex')}`;

/** The message id for a client's idempotency key: per tenant and conversation. */
export function messageIdForIdempotencyKey(tenant: string, conversationId: string, key: string): string {
  return `msg-${createHash('sha256').update(`${tenant}\n${conversationId}\n${key}`).digest('hex').slice(0, 32)}`;
}

/**
 * How long a submit may wait for the conversation to accept the message (its turn among this process's
 * updates to the conversation included), and a read for its answer. Both need a workflow worker; without
 * one the API answers 503 instead of holding the request.
 */
const SUBMIT_TIMEOUT_MS = 60_000;
const READ_TIMEOUT_MS = 10_000;
/**
 * Temporal takes at most 10 updates in flight per workflow execution (history.maxInFlightUpdates) and
 * refuses more with RESOURCE_EXHAUSTED: this process sends one conversation fewer, and retries refusals
 * (other API processes send it updates too).
 */
const UPDATES_IN_FLIGHT = 8;

export interface ConversationSpec {
  pipeline: ChatPipeline;
  maxPending: number;
}

export interface NewMessage {
  text: string;
  author?: string;
  metadata?: Record<string, unknown>;
}

export interface ConversationClientOptions extends JobLinkBase {
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  /** The tenant's fairness weight, from configuration. */
  tenantPolicy(tenant: string): Pick<TenantPolicy, 'weight'>;
  /** Where finished message records are read from once the workflow no longer holds them. */
  blobs: Pick<BlobStore, 'get'>;
  /** What a conversation created by its first message runs with (the configured pipeline). */
  defaults: ConversationSpec;
  /** The configured pools: a default pipeline on a pool that is not one cannot create conversations. */
  pools: readonly string[];
  /** The secret that signs a tenant's webhooks; undefined when none is configured. */
  webhookSecretOf: (tenant: string) => string | undefined;
  /** Which addresses targets may have although they are private (SWITCHYARD_OUTBOUND_ALLOW). */
  outbound: Pick<OutboundPolicy, 'allow'>;
}

/** What a conversation's start looks like, for the API and anything that starts conversations directly (tests, benchmarks). */
export function conversationStartOptions(p: {
  tenant: string;
  conversationId: string;
  spec: ConversationSpec;
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  tenantWeight: number;
}): WorkflowStartOptions<ConversationWorkflow> & { workflowId: string } {
  const { tenant, conversationId, spec } = p;
  const input: ConversationInput = {
    tenant,
    conversationId,
    pipeline: spec.pipeline,
    maxPending: spec.maxPending,
    taskQueuePrefix: p.taskQueuePrefix,
    heartbeatTimeoutMs: p.heartbeatTimeoutMs,
  };
  const handlers = spec.pipeline.stages.flatMap((s) => s.handlers);
  return {
    workflowId: conversationWorkflowId(tenant, conversationId),
    taskQueue: workflowTaskQueue(p.taskQueuePrefix),
    args: [input],
    // A deleted conversation stays deleted: its id would otherwise restart at seq 1 over its stored records.
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    ...placement({
      tenant,
      type: CONVERSATION_WORKFLOW,
      priority: JOB_PRIORITIES.default,
      pool: handlers[0]!.pool,
      tenantWeight: p.tenantWeight,
    }),
    staticSummary: `conversation ${conversationId} · ${handlers.length} handlers in ${spec.pipeline.stages.length} stages · tenant ${tenant}`,
    staticDetails: [
      `**Conversation** ${conversationId} · **tenant** ${tenant} · **max pending** ${spec.maxPending}`,
      ...spec.pipeline.stages.map(
        (s, i) =>
          `**Stage ${i + 1}${s.name ? ` (${s.name})` : ''}** ${s.handlers.map((h) => `${h.name}: ${h.task} on ${h.pool}`).join(', ')}`,
      ),
      `**Targets** ${spec.pipeline.targets.map((t) => t.name).join(', ') || 'none'}`,
    ].join('\n\n'),
  };
}

export class ConversationClient {
  /** Whether a first message may create its conversation: the default pipeline's pools all exist. */
  private readonly createOnFirstMessage: boolean;
  private readonly updates = new KeyedLimiter(UPDATES_IN_FLIGHT);

  constructor(
    readonly temporal: Client,
    private readonly opts: ConversationClientOptions,
  ) {
    this.createOnFirstMessage = unknownPools(opts.defaults.pipeline, opts.pools).length === 0;
  }

  /** What a conversation runs with unless its creator says otherwise. */
  get defaults(): ConversationSpec {
    return this.opts.defaults;
  }

  /** Creates the conversation; an existing one is answered as it is if it has the same pipeline and limit. */
  async create(
    tenant: string,
    conversationId: string,
    spec: ConversationSpec,
  ): Promise<{ conversation: ConversationResource; created: boolean }> {
    await this.checkTargets(tenant, spec.pipeline);
    const options = this.startOptions(tenant, conversationId, spec);
    try {
      const handle = await this.temporal.workflow.start<ConversationWorkflow>(CONVERSATION_WORKFLOW, {
        ...options,
        workflowIdConflictPolicy: 'FAIL',
      });
      const state = newConversationState(tenant, conversationId, spec.pipeline, spec.maxPending);
      const links = { ...this.opts, workflowId: options.workflowId, runId: handle.firstExecutionRunId };
      return { conversation: conversationResource(state, { closed: false, links }), created: true };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    // The id is taken: by a conversation that reads as not found, one that was deleted.
    const existing = await this.get(tenant, conversationId);
    if (!existing) throw new ConversationEndedError(conversationId);
    const same = requestFingerprint(existing.pipeline) === requestFingerprint(spec.pipeline) && existing.maxPending === spec.maxPending;
    if (!same) throw new ConversationExistsError(existing);
    return { conversation: existing, created: false };
  }

  /** The tenant's conversation, or null when it does not exist or belongs to someone else. */
  async get(tenant: string, conversationId: string): Promise<ConversationResource | null> {
    const description = await this.describeLive(tenant, conversationId);
    if (!description) return null;
    const state = await this.read(() => this.handle(tenant, conversationId).query(conversationStateQuery));
    return conversationResource(state, {
      closed: description.status.name !== 'RUNNING',
      links: { ...this.opts, workflowId: description.workflowId, runId: description.runId },
      retrying: deliveriesRetrying(description, (activityId) => activityId.split('/')[2]),
    });
  }

  /**
   * Submits a message: an update to the conversation, which starts it (with the default pipeline) if it
   * does not exist — unless that pipeline names a pool that is not configured: then null. The workflow
   * gives the message the next seq. A repeat of an Idempotency-Key answers the message it already is
   * (`created: false`); the same key with another text is MessageConflictError.
   */
  async submit(
    tenant: string,
    conversationId: string,
    message: NewMessage,
    idempotencyKey?: string,
  ): Promise<{ message: AcceptedMessage | MessageResource; created: boolean } | null> {
    const id = idempotencyKey === undefined ? newMessageId() : messageIdForIdempotencyKey(tenant, conversationId, idempotencyKey);
    if (idempotencyKey !== undefined) {
      const earlier = await this.recordOf(tenant, conversationId, id).catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      });
      if (earlier) {
        if (requestFingerprint(messageFields(earlier)) !== requestFingerprint(messageFields(message))) throw new MessageConflictError(id);
        return { message: messageResource(earlier), created: false };
      }
    }
    const request: SubmitMessageRequest = { id, ...message };
    const startOptions = {
      ...this.startOptions(tenant, conversationId, this.opts.defaults),
      workflowIdConflictPolicy: 'USE_EXISTING' as const,
    };
    // An operation is used once: a retry needs a new one.
    const update = () =>
      this.createOnFirstMessage
        ? this.temporal.workflow.executeUpdateWithStart(submitMessageUpdate, {
            args: [request],
            updateId: id,
            startWorkflowOperation: new WithStartWorkflowOperation<ConversationWorkflow>(CONVERSATION_WORKFLOW, startOptions),
          })
        : this.handle(tenant, conversationId).executeUpdate(submitMessageUpdate, { args: [request], updateId: id });
    let submitted: SubmittedMessage;
    try {
      const deadline = Date.now() + SUBMIT_TIMEOUT_MS;
      const workflowId = conversationWorkflowId(tenant, conversationId);
      submitted = await this.updates.run(workflowId, () =>
        this.temporal.connection.withDeadline(deadline, () => whileBusy(deadline, update, notTaken)),
      );
    } catch (err) {
      // Without a start: no such conversation, or one that has ended.
      if (err instanceof WorkflowNotFoundError) {
        if (await this.describe(tenant, conversationId)) throw new ConversationEndedError(conversationId);
        return null;
      }
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new ConversationEndedError(conversationId);
      const rejection = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : undefined;
      if (rejection?.type === CHAT_FAILURES.tooManyPending) throw new TooManyPendingError(rejection.message);
      if (rejection?.type === CHAT_FAILURES.conversationCancelled) throw new ConversationEndedError(conversationId);
      if (notTaken(err)) throw new MessageNotTakenError(conversationId, { cause: err });
      throw err;
    }
    if (!submitted.status) {
      // A repeat of a message the workflow no longer holds (a race with the check above): answer its record.
      const record = await this.recordOf(tenant, conversationId, id);
      if (record) return { message: messageResource(record), created: false };
    }
    const status = submitted.status ?? 'pending';
    return { message: { id, conversationId, seq: submitted.seq, status, links: messageLinks(conversationId, id) }, created: true };
  }

  /** A message by id or seq, with its stages, handlers and deliveries; null if the conversation has no such message. */
  async getMessage(tenant: string, conversationId: string, ref: string): Promise<MessageResource | null> {
    const description = await this.describeLive(tenant, conversationId);
    if (!description) return null;
    const record = await this.recordOf(tenant, conversationId, ref);
    if (!record) return null;
    const ofThisMessage = deliveriesRetrying(description, (activityId) => {
      const [, seq, target] = activityId.split('/');
      return seq === String(record.seq) ? target : undefined;
    });
    return messageResource(record, ofThisMessage);
  }

  /** Whether the tenant has this conversation (the check a stream of events makes once, before it polls). */
  async exists(tenant: string, conversationId: string): Promise<boolean> {
    return (await this.describeLive(tenant, conversationId)) !== null;
  }

  /**
   * A message's events after `afterEventId`, and whether more can come (`done` once it finished and its
   * deliveries settled); null if the conversation has no such message. Cheap: a query, no history.
   */
  async events(
    tenant: string,
    conversationId: string,
    ref: string,
    afterEventId: number,
  ): Promise<{ events: ChatEvent[]; status: MessageStatus; done: boolean } | null> {
    const handle = this.handle(tenant, conversationId);
    const answer = await this.read(() => handle.query(messageEventsQuery, refArg(ref), afterEventId));
    if (!answer || !('stored' in answer)) return answer;
    const record = await this.storedRecord(answer.stored.key);
    return {
      events: record.events.filter((e) => e.id > afterEventId),
      status: record.status,
      done: record.deliveries.every((d) => d.status !== 'pending'),
    };
  }

  /**
   * Deletes the conversation by cancelling it: the message in progress stops, waiting ones end
   * `cancelled`, and from the moment the cancellation is recorded it reads as not found. Its id stays
   * taken (ConversationEndedError for a new one) until Temporal's retention removes it.
   */
  async cancel(tenant: string, conversationId: string): Promise<ConversationResource | null> {
    const conversation = await this.get(tenant, conversationId);
    if (!conversation) return null;
    await this.handle(tenant, conversationId).cancel();
    return conversation;
  }

  /** Targets are checked when they are given, not first when a delivery fails minutes later. */
  private async checkTargets(tenant: string, pipeline: ChatPipeline): Promise<void> {
    for (const [index, target] of pipeline.targets.entries()) {
      await checkUrl(target.url, this.opts.outbound).catch((err: unknown) => {
        throw err instanceof UrlRefusedError ? new TargetRefusedError(index, target.name, err.message) : err;
      });
    }
    if (pipeline.targets.length > 0 && !this.opts.webhookSecretOf(tenant)) throw new WebhookSecretMissingError(tenant);
  }

  private startOptions(tenant: string, conversationId: string, spec: ConversationSpec) {
    return conversationStartOptions({
      tenant,
      conversationId,
      spec,
      taskQueuePrefix: this.opts.taskQueuePrefix,
      heartbeatTimeoutMs: this.opts.heartbeatTimeoutMs,
      tenantWeight: this.opts.tenantPolicy(tenant).weight,
    });
  }

  /** The conversation's latest run: queries follow it across continue-as-new. */
  private handle(tenant: string, conversationId: string): WorkflowHandle {
    return this.temporal.workflow.getHandle(conversationWorkflowId(tenant, conversationId));
  }

  private async describe(tenant: string, conversationId: string): Promise<WorkflowExecutionDescription | null> {
    try {
      const description = await describeDecoded(this.handle(tenant, conversationId));
      // The id already scopes the conversation to its tenant; the search attribute is a second check.
      return description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.tenant) === tenant ? description : null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The conversation unless it was deleted: cancellation requested (it may still be stopping), or ended. */
  private async describeLive(tenant: string, conversationId: string): Promise<WorkflowExecutionDescription | null> {
    const description = await this.describe(tenant, conversationId);
    const deleted =
      description && (description.status.name !== 'RUNNING' || description.raw.workflowExtendedInfo?.cancelRequested === true);
    return deleted ? null : description;
  }

  /** A message's record from the workflow, or from the blob store once the workflow no longer holds it. */
  private async recordOf(tenant: string, conversationId: string, ref: string): Promise<MessageRecord | null> {
    const handle = this.handle(tenant, conversationId);
    const answer = await this.read(() => handle.query(messageRecordQuery, refArg(ref)));
    if (!answer) return null;
    return 'record' in answer ? answer.record : this.storedRecord(answer.stored.key);
  }

  private async storedRecord(key: string): Promise<MessageRecord> {
    return JSON.parse((await this.opts.blobs.get(key)).toString('utf8')) as MessageRecord;
  }

  /**
   * A query, bounded in time: it needs a workflow worker, and a request must not wait for one forever.
   * While a workflow task is in flight the server holds one query per workflow and refuses others as
   * busy (as it does after a workflow worker died mid-task): those are asked again until the deadline.
   */
  private read<T>(query: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + READ_TIMEOUT_MS;
    return this.temporal.connection.withDeadline(deadline, () => whileBusy(deadline, query));
  }
}

/** The workflow's message queries take a seq as a number. */
const refArg = (ref: string): string | number => (/^[0-9]+$/.test(ref) ? Number(ref) : ref);

/** What makes two submissions the same message. */
const messageFields = (m: { text: string; author?: string | null; metadata?: Record<string, unknown> | null }) => ({
  text: m.text,
  author: m.author ?? null,
  metadata: m.metadata ?? null,
});

/**
 * Deliveries being retried, from the workflow's pending activities (`delivery/<seq>/<target>`): the
 * workflow learns of a delivery's failures only when its retries run out, Temporal sees each attempt.
 * `targetOf` picks the activities of interest and names their target.
 */
function deliveriesRetrying(
  d: WorkflowExecutionDescription,
  targetOf: (activityId: string) => string | undefined,
): Map<string, DeliveryAttempts> {
  const retrying = new Map<string, DeliveryAttempts>();
  for (const activity of d.raw.pendingActivities ?? []) {
    if (!activity.activityId?.startsWith('delivery/')) continue;
    const target = targetOf(activity.activityId);
    if (target === undefined) continue;
    if (retrying.get(target)?.lastError) continue; // a failing delivery says more about the target than one that has not failed yet
    retrying.set(target, { attempts: attemptsBegun(activity), lastError: rootFailure(activity.lastFailure)?.message ?? null });
  }
  return retrying;
}

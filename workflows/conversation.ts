import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { InferenceActivities } from '../activities';
import type { ChatActivities } from '../activities/chat';
import {
  CHAT_FAILURES,
  conversationStateQuery,
  DELIVERY_POLICY,
  messageEventsQuery,
  messageRecordQuery,
  submitMessageUpdate,
  applyDeliveries,
  messageRecordKey,
  webhookIdOf,
  type ChatEventBody,
  type ConversationCarry,
  type ConversationInput,
  type ConversationState,
  type DeliveryState,
  type FailureInfo,
  type HandlerOutcome,
  type MessageEventsAnswer,
  type MessageRecord,
  type MessageRecordAnswer,
  type OutboxEntry,
  type StageRecord,
  type SubmitMessageRequest,
  type SubmittedMessage,
  type TargetHealth,
} from '../src/conversations/contract';
import { decideFanIn } from '../src/conversations/fan-in';
import type { ChatHandler, ChatStage, ChatTarget } from '../src/conversations/pipeline';
import type { ChatMessage, InferenceRequest } from '../src/inference/provider';
import { NON_RETRYABLE_ERRORS } from '../src/jobs/job';
import type { InferenceOutcome } from '../src/jobs/inference-contract';
import { poolTaskQueue } from '../src/temporal/task-queues';
import { inferenceJob } from './inference-job';


/** Submissions a run accepts before it continues as new (Temporal takes at most 2000 updates per run). */
const MESSAGES_PER_RUN = 200;
const MAX_HISTORY_EVENTS = 10_000;
/** Finished records kept in memory for queries; older ones are read from the blob store. */
const RECENT_RECORDS = 50;
/** Message ids remembered for repeats (and id → seq lookups). */
const RECENT_IDS = 1000;
/**
 * Characters of text (and author, metadata) waiting messages may hold, and of recent records carried
 * over: the continue-as-new input stays well under Temporal's 2 MB payload limit.
 */
const PENDING_CHARS = 400_000;
const CARRIED_RECORD_CHARS = 200_000;
/** Backstop for a long handler's child workflow past its own deadline. */
const CHILD_BACKSTOP_MS = 60_000;

/** Record writes run in the workflow worker (it has the blob store): no task-queue round trip, and the record stays out of the history. */
const { recordMessage, recordDeliveries } = proxyLocalActivities<ChatActivities>({
  startToCloseTimeout: 30_000,
  // A blob store that is down holds the conversation until it is back: records are not dropped.
  retry: { initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 60_000 },
});

/**
 * One conversation: messages are processed one at a time in seq order, each through the pipeline's
 * stages; a stage's handlers run in parallel (an inference activity on their pool, or a child inference
 * job) and its fan-in policy decides it, cancelling handlers no longer needed. A finished message's
 * record is stored, then sent to every target as a signed webhook, each delivery retried on its own
 * without holding up the next message. The workflow runs as long as the conversation exists,
 * continuing as new between messages to keep its history short.
 */
export async function conversation(input: ConversationInput): Promise<never> {
  const { tenant, conversationId, pipeline } = input;
  const carried = input.carried;
  let lastSeq = carried?.lastSeq ?? 0;
  let messageCount = carried?.messageCount ?? 0;
  const pending: MessageRecord[] = carried?.pending ?? [];
  let pendingChars = pending.reduce((sum, m) => sum + messageChars(m), 0);
  let current: MessageRecord | null = null;
  const recent: MessageRecord[] = carried?.recent ?? [];
  const recentIds = new Map<string, number>(carried?.recentIds ?? []);
  const outbox: OutboxEntry[] = carried?.outbox ?? [];
  const targets = new Map(pipeline.targets.map((t) => [t.name, targetHealth(t, carried?.targets, outbox)]));
  /** Deliveries whose activity runs in this run, by webhook id; per target, how many. */
  const sending = new Set<string>();
  const sendingTo = new Map<string, number>();
  let accepted = 0;
  let writes = 0;
  let cancelled = false;
  const messagesPerRun = input.messagesPerRun ?? MESSAGES_PER_RUN;

  const now = () => new Date().toISOString();
  const log = (record: MessageRecord, body: ChatEventBody) => record.events.push({ id: record.events.length + 1, at: now(), ...body });
  const findRecord = (seq: number) => (current?.seq === seq ? current : (pending.find((m) => m.seq === seq) ?? recent.find((m) => m.seq === seq)));
  const seqOf = (idOrSeq: string | number) =>
    typeof idOrSeq === 'number' ? idOrSeq : /^[0-9]{1,15}$/.test(idOrSeq) ? Number(idOrSeq) : recentIds.get(idOrSeq);
  const lookup = (idOrSeq: string | number): MessageRecordAnswer => {
    const seq = seqOf(idOrSeq);
    if (seq === undefined || !Number.isInteger(seq) || seq < 1 || seq > lastSeq) return null;
    const record = findRecord(seq);
    return record ? { record } : { stored: { seq, key: messageRecordKey(tenant, conversationId, seq) } };
  };

  setHandler(
    submitMessageUpdate,
    (request) => {
      accepted++;
      const known = recentIds.get(request.id);
      if (known !== undefined) return { id: request.id, seq: known, status: findRecord(known)?.status ?? null };
      const record = newRecord(request, ++lastSeq, conversationId, pipeline.stages);
      log(record, { type: 'message.accepted', seq: record.seq });
      pending.push(record);
      pendingChars += messageChars(record);
      recentIds.set(request.id, record.seq);
      if (recentIds.size > RECENT_IDS) recentIds.delete(recentIds.keys().next().value!);
      return { id: record.id, seq: record.seq, status: record.status };
    },
    {
      validator: (request) => {
        if (recentIds.has(request.id)) return; // a repeat is answered, whatever the queue holds
        if (cancelled) throw rejection(CHAT_FAILURES.conversationCancelled, `conversation ${conversationId} is being cancelled`);
        if (pending.length >= input.maxPending) {
          throw rejection(CHAT_FAILURES.tooManyPending, `conversation ${conversationId} has ${pending.length} messages waiting, its limit; retry when some have been processed`);
        }
        if (pendingChars + messageChars(request) > PENDING_CHARS) {
          throw rejection(CHAT_FAILURES.tooManyPending, `the messages waiting in conversation ${conversationId} hold too much text; retry when some have been processed`);
        }
      },
    },
  );
  setHandler(conversationStateQuery, () => ({
    conversationId,
    tenant,
    status: cancelled ? 'cancelled' : current || pending.length ? 'active' : 'idle',
    lastSeq,
    messageCount,
    pending: pending.length,
    maxPending: input.maxPending,
    current: current && { id: current.id, seq: current.seq },
    pipeline,
    targets: [...targets.values()],
  }));
  setHandler(messageRecordQuery, lookup);
  setHandler(messageEventsQuery, (idOrSeq, afterEventId) => {
    const found = lookup(idOrSeq);
    if (!found || 'stored' in found) return found;
    const { record } = found;
    const finished = record.status !== 'pending' && record.status !== 'running';
    return {
      events: record.events.filter((e) => e.id > afterEventId),
      status: record.status,
      done: finished && record.deliveries.every((d) => d.status !== 'pending'),
    };
  });

  /** One handler: an inference activity on its pool's queue, or a child inference job for a long one. */
  function runHandler(handler: ChatHandler, record: MessageRecord): Promise<InferenceOutcome> {
    const request = requestFor(handler, record.text);
    const taskQueue = poolTaskQueue(input.taskQueuePrefix, handler.pool);
    const retry = handler.retry;
    const heartbeatTimeoutMs = Math.min(input.heartbeatTimeoutMs, handler.timeoutMs);
    if (handler.long) {
      return executeChild(inferenceJob, {
        workflowId: `${workflowInfo().workflowId}/${record.seq}/${handler.name}`,
        args: [
          {
            jobId: `${conversationId}/${record.seq}/${handler.name}`,
            tenant,
            pool: handler.pool,
            taskQueue,
            request,
            retry,
            attemptTimeoutMs: handler.timeoutMs,
            heartbeatTimeoutMs,
            deadlineMs: handler.deadlineMs,
          },
        ],
        workflowExecutionTimeout: handler.deadlineMs + CHILD_BACKSTOP_MS,
        cancellationType: ChildWorkflowCancellationType.TRY_CANCEL,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
    }
    const { runInference } = proxyActivities<InferenceActivities>({
      taskQueue,
      startToCloseTimeout: handler.timeoutMs,
      scheduleToCloseTimeout: handler.deadlineMs,
      heartbeatTimeout: heartbeatTimeoutMs,
      retry: {
        maximumAttempts: retry.maxAttempts,
        initialInterval: retry.initialIntervalMs,
        backoffCoefficient: retry.backoffCoefficient,
        maximumInterval: retry.maxIntervalMs,
        nonRetryableErrorTypes: [...NON_RETRYABLE_ERRORS],
      },
      // A handler that lost the fan-in is let go at once; its cancellation reaches it through heartbeats.
      cancellationType: ActivityCancellationType.TRY_CANCEL,
      summary: `${handler.name}: ${handler.task} on pool ${handler.pool} · message ${record.seq}`,
    });
    return runInference(request);
  }

  /** Runs a stage's handlers side by side until its fan-in decides; true if it succeeded. */
  async function runStage(record: MessageRecord, stage: ChatStage, rec: StageRecord): Promise<boolean> {
    rec.status = 'running';
    const scopes = stage.handlers.map((handler, j) => {
      const outcome = rec.handlers[j]!;
      const scope = new CancellationScope();
      outcome.status = 'running';
      outcome.startedAt = now();
      log(record, { type: 'handler.started', stage: rec.index, handler: handler.name });
      scope.run(() => runHandler(handler, record)).then(
        (result) => {
          if (outcome.status !== 'running') return;
          Object.assign(outcome, { status: 'succeeded', output: result.output, model: result.model, usage: result.usage ?? null, attempts: result.attempt, finishedAt: now() });
          log(record, { type: 'handler.succeeded', stage: rec.index, handler: handler.name, output: result.output, attempts: result.attempt });
        },
        (err: unknown) => {
          if (outcome.status !== 'running') return;
          if (isCancellation(err)) return cancelHandler(record, rec, j);
          const error = failureOf(err);
          const attempts = attemptsOf(err, handler.retry.maxAttempts);
          Object.assign(outcome, { status: 'failed', error, attempts, finishedAt: now() });
          log(record, { type: 'handler.failed', stage: rec.index, handler: handler.name, error, attempts });
        },
      );
      return scope;
    });
    const decision = () => decideFanIn(stage.fanIn, rec.handlers.map((h) => h.status));
    await condition(() => decision().result !== 'pending');
    const { result, cancel } = decision();
    for (const j of cancel) {
      scopes[j]!.cancel();
      cancelHandler(record, rec, j);
    }
    rec.status = result === 'succeeded' ? 'succeeded' : 'failed';
    log(record, { type: 'stage.completed', stage: rec.index, status: rec.status });
    return result === 'succeeded';
  }

  function cancelHandler(record: MessageRecord, rec: StageRecord, j: number): void {
    const outcome = rec.handlers[j]!;
    Object.assign(outcome, { status: 'cancelled', finishedAt: now() });
    log(record, { type: 'handler.cancelled', stage: rec.index, handler: outcome.name });
  }

  async function processMessage(record: MessageRecord): Promise<void> {
    current = record;
    pendingChars -= messageChars(record);
    record.status = 'running';
    record.startedAt = now();
    let failed: StageRecord | undefined;
    for (const [i, stage] of pipeline.stages.entries()) {
      const rec = record.stages[i]!;
      if (failed) skipStage(rec);
      else if (!(await runStage(record, stage, rec))) failed = rec;
    }
    record.status = failed ? 'failed' : 'succeeded';
    record.error = failed ? stageFailure(failed) : null;
    record.finishedAt = now();
    record.deliveries = pipeline.targets.map((t) => newDelivery(record, t));
    log(record, { type: 'message.completed', status: record.status });
    current = null;
    messageCount++;
    recent.push(record);
    if (recent.length > RECENT_RECORDS) recent.shift();
    await recordMessage({ tenant, record });
    if (record.deliveries.length) queueDeliveries(record);
  }

  function queueDeliveries(record: MessageRecord): void {
    const entry: OutboxEntry = {
      seq: record.seq,
      messageId: record.id,
      nextEventId: record.events.length + 1,
      deliveries: record.deliveries.map((d) => ({ ...d })),
      events: [],
    };
    outbox.push(entry);
    for (const d of entry.deliveries) {
      const health = targets.get(d.target)!;
      health.pending++;
      if (health.pending > DELIVERY_POLICY.queuedPerTarget) {
        settleDelivery(entry, d, { status: 'failed', attempts: 0, httpStatus: null, lastError: `target ${d.target} already has ${DELIVERY_POLICY.queuedPerTarget} deliveries waiting` });
      }
    }
    pumpDeliveries();
  }

  /** Starts waiting deliveries, oldest first, as far as each target's in-flight limit allows. */
  function pumpDeliveries(): void {
    for (const entry of outbox) {
      for (const d of entry.deliveries) {
        if (d.status !== 'pending' || sending.has(d.webhookId)) continue;
        if ((sendingTo.get(d.target) ?? 0) >= DELIVERY_POLICY.inFlightPerTarget) continue;
        startDelivery(entry, d);
      }
    }
  }

  function startDelivery(entry: OutboxEntry, d: DeliveryState): void {
    d.startedAt ??= now();
    const leftMs = DELIVERY_POLICY.giveUpAfterMs - (Date.now() - Date.parse(d.startedAt));
    if (leftMs <= 0) {
      return settleDelivery(entry, d, { status: 'failed', attempts: d.attempts, httpStatus: d.httpStatus, lastError: `not delivered within ${DELIVERY_POLICY.giveUpAfterMs / 60_000} minutes` });
    }
    sending.add(d.webhookId);
    sendingTo.set(d.target, (sendingTo.get(d.target) ?? 0) + 1);
    const { deliverToTarget } = proxyActivities<ChatActivities>({
      activityId: `delivery/${entry.seq}/${d.target}`,
      startToCloseTimeout: DELIVERY_POLICY.attemptTimeoutMs,
      scheduleToCloseTimeout: leftMs,
      retry: {
        maximumAttempts: DELIVERY_POLICY.maxAttempts,
        initialInterval: DELIVERY_POLICY.initialIntervalMs,
        backoffCoefficient: DELIVERY_POLICY.backoffCoefficient,
        maximumInterval: DELIVERY_POLICY.maxIntervalMs,
      },
      cancellationType: ActivityCancellationType.TRY_CANCEL,
      summary: `webhook to ${d.target} · message ${entry.seq}`,
    });
    const target = { name: d.target, url: d.url };
    deliverToTarget({ tenant, conversationId, seq: entry.seq, target, webhookId: d.webhookId }).then(
      (r) => settleDelivery(entry, d, { status: 'delivered', attempts: r.attempt, httpStatus: r.httpStatus, lastError: null }),
      (err: unknown) => {
        if (isCancellation(err)) return; // the conversation is cancelled: nothing more is delivered
        const details = deliveryDetails(err);
        settleDelivery(entry, d, {
          status: 'failed',
          attempts: details?.attempt ?? attemptsOf(err, DELIVERY_POLICY.maxAttempts),
          httpStatus: details?.status || null,
          lastError: failureOf(err).message,
        });
      },
    );
  }

  function settleDelivery(entry: OutboxEntry, d: DeliveryState, result: Pick<DeliveryState, 'status' | 'attempts' | 'httpStatus' | 'lastError'>): void {
    if (sending.delete(d.webhookId)) sendingTo.set(d.target, sendingTo.get(d.target)! - 1);
    Object.assign(d, result, { finishedAt: now() });
    const health = targets.get(d.target)!;
    health.pending--;
    let body: ChatEventBody;
    if (d.status === 'delivered') {
      health.delivered++;
      health.consecutiveFailures = 0;
      health.lastDeliveredAt = d.finishedAt;
      body = { type: 'delivery.delivered', target: d.target, attempts: d.attempts ?? 1, httpStatus: d.httpStatus ?? 0 };
    } else {
      health.failed++;
      health.consecutiveFailures++;
      health.lastError = d.lastError;
      body = { type: 'delivery.failed', target: d.target, error: d.lastError ?? 'failed', attempts: d.attempts };
    }
    const event = { id: entry.nextEventId++, at: now(), ...body };
    entry.events.push(event);
    const record = findRecord(entry.seq);
    if (record) applyDeliveries(record, [{ ...d }], [event]);
    if (entry.deliveries.every((x) => x.status !== 'pending')) storeDeliveries(entry);
    pumpDeliveries();
  }

  /** Puts a message's settled deliveries into its stored record; then it leaves the outbox. */
  function storeDeliveries(entry: OutboxEntry): void {
    writes++;
    recordDeliveries({ tenant, conversationId, seq: entry.seq, deliveries: entry.deliveries, events: entry.events })
      .then(
        () => outbox.splice(outbox.indexOf(entry), 1),
        () => undefined, // only a cancellation ends it: the conversation is going away
      )
      .finally(() => writes--);
  }

  /** The conversation is cancelled: what was in flight and what waited ends `cancelled`. */
  async function stop(): Promise<void> {
    cancelled = true;
    const stopped = current;
    current = null;
    if (stopped) recent.push(stopped);
    for (const record of stopped ? [stopped, ...pending] : pending) {
      for (const rec of record.stages) {
        rec.handlers.forEach((h, j) => {
          if (h.status === 'running') cancelHandler(record, rec, j);
          else if (h.status === 'pending') h.status = 'skipped';
        });
        if (rec.status === 'running') rec.status = 'cancelled';
        else if (rec.status === 'pending') rec.status = 'skipped';
      }
      Object.assign(record, { status: 'cancelled', error: { type: CHAT_FAILURES.conversationCancelled, message: 'the conversation was cancelled' }, finishedAt: now() });
      log(record, { type: 'message.completed', status: 'cancelled' });
    }
    if (stopped) await recordMessage({ tenant, record: stopped });
  }

  const timeToContinue = () =>
    accepted >= messagesPerRun || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= MAX_HISTORY_EVENTS;

  pumpDeliveries(); // deliveries the previous run left unsettled, with their webhook ids
  try {
    for (;;) {
      await condition(() => pending.length > 0 || timeToContinue());
      if (timeToContinue()) break;
      await processMessage(pending.shift()!);
    }
    await condition(() => writes === 0 && allHandlersFinished());
  } catch (err) {
    if (isCancellation(err)) await CancellationScope.nonCancellable(stop);
    throw err;
  }
  const carry: ConversationCarry = {
    lastSeq,
    messageCount,
    pending,
    recent: newestWithin(recent, CARRIED_RECORD_CHARS),
    recentIds: [...recentIds],
    outbox,
    targets: [...targets.values()],
  };
  return continueAsNew<typeof conversation>({ ...input, carried: carry });
}

function newRecord(request: SubmitMessageRequest, seq: number, conversationId: string, stages: readonly ChatStage[]): MessageRecord {
  return {
    id: request.id,
    conversationId,
    seq,
    text: request.text,
    author: request.author ?? null,
    metadata: request.metadata ?? null,
    status: 'pending',
    error: null,
    acceptedAt: new Date().toISOString(),
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

const newDelivery = (record: MessageRecord, target: ChatTarget): DeliveryState => ({
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

/** A target's health as the previous run left it, with its unsettled deliveries counted from the outbox. */
function targetHealth(target: ChatTarget, carried: readonly TargetHealth[] | undefined, outbox: readonly OutboxEntry[]): TargetHealth {
  const own = carried?.find((t) => t.name === target.name);
  const pending = outbox.reduce((n, e) => n + e.deliveries.filter((d) => d.target === target.name && d.status === 'pending').length, 0);
  return {
    name: target.name,
    url: target.url,
    delivered: own?.delivered ?? 0,
    failed: own?.failed ?? 0,
    consecutiveFailures: own?.consecutiveFailures ?? 0,
    pending,
    lastDeliveredAt: own?.lastDeliveredAt ?? null,
    lastError: own?.lastError ?? null,
  };
}

function skipStage(rec: StageRecord): void {
  rec.status = 'skipped';
  for (const h of rec.handlers) h.status = 'skipped';
}

function stageFailure(rec: StageRecord): FailureInfo {
  const failures = rec.handlers.filter((h) => h.error).map((h) => `${h.name}: ${h.error!.message}`);
  const stage = rec.name ? `stage ${rec.index} (${rec.name})` : `stage ${rec.index}`;
  return { type: CHAT_FAILURES.stageFailed, message: `${stage} failed${failures.length ? ` — ${failures.join('; ')}` : ''}` };
}

/** What a handler sends its pool: the message text, or for chat the handler's prompt and the text as the user's turn. */
function requestFor(handler: ChatHandler, text: string): InferenceRequest {
  if (handler.task !== 'chat') return { task: handler.task, text, model: handler.model };
  const messages: ChatMessage[] = handler.prompt ? [{ role: 'system', content: handler.prompt }] : [];
  messages.push({ role: 'user', content: text });
  return { task: handler.task, messages, model: handler.model };
}

/** The first application failure or timeout in the chain, as the record shows it. */
function failureOf(err: unknown): FailureInfo {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
    if (e instanceof TimeoutFailure) {
      const kind = (e.timeoutType ?? '').toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
      return { type: `Timeout${kind}`, message: e.message };
    }
  }
  return { type: err instanceof Error ? err.name : 'Error', message: err instanceof Error ? err.message : String(err) };
}

/** Attempts a failed activity made, when its failure says: all of them when the retry policy ran out. */
function attemptsOf(err: unknown, maxAttempts: number): number | null {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ActivityFailure) return e.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? maxAttempts : null;
  }
  return null;
}

/** What `deliverToTarget` attaches to its failures: the attempt, and the receiver's HTTP status (0 when none answered). */
function deliveryDetails(err: unknown): { attempt: number; status: number } | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  return cause instanceof ApplicationFailure ? (cause.details?.[0] as { attempt: number; status: number } | undefined) : undefined;
}

/** The characters a message holds in the workflow's state. */
function messageChars(m: { text: string; author?: string | null; metadata?: Record<string, unknown> | null }): number {
  return m.text.length + (m.author?.length ?? 0) + (m.metadata ? JSON.stringify(m.metadata).length : 0);
}

/** The newest records whose JSON fits `chars`, oldest first. */
function newestWithin(records: readonly MessageRecord[], chars: number): MessageRecord[] {
  const kept: MessageRecord[] = [];
  let used = 0;
  for (let i = records.length - 1; i >= 0; i--) {
    used += JSON.stringify(records[i]).length;
    if (used > chars) break;
    kept.unshift(records[i]!);
  }
  return kept;
}

const rejection = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

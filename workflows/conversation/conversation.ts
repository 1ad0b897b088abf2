/** One conversation's state: its messages, waiting, running and recent, the answers to its update and queries, and how a message is processed. */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import {
  CHAT_FAILURES,
  messageRecordKey,
  type ConversationCarry,
  type ConversationInput,
  type ConversationState,
  type MessageEventsAnswer,
  type MessageRecord,
  type MessageRecordAnswer,
  type StageRecord,
  type SubmitMessageRequest,
  type SubmittedMessage,
} from '../../src/conversations/contract';
import { Deliveries } from './deliveries';
import { logEvent, messageChars, newDelivery, newestWithin, newRecord, now, recordMessage } from './records';
import { cancelMessage, runStage, skipStage, stageFailure } from './stages';

/**
 * Submissions a run accepts, or messages it starts, before it continues as new: Temporal takes at most
 * 2000 updates per run, and counting started messages too bounds a run that received them all earlier.
 * A run is also what a restarted workflow worker replays before the conversation answers again: at 200
 * messages (about 2,000 events, 600 KB) that took 5–8 s on a loaded 2-core machine, near the task timeout.
 */
const MESSAGES_PER_RUN = 100;
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

export class Conversation {
  private lastSeq: number;
  private messageCount: number;
  /** Accepted, not started; in seq order. */
  private readonly pending: MessageRecord[];
  private pendingChars: number;
  private current: MessageRecord | null = null;
  private readonly recent: MessageRecord[];
  private readonly recentIds: Map<string, number>;
  /** Submissions this run answered, repeats included. */
  private accepted = 0;
  /** Messages this run started, carried ones included. */
  private started = 0;
  private cancelled = false;
  readonly deliveries: Deliveries;

  constructor(private readonly input: ConversationInput) {
    const carried = input.carried;
    this.lastSeq = carried?.lastSeq ?? 0;
    this.messageCount = carried?.messageCount ?? 0;
    this.pending = carried?.pending ?? [];
    this.pendingChars = this.pending.reduce((sum, m) => sum + messageChars(m), 0);
    this.recent = carried?.recent ?? [];
    this.recentIds = new Map(carried?.recentIds ?? []);
    this.deliveries = new Deliveries(input, (seq) => this.findRecord(seq));
  }

  /** The submit update: a new message joins the queue; a repeated id is answered with the message it names. */
  submit(request: SubmitMessageRequest): SubmittedMessage {
    this.accepted++;
    const known = this.recentIds.get(request.id);
    if (known !== undefined) return { id: request.id, seq: known, status: this.findRecord(known)?.status ?? null };
    const record = newRecord(request, ++this.lastSeq, this.input.conversationId, this.input.pipeline.stages);
    logEvent(record, { type: 'message.accepted', seq: record.seq });
    this.pending.push(record);
    this.pendingChars += messageChars(record);
    this.recentIds.set(request.id, record.seq);
    if (this.recentIds.size > RECENT_IDS) this.recentIds.delete(this.recentIds.keys().next().value!);
    return { id: record.id, seq: record.seq, status: record.status };
  }

  /** Rejects a new message while the conversation is being cancelled or its queue is full. */
  validateSubmit(request: SubmitMessageRequest): void {
    const { conversationId, maxPending } = this.input;
    if (this.recentIds.has(request.id)) return; // a repeat is answered, whatever the queue holds
    if (this.cancelled) throw rejection(CHAT_FAILURES.conversationCancelled, `conversation ${conversationId} is being cancelled`);
    if (this.pending.length >= maxPending) {
      throw rejection(
        CHAT_FAILURES.tooManyPending,
        `conversation ${conversationId} has ${this.pending.length} messages waiting, its limit; retry when some have been processed`,
      );
    }
    if (this.pendingChars + messageChars(request) > PENDING_CHARS) {
      throw rejection(
        CHAT_FAILURES.tooManyPending,
        `the messages waiting in conversation ${conversationId} hold too much text; retry when some have been processed`,
      );
    }
  }

  state(): ConversationState {
    const { conversationId, tenant, maxPending, pipeline } = this.input;
    const current = this.current;
    return {
      conversationId,
      tenant,
      status: this.cancelled ? 'cancelled' : current || this.pending.length ? 'active' : 'idle',
      lastSeq: this.lastSeq,
      messageCount: this.messageCount,
      pending: this.pending.length,
      maxPending,
      current: current && { id: current.id, seq: current.seq },
      pipeline,
      targets: this.deliveries.health,
    };
  }

  /** A message by id or seq: its record while this run holds it, else where it is stored. */
  lookup(idOrSeq: string | number): MessageRecordAnswer {
    const seq = this.seqOf(idOrSeq);
    if (seq === undefined || !Number.isInteger(seq) || seq < 1 || seq > this.lastSeq) return null;
    const record = this.findRecord(seq);
    return record ? { record } : { stored: { seq, key: messageRecordKey(this.input.tenant, this.input.conversationId, seq) } };
  }

  /** A message's events after `afterEventId`, and whether more may come. */
  eventsOf(idOrSeq: string | number, afterEventId: number): MessageEventsAnswer {
    const found = this.lookup(idOrSeq);
    if (!found || 'stored' in found) return found;
    const { record } = found;
    const finished = record.status !== 'pending' && record.status !== 'running';
    return {
      events: record.events.filter((e) => e.id > afterEventId),
      status: record.status,
      done: finished && record.deliveries.every((d) => d.status !== 'pending'),
    };
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  timeToContinue(): boolean {
    const info = workflowInfo();
    const perRun = this.input.messagesPerRun ?? MESSAGES_PER_RUN;
    return this.accepted >= perRun || this.started >= perRun || info.continueAsNewSuggested || info.historyLength >= MAX_HISTORY_EVENTS;
  }

  /** Runs the oldest waiting message through the pipeline's stages, stores its record and queues its deliveries. */
  async processNext(): Promise<void> {
    const record = this.pending.shift()!;
    this.started++;
    this.current = record;
    this.pendingChars -= messageChars(record);
    record.status = 'running';
    record.startedAt = now();
    let failed: StageRecord | undefined;
    for (const [i, stage] of this.input.pipeline.stages.entries()) {
      const rec = record.stages[i]!;
      if (failed) skipStage(rec);
      else if (!(await runStage(this.input, record, stage, rec))) failed = rec;
    }
    this.complete(record, failed);
    await recordMessage({ tenant: this.input.tenant, record });
    if (record.deliveries.length) this.deliveries.queue(record);
  }

  /** The conversation is cancelled: what was in flight and what waited ends `cancelled`. */
  async stop(): Promise<void> {
    this.cancelled = true;
    const stopped = this.current;
    this.current = null;
    if (stopped) this.recent.push(stopped);
    for (const record of stopped ? [stopped, ...this.pending] : this.pending) cancelMessage(record);
    if (stopped) await recordMessage({ tenant: this.input.tenant, record: stopped });
  }

  /** What the next run takes over. */
  carry(): ConversationCarry {
    return {
      lastSeq: this.lastSeq,
      messageCount: this.messageCount,
      pending: this.pending,
      recent: newestWithin(this.recent, CARRIED_RECORD_CHARS),
      recentIds: [...this.recentIds],
      ...this.deliveries.carry(),
    };
  }

  /** The message has been through every stage (or up to the one that failed): it is done, and recent. */
  private complete(record: MessageRecord, failed: StageRecord | undefined): void {
    record.status = failed ? 'failed' : 'succeeded';
    record.error = failed ? stageFailure(failed) : null;
    record.finishedAt = now();
    record.deliveries = this.input.pipeline.targets.map((t) => newDelivery(record, t));
    logEvent(record, { type: 'message.completed', status: record.status });
    this.current = null;
    this.messageCount++;
    this.recent.push(record);
    if (this.recent.length > RECENT_RECORDS) this.recent.shift();
  }

  private findRecord(seq: number): MessageRecord | undefined {
    return this.current?.seq === seq ? this.current : (this.pending.find((m) => m.seq === seq) ?? this.recent.find((m) => m.seq === seq));
  }

  private seqOf(idOrSeq: string | number): number | undefined {
    if (typeof idOrSeq === 'number') return idOrSeq;
    return /^[0-9]{1,15}$/.test(idOrSeq) ? Number(idOrSeq) : this.recentIds.get(idOrSeq);
  }
}

const rejection = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

/**
 * The outbox: a finished message's record is sent to every target as a signed webhook, each delivery
 * retried on its own without holding up the next message, a limited number in flight per target.
 * Once a message's deliveries have all settled they are added to its stored record and leave the outbox.
 */
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { ChatActivities } from '../../activities/chat';
import {
  applyDeliveries,
  DELIVERY_POLICY,
  type ChatEventBody,
  type ConversationCarry,
  type ConversationInput,
  type DeliveryState,
  type MessageRecord,
  type OutboxEntry,
  type TargetHealth,
} from '../../src/conversations/contract';
import type { ChatTarget } from '../../src/conversations/pipeline';
import { attemptsOf, failureOf } from './failures';
import { now, recordDeliveries } from './records';

type Settled = Pick<DeliveryState, 'status' | 'attempts' | 'httpStatus' | 'lastError'>;

export class Deliveries {
  private readonly outbox: OutboxEntry[];
  private readonly targets: Map<string, TargetHealth>;
  /** Deliveries whose activity runs in this run, by webhook id; per target, how many. */
  private readonly sending = new Set<string>();
  private readonly sendingTo = new Map<string, number>();
  /** Record writes of settled deliveries still running. */
  private writes = 0;

  /** `recordOf` finds a message's record while the workflow still holds it, to show its deliveries there too. */
  constructor(
    private readonly input: ConversationInput,
    private readonly recordOf: (seq: number) => MessageRecord | undefined,
  ) {
    this.outbox = input.carried?.outbox ?? [];
    this.targets = new Map(input.pipeline.targets.map((t) => [t.name, targetHealth(t, input.carried?.targets, this.outbox)]));
  }

  get health(): TargetHealth[] {
    return [...this.targets.values()];
  }

  /** No record write is running: the run may end. */
  get written(): boolean {
    return this.writes === 0;
  }

  /** What the next run takes over: the unsettled deliveries and each target's health. */
  carry(): Pick<ConversationCarry, 'outbox' | 'targets'> {
    return { outbox: this.outbox, targets: this.health };
  }

  /** Puts a finished message's deliveries in the outbox; a target with too many waiting fails it at once. */
  queue(record: MessageRecord): void {
    const entry: OutboxEntry = {
      seq: record.seq,
      messageId: record.id,
      nextEventId: record.events.length + 1,
      deliveries: record.deliveries.map((d) => ({ ...d })),
      events: [],
    };
    this.outbox.push(entry);
    for (const d of entry.deliveries) {
      const health = this.targets.get(d.target)!;
      health.pending++;
      if (health.pending > DELIVERY_POLICY.queuedPerTarget) {
        this.settle(entry, d, {
          status: 'failed',
          attempts: 0,
          httpStatus: null,
          lastError: `target ${d.target} already has ${DELIVERY_POLICY.queuedPerTarget} deliveries waiting`,
        });
      }
    }
    this.pump();
  }

  /** Starts waiting deliveries, oldest first, as far as each target's in-flight limit allows. */
  pump(): void {
    for (const entry of this.outbox) {
      for (const d of entry.deliveries) {
        if (d.status !== 'pending' || this.sending.has(d.webhookId)) continue;
        if ((this.sendingTo.get(d.target) ?? 0) >= DELIVERY_POLICY.inFlightPerTarget) continue;
        this.start(entry, d);
      }
    }
  }

  private start(entry: OutboxEntry, d: DeliveryState): void {
    d.startedAt ??= now();
    const leftMs = DELIVERY_POLICY.giveUpAfterMs - (Date.now() - Date.parse(d.startedAt));
    if (leftMs <= 0) {
      return this.settle(entry, d, {
        status: 'failed',
        attempts: d.attempts,
        httpStatus: d.httpStatus,
        lastError: `not delivered within ${DELIVERY_POLICY.giveUpAfterMs / 60_000} minutes`,
      });
    }
    this.sending.add(d.webhookId);
    this.sendingTo.set(d.target, (this.sendingTo.get(d.target) ?? 0) + 1);
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
    const { tenant, conversationId } = this.input;
    const target = { name: d.target, url: d.url };
    deliverToTarget({ tenant, conversationId, seq: entry.seq, target, webhookId: d.webhookId }).then(
      (r) => this.settle(entry, d, { status: 'delivered', attempts: r.attempt, httpStatus: r.httpStatus, lastError: null }),
      (err: unknown) => {
        if (isCancellation(err)) return; // the conversation is cancelled: nothing more is delivered
        const details = deliveryDetails(err);
        this.settle(entry, d, {
          status: 'failed',
          attempts: details?.attempt ?? attemptsOf(err, DELIVERY_POLICY.maxAttempts),
          httpStatus: details?.status || null,
          lastError: failureOf(err).message,
        });
      },
    );
  }

  private settle(entry: OutboxEntry, d: DeliveryState, result: Settled): void {
    if (this.sending.delete(d.webhookId)) this.sendingTo.set(d.target, this.sendingTo.get(d.target)! - 1);
    Object.assign(d, result, { finishedAt: now() });
    const body = this.count(d);
    const event = { id: entry.nextEventId++, at: now(), ...body };
    entry.events.push(event);
    const record = this.recordOf(entry.seq);
    if (record) applyDeliveries(record, [{ ...d }], [event]);
    if (entry.deliveries.every((x) => x.status !== 'pending')) this.store(entry);
    this.pump();
  }

  /** Counts a settled delivery in its target's health; returns the event that tells of it. */
  private count(d: DeliveryState): ChatEventBody {
    const health = this.targets.get(d.target)!;
    health.pending--;
    if (d.status === 'delivered') {
      health.delivered++;
      health.consecutiveFailures = 0;
      health.lastDeliveredAt = d.finishedAt;
      return { type: 'delivery.delivered', target: d.target, attempts: d.attempts ?? 1, httpStatus: d.httpStatus ?? 0 };
    }
    health.failed++;
    health.consecutiveFailures++;
    health.lastError = d.lastError;
    return { type: 'delivery.failed', target: d.target, error: d.lastError ?? 'failed', attempts: d.attempts };
  }

  /** Puts a message's settled deliveries into its stored record; then it leaves the outbox. */
  private store(entry: OutboxEntry): void {
    const { tenant, conversationId } = this.input;
    this.writes++;
    recordDeliveries({ tenant, conversationId, seq: entry.seq, deliveries: entry.deliveries, events: entry.events })
      .then(
        () => this.outbox.splice(this.outbox.indexOf(entry), 1),
        () => undefined, // only a cancellation ends it: the conversation is going away
      )
      .finally(() => this.writes--);
  }
}

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

/** What `deliverToTarget` attaches to its failures: the attempt, and the receiver's HTTP status (0 when none answered). */
function deliveryDetails(err: unknown): { attempt: number; status: number } | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  return cause instanceof ApplicationFailure ? (cause.details?.[0] as { attempt: number; status: number } | undefined) : undefined;
}

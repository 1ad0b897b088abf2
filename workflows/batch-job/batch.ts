/** A batch's state in its workflow: counts of its finished groups, its status, why it stops early, and what it shows and hands on. */
import { ActivityFailure, CancellationScope, isCancellation, upsertMemo } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import {
  BATCH_STATE_MEMO,
  batchScope,
  type BatchCarry,
  type BatchCounts,
  type BatchJobInput,
  type BatchOutcome,
  type BatchState,
  type GroupProgress,
} from '../../src/batches/contract';
import { failureMessage, failureType } from '../job-failure';
import { batchActivities, type BatchActivities } from './proxies';

/** Why a batch stops before all its groups have run: the first of its window's end, a client's cancel, a group that cannot run. */
export type BatchStop = { reason: 'expired' | 'cancelled' } | { reason: 'failed'; error: { type: string; message: string } };

export class Batch {
  /** Where the batch's files live. */
  readonly scope: string;
  readonly windowEndsAt: number;
  readonly activities: BatchActivities;
  readonly inProgressAt: number;
  /** Items of the finished groups. */
  readonly counts: BatchCounts;
  groupsDone: number;
  status: BatchState['status'] = 'in_progress';
  finalizingAt?: number;
  stopped?: BatchStop;
  /** The running groups' scope: cancelled when the batch stops early. */
  readonly groups = new CancellationScope();

  constructor(readonly input: BatchJobInput) {
    const carried = input.carried;
    this.scope = batchScope(input.tenant, input.batchId);
    this.windowEndsAt = input.createdAt + input.completionWindowMs;
    this.activities = batchActivities(input, this.windowEndsAt);
    this.inProgressAt = carried?.inProgressAt ?? Date.now();
    this.counts = carried ? { ...carried.counts } : { total: input.items, completed: 0, failed: 0 };
    this.groupsDone = carried?.nextGroup ?? 0;
  }

  state(): BatchState {
    const { status, groupsDone, inProgressAt, finalizingAt } = this;
    return { status, counts: { ...this.counts }, groupsDone, inProgressAt, ...(finalizingAt === undefined ? {} : { finalizingAt }) };
  }

  /** Shows the state in the memo, so a describe reads it without a workflow worker. */
  publish(): void {
    upsertMemo({ [BATCH_STATE_MEMO]: this.state() });
  }

  groupDone({ completed, failed }: GroupProgress): void {
    this.counts.completed += completed;
    this.counts.failed += failed;
    this.groupsDone++;
    this.publish();
  }

  /** A group that ended without its results: the window ran out, or its files are gone (the batch fails). */
  groupFailed(index: number, err: unknown): void {
    if (isCancellation(err) || this.stopped) return; // stopped by the batch itself
    if (err instanceof ActivityFailure && err.retryState === RetryState.TIMEOUT) return this.stop({ reason: 'expired' });
    this.stop({ reason: 'failed', error: { type: failureType(err), message: `group ${index}: ${failureMessage(err)}` } });
  }

  /** Stops the batch early; the first reason stands. Running groups are cancelled and write what they finished. */
  stop(stop: BatchStop): void {
    if (this.stopped) return;
    this.stopped = stop;
    this.groups.cancel();
    if (stop.reason === 'cancelled') {
      this.status = 'cancelling';
      this.publish();
    }
  }

  finalizing(): void {
    this.status = 'finalizing';
    this.finalizingAt = Date.now();
    this.publish();
  }

  /** What the next run takes over: every group below `nextGroup` has finished. */
  carry(nextGroup: number): BatchCarry {
    return { nextGroup, counts: { ...this.counts }, inProgressAt: this.inProgressAt };
  }

  outcome(status: BatchOutcome['status'], counts: BatchCounts, error?: BatchOutcome['error']): BatchOutcome {
    const { inProgressAt, finalizingAt } = this;
    return {
      status,
      counts,
      ...(error ? { error } : {}),
      inProgressAt,
      ...(finalizingAt === undefined ? {} : { finalizingAt }),
      endedAt: Date.now(),
    };
  }
}

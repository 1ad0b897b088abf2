/**
 * Reading a batch back from Temporal. A running batch is its workflow's memo (the BatchState it keeps
 * there after every change: finished groups' counts) plus the running groups' heartbeat progress; a
 * batch that has ended is the BatchOutcome its workflow returned, read from the close event alone, or
 * the one in its memo while the workflow still delivers its webhook.
 */
import { type Client, type WorkflowExecutionDescription, WorkflowNotFoundError } from '@temporalio/client';
import {
  BATCH_JOB_WORKFLOW,
  BATCH_OUTCOME_MEMO,
  BATCH_STATE_MEMO,
  batchWorkflowId,
  type BatchCounts,
  type BatchOutcome,
  type GroupProgress,
} from '../../batches/contract';
import type { JobLinkBase } from '../../jobs/resource';
import { SEARCH_ATTRIBUTES } from '../../jobs/search-attributes';
import { closeEventDecoded, describeDecoded } from '../../temporal/decoded';
import { decodePayload, rootFailure } from '../../temporal/proto';
import { batchResource, type BatchFacts, type BatchMemo, type BatchResource } from './resource';

/** The activity that runs one group; its heartbeat details are the group's GroupProgress. */
const GROUP_ACTIVITY = 'runBatchGroup';

/** A batch as read: its resource, and the memo the API started it with (where its files are). */
export interface BatchRead {
  batch: BatchResource;
  memo: BatchMemo;
}

export class BatchReader {
  constructor(
    private readonly temporal: Client,
    private readonly links: JobLinkBase,
  ) {}

  /** The tenant's batch, or null when there is none or it belongs to someone else. */
  async read(tenant: string, batchId: string): Promise<BatchRead | null> {
    const description = await this.describe(tenant, batchId);
    return description && this.toResource(tenant, batchId, description);
  }

  /** The latest run of the tenant's batch, or null when there is none or it belongs to someone else. */
  async describe(tenant: string, batchId: string): Promise<WorkflowExecutionDescription | null> {
    try {
      const description = await describeDecoded(this.temporal.workflow.getHandle(batchWorkflowId(tenant, batchId)));
      // The id already scopes the batch to its tenant; the search attribute is a second check.
      const ours = description.type === BATCH_JOB_WORKFLOW && description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.tenant) === tenant;
      return ours ? description : null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  async toResource(tenant: string, batchId: string, d: WorkflowExecutionDescription): Promise<BatchRead> {
    const memo = d.memo as unknown as BatchMemo;
    const facts: BatchFacts = {
      id: batchId,
      tenant,
      pool: d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.pool) ?? '',
      priority: d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.priority) ?? 3,
      memo,
      workflowId: d.workflowId,
      runId: d.runId,
      ...(d.status.name !== 'RUNNING'
        ? await this.endedState(d, memo)
        : memo[BATCH_OUTCOME_MEMO]
          ? outcomeState(memo[BATCH_OUTCOME_MEMO])
          : runningState(d, memo)),
    };
    return { batch: batchResource(this.links, facts), memo };
  }

  /** How the run ended: the workflow's BatchOutcome, or, when it did not return one, what its close event says. */
  private async endedState(d: WorkflowExecutionDescription, memo: BatchMemo): Promise<BatchStateFacts> {
    const event = await closeEventDecoded(this.temporal, d.workflowId, d.runId);
    const endedAt = d.closeTime?.getTime() ?? Date.now();
    const state = memo[BATCH_STATE_MEMO];
    const completed = event?.workflowExecutionCompletedEventAttributes;
    const outcome = completed && decodePayload<BatchOutcome>(completed.result?.payloads?.[0]);
    if (outcome) return outcomeState(outcome);
    // Ended without an outcome: terminated, timed out at the backstop, or failed in a way the workflow did not handle.
    const failure =
      event?.workflowExecutionFailedEventAttributes?.failure ??
      (event?.workflowExecutionTerminatedEventAttributes
        ? { message: event.workflowExecutionTerminatedEventAttributes.reason || 'terminated by an operator', terminatedFailureInfo: {} }
        : undefined);
    const status = d.status.name === 'CANCELLED' ? 'cancelled' : d.status.name === 'TIMED_OUT' ? 'expired' : 'failed';
    return {
      status,
      counts: state?.counts ?? { total: memo.items, completed: 0, failed: 0 },
      error: status === 'failed' ? rootFailure(failure) : null,
      inProgressAt: state?.inProgressAt,
      finalizingAt: state?.finalizingAt,
      endedAt,
    };
  }
}

type BatchStateFacts = Pick<BatchFacts, 'status' | 'counts' | 'error' | 'inProgressAt' | 'finalizingAt' | 'endedAt'>;

/** An ended batch as its outcome tells it: returned by the workflow, or in its memo while the webhook is still delivered. */
function outcomeState({ status, counts, error, inProgressAt, finalizingAt, endedAt }: BatchOutcome): BatchStateFacts {
  return { status, counts, error: error ?? null, inProgressAt, finalizingAt, endedAt };
}

/**
 * A running batch from its memo, which its workflow updates as groups finish, and the progress its
 * running groups last heartbeated. Before the workflow's first state it is in_progress, not yet begun.
 */
function runningState(d: WorkflowExecutionDescription, memo: BatchMemo): BatchStateFacts {
  const state = memo[BATCH_STATE_MEMO];
  const running = (d.raw.pendingActivities ?? [])
    .filter((a) => a.activityType?.name === GROUP_ACTIVITY)
    .map((a) => decodePayload<GroupProgress>(a.heartbeatDetails?.payloads?.[0]))
    .filter((p): p is GroupProgress => p !== undefined);
  const counts: BatchCounts = {
    total: memo.items,
    completed: (state?.counts.completed ?? 0) + sum(running.map((p) => p.completed)),
    failed: (state?.counts.failed ?? 0) + sum(running.map((p) => p.failed)),
  };
  return {
    status: state?.status ?? 'in_progress',
    counts,
    error: null,
    inProgressAt: state?.inProgressAt,
    finalizingAt: state?.finalizingAt,
  };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

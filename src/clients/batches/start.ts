/**
 * How an accepted batch becomes a workflow start: its input, ids, search attributes, memo and UI summary.
 * Pure, so the API and anything that starts batches directly (benchmarks) start exactly the same workflow.
 */
import type { WorkflowStartOptions } from '@temporalio/client';
import { COMPLETION_WINDOWS, batchWorkflowId, type BatchJobInput, type BatchJobWorkflow } from '../../batches/contract';
import type { Config, PoolConfig } from '../../config';
import { BATCH_JOB_TYPE } from '../../jobs/job';
import { placement } from '../../jobs/search-attributes';
import { RETRY_BACKOFF_DEFAULTS } from '../../jobs/spec';
import { poolTaskQueue, workflowTaskQueue } from '../../temporal/task-queues';
import type { BatchMemo } from './resource';

/** Pending activities of one batch at most, well under Temporal's limit per workflow (2000 by default). */
const MAX_PARALLEL_GROUPS = 1000;
/** The execution timeout is this much after the completion window: time to finalize, and a backstop if no worker can. */
const WINDOW_BACKSTOP_MS = 60 * 60_000;

/** What every batch is started with, from configuration. */
export interface BatchStartSettings {
  taskQueuePrefix: string;
  batches: Pick<Config['batches'], 'groupSize' | 'maxParallelGroups'>;
  limits: Pick<Config['limits'], 'defaultMaxAttempts' | 'defaultAttemptTimeoutMs' | 'heartbeatTimeoutMs'>;
}

/** One accepted batch: who asked for what, and what intake made of the file. */
export interface AcceptedBatch {
  batchId: string;
  tenant: string;
  pool: { name: string; config: PoolConfig };
  priority: number;
  /** The tenant's fairness weight (config), fixed for the batch when it is accepted. */
  fairnessWeight: number;
  webhook?: { url: string };
  memo: BatchMemo;
}

/**
 * How a batch is cut into groups on its pool. A pool's requestsPerSecond is Temporal's rate of activity
 * dispatches, and a group is one activity: on such a pool every item is a group of its own, so the
 * limit holds per item, and as many of them run at once as groups of the pool's concurrency would.
 */
export function groupingOf(pool: PoolConfig, batches: BatchStartSettings['batches']) {
  if (pool.rateLimit.requestsPerSecond === undefined) {
    return { groupSize: batches.groupSize, itemConcurrency: pool.concurrency, maxParallelGroups: batches.maxParallelGroups };
  }
  return {
    groupSize: 1,
    itemConcurrency: 1,
    maxParallelGroups: Math.min(MAX_PARALLEL_GROUPS, batches.maxParallelGroups * pool.concurrency),
  };
}

export function batchStartOptions(settings: BatchStartSettings, b: AcceptedBatch): WorkflowStartOptions<BatchJobWorkflow> {
  const { tenant, batchId, memo } = b;
  const { limits } = settings;
  const completionWindowMs = COMPLETION_WINDOWS[memo.completionWindow];
  const grouping = groupingOf(b.pool.config, settings.batches);
  const input: BatchJobInput = {
    batchId,
    tenant,
    pool: b.pool.name,
    taskQueue: poolTaskQueue(settings.taskQueuePrefix, b.pool.name),
    format: memo.format,
    items: memo.items,
    groups: memo.groups,
    ...grouping,
    priority: b.priority,
    fairnessWeight: b.fairnessWeight,
    retry: { maxAttempts: limits.defaultMaxAttempts, ...RETRY_BACKOFF_DEFAULTS },
    attemptTimeoutMs: limits.defaultAttemptTimeoutMs,
    heartbeatTimeoutMs: limits.heartbeatTimeoutMs,
    completionWindowMs,
    createdAt: memo.createdAt,
    webhook: b.webhook,
  };
  return {
    workflowId: batchWorkflowId(tenant, batchId),
    taskQueue: workflowTaskQueue(settings.taskQueuePrefix),
    // An idempotent repeat finds the batch first (src/clients/batches/submit.ts); a start that finds one is a race lost.
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    ...placement({ tenant, type: BATCH_JOB_TYPE, priority: b.priority, pool: b.pool.name, tenantWeight: b.fairnessWeight }),
    memo: { ...memo },
    args: [input],
    workflowExecutionTimeout: completionWindowMs + WINDOW_BACKSTOP_MS,
    staticSummary: `batch of ${memo.items} on pool ${b.pool.name} · priority ${b.priority} · tenant ${tenant}`,
    staticDetails: [
      `**Batch** ${batchId} (${memo.format} format)`,
      `**Tenant** ${tenant} · **pool** ${b.pool.name} · **priority** ${b.priority} · **window** ${memo.completionWindow}`,
      `**Items** ${memo.items} in ${memo.groups} groups of ${grouping.groupSize}, ${grouping.maxParallelGroups} groups at once, ${grouping.itemConcurrency} items at once per group`,
      `**Attempts** up to ${limits.defaultMaxAttempts} per item, ${limits.defaultAttemptTimeoutMs} ms each`,
    ].join('\n\n'),
  };
}

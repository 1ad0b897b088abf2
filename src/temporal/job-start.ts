/**
 * How a job becomes a workflow start: its input, ids, search attributes, memo and UI summary. Pure, so the
 * API and anything that starts jobs directly (benchmarks) start exactly the same workflow.
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowStartOptions } from '@temporalio/client';
import type { InferenceJobInput } from '../jobs/job';
import { workflowIdFor } from '../jobs/ids';
import type { InferenceJobSpec } from '../jobs/spec';
import type { inferenceJob } from '../../workflows';
import { SEARCH_ATTRIBUTES } from '../jobs/search-attributes';
import { poolTaskQueue, workflowTaskQueue } from './task-queues';

export const INFERENCE_WORKFLOW = 'inferenceJob';
const DEADLINE_BACKSTOP_MS = 60_000;

/** Kept in the workflow's memo: what the API needs to answer for the job and to check repeats. */
export interface JobMemo {
  task: string;
  fingerprint: string;
  /** Unique per submit call, so a repeat can tell whether it started the execution itself. */
  submission: string;
}

export interface JobStartParams {
  tenant: string;
  jobId: string;
  spec: InferenceJobSpec;
  /** `requestFingerprint` of the submitted body. */
  fingerprint: string;
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  /** The tenant's fairness weight (config), fixed for the job when it is queued. */
  tenantWeight: number;
}

export function jobStartOptions(p: JobStartParams): { memo: JobMemo; options: WorkflowStartOptions<typeof inferenceJob> } {
  const { tenant, jobId, spec } = p;
  const memo: JobMemo = { task: spec.task, fingerprint: p.fingerprint, submission: randomUUID() };
  const input: InferenceJobInput = {
    jobId,
    tenant,
    pool: spec.pool,
    taskQueue: poolTaskQueue(p.taskQueuePrefix, spec.pool),
    request: {
      task: spec.task,
      ...('text' in spec.input ? { text: spec.input.text } : { messages: spec.input.messages }),
      model: spec.model,
      maxTokens: spec.maxTokens,
      temperature: spec.temperature,
    },
    retry: spec.retry,
    attemptTimeoutMs: spec.timeouts.attemptMs,
    heartbeatTimeoutMs: Math.min(p.heartbeatTimeoutMs, spec.timeouts.attemptMs),
    deadlineMs: spec.timeouts.deadlineMs,
    maxQueueMs: spec.timeouts.maxQueueMs,
  };
  const options: WorkflowStartOptions<typeof inferenceJob> = {
    workflowId: workflowIdFor(tenant, jobId),
    taskQueue: workflowTaskQueue(p.taskQueuePrefix),
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    // Backstop: the workflow ends the job at its deadline; this ends it even if no worker can.
    workflowExecutionTimeout: spec.timeouts.deadlineMs + DEADLINE_BACKSTOP_MS,
    // Activities inherit both: urgent work is dispatched first, and tenants share a pool by weight.
    priority: { priorityKey: spec.priority, fairnessKey: tenant, fairnessWeight: p.tenantWeight },
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.tenant, value: tenant },
      { key: SEARCH_ATTRIBUTES.type, value: spec.type },
      { key: SEARCH_ATTRIBUTES.priority, value: spec.priority },
      { key: SEARCH_ATTRIBUTES.pool, value: spec.pool },
    ],
    memo: { ...memo },
    staticSummary: `${spec.task} on pool ${spec.pool} · priority ${spec.priority} · tenant ${tenant}`,
    staticDetails: [
      `**Job** ${jobId} (${spec.type})`,
      `**Tenant** ${tenant} · **pool** ${spec.pool} · **task** ${spec.task} · **priority** ${spec.priority}`,
      `**Attempts** up to ${spec.retry.maxAttempts}, ${spec.timeouts.attemptMs} ms each · **deadline** ${spec.timeouts.deadlineMs} ms`,
    ].join('\n\n'),
  };
  return { memo, options };
}

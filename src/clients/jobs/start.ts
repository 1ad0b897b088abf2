/**
 * How a job becomes a workflow start: its input, ids, search attributes, memo and UI summary. Pure, so the
 * API and anything that starts jobs directly (benchmarks) start exactly the same workflow.
 */
import { randomUUID } from 'node:crypto';
import type { Workflow, WorkflowStartOptions } from '@temporalio/client';
import { DOCUMENT_JOB_WORKFLOW, type DocumentJobInput, type DocumentJobWorkflow, type DocumentSource } from '../../documents/contract';
import { INFERENCE_JOB_WORKFLOW, type InferenceJobInput, type InferenceJobWorkflow } from '../../jobs/inference-contract';
import { workflowIdFor } from '../../jobs/ids';
import type { DocumentJobSpec, InferenceJobSpec } from '../../jobs/spec';
import { placement } from '../../jobs/search-attributes';
import { poolTaskQueue, workflowTaskQueue } from '../../temporal/task-queues';

/** The execution timeout is this much after the latest time the job may still be working. */
const DEADLINE_BACKSTOP_MS = 60_000;

/** Kept in the workflow's memo: what the API needs to answer for the job and to check repeats. */
export interface JobMemo {
  task: string;
  fingerprint: string;
  /** Unique per submit call, so a repeat can tell whether it started the execution itself. */
  submission: string;
}

interface StartContext {
  tenant: string;
  jobId: string;
  /** `requestFingerprint` of the submitted body. */
  fingerprint: string;
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  /** The tenant's fairness weight (config), fixed for the job when it is queued. */
  tenantWeight: number;
}

export interface JobStartParams extends StartContext {
  spec: InferenceJobSpec;
}

/** A job as it is started: its spec, and for a document job where the document comes from (resolved by the API). */
export type JobToStart = { spec: InferenceJobSpec } | { spec: DocumentJobSpec; source: DocumentSource };

type CommonOptions = Pick<
  WorkflowStartOptions,
  'workflowId' | 'taskQueue' | 'workflowIdConflictPolicy' | 'workflowIdReusePolicy' | 'priority' | 'typedSearchAttributes' | 'memo'
>;

/** What every job's start shares: ids, conflict policies, priority and fairness, search attributes, memo. */
function commonOptions(p: StartContext & { spec: InferenceJobSpec | DocumentJobSpec }, memo: JobMemo): CommonOptions {
  const { tenant, spec } = p;
  return {
    workflowId: workflowIdFor(tenant, p.jobId),
    taskQueue: workflowTaskQueue(p.taskQueuePrefix),
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    ...placement({ tenant, type: spec.type, priority: spec.priority, pool: spec.pool, tenantWeight: p.tenantWeight }),
    memo: { ...memo },
  };
}

const newMemo = (task: string, fingerprint: string): JobMemo => ({ task, fingerprint, submission: randomUUID() });

export function jobStartOptions(p: JobStartParams): { memo: JobMemo; options: WorkflowStartOptions<InferenceJobWorkflow> } {
  const { tenant, jobId, spec } = p;
  const memo = newMemo(spec.task, p.fingerprint);
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
  const options: WorkflowStartOptions<InferenceJobWorkflow> = {
    ...commonOptions(p, memo),
    args: [input],
    // Backstop: the workflow ends the job at its deadline; this ends it even if no worker can.
    workflowExecutionTimeout: spec.timeouts.deadlineMs + DEADLINE_BACKSTOP_MS,
    staticSummary: `${spec.task} on pool ${spec.pool} · priority ${spec.priority} · tenant ${tenant}`,
    staticDetails: [
      `**Job** ${jobId} (${spec.type})`,
      `**Tenant** ${tenant} · **pool** ${spec.pool} · **task** ${spec.task} · **priority** ${spec.priority}`,
      `**Attempts** up to ${spec.retry.maxAttempts}, ${spec.timeouts.attemptMs} ms each · **deadline** ${spec.timeouts.deadlineMs} ms`,
    ].join('\n\n'),
  };
  return { memo, options };
}

export function documentJobStartOptions(p: StartContext & { spec: DocumentJobSpec; source: DocumentSource }): {
  memo: JobMemo;
  options: WorkflowStartOptions<DocumentJobWorkflow>;
} {
  const { tenant, jobId, spec } = p;
  const memo = newMemo(spec.tasks.join(','), p.fingerprint);
  const input: DocumentJobInput = {
    jobId,
    tenant,
    pool: spec.pool,
    poolTaskQueue: poolTaskQueue(p.taskQueuePrefix, spec.pool),
    pipelineTaskQueue: workflowTaskQueue(p.taskQueuePrefix),
    source: p.source,
    chunkChars: spec.chunking.targetChars,
    tasks: spec.tasks,
    prompt: spec.prompt,
    model: spec.model,
    maxParallel: spec.maxParallel,
    failurePolicy: spec.failurePolicy,
    review: spec.review,
    webhook: spec.webhook,
    retry: spec.retry,
    attemptTimeoutMs: spec.timeouts.attemptMs,
    heartbeatTimeoutMs: Math.min(p.heartbeatTimeoutMs, spec.timeouts.attemptMs),
    deadlineMs: spec.timeouts.deadlineMs,
  };
  const source = 'url' in p.source ? `URL ${p.source.url}` : `document ${p.source.document.id} (${p.source.document.type})`;
  const review = spec.review ? `review within ${spec.review.timeoutMs} ms, then ${spec.review.onTimeout}` : 'no review';
  const options: WorkflowStartOptions<DocumentJobWorkflow> = {
    ...commonOptions(p, memo),
    args: [input],
    // Backstop: the deadline counts the pipeline's own work, and the review may wait on top of it; the
    // timeout spans every run of the job, continued-as-new ones included.
    workflowExecutionTimeout: spec.timeouts.deadlineMs + (spec.review?.timeoutMs ?? 0) + DEADLINE_BACKSTOP_MS,
    staticSummary: `document: ${spec.tasks.join(', ')} on pool ${spec.pool} · priority ${spec.priority} · tenant ${tenant}`,
    staticDetails: [
      `**Job** ${jobId} (${spec.type})`,
      `**Tenant** ${tenant} · **pool** ${spec.pool} · **tasks** ${spec.tasks.join(', ')} · **priority** ${spec.priority}`,
      `**Source** ${source} · **chunks** ~${spec.chunking.targetChars} characters, ${spec.maxParallel} at once · **on a failed chunk** ${spec.failurePolicy}`,
      `**Attempts** up to ${spec.retry.maxAttempts} per step, ${spec.timeouts.attemptMs} ms each · **deadline** ${spec.timeouts.deadlineMs} ms · ${review}`,
    ].join('\n\n'),
  };
  return { memo, options };
}

/** The start of any job: which workflow, with which options. */
export function workflowStart(p: StartContext & JobToStart): {
  memo: JobMemo;
  workflowType: string;
  options: WorkflowStartOptions<Workflow>;
} {
  if (p.spec.type === 'inference') return { ...jobStartOptions({ ...p, spec: p.spec }), workflowType: INFERENCE_JOB_WORKFLOW };
  if (!('source' in p)) throw new Error('a document job is started with its source resolved');
  return { ...documentJobStartOptions({ ...p, spec: p.spec, source: p.source }), workflowType: DOCUMENT_JOB_WORKFLOW };
}

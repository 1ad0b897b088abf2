/**
 * Retrying jobs. A retry starts a new run of the same workflow id — the same job id — exactly as the
 * run it retries was started (input, memo, search attributes, priority, summary, all read from that
 * run's first history event), with a fresh deadline: the deadline counts from the new run's start.
 * Each run records the run it retries in its memo; a job's runs list the links both ways.
 */
import { randomUUID } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type Client, isGrpcServiceError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { workflowIdFor } from '../../jobs/ids';
import type { JobStatus } from '../../jobs/job';
import type { BulkRetryResult, JobResource, JobRun, JobRunRef } from '../../jobs/resource';
import type { JobsContext } from './context';
import { JobNotRetryableError, QuotaExceededError } from './errors';
import { jobsOfPage } from './list';
import { mapBounded, runsQuery, visibilityPage, visibilityQuery, type JobFilter } from './visibility';

/** What a retry adds to the memo of the run it starts. */
export interface RetryMemo {
  /** The run this one retries. */
  retryOf: string;
  runNumber: number;
}

export const RETRYABLE_STATUSES = ['failed', 'timed_out', 'cancelled'] as const satisfies readonly JobStatus[];
export type RetryableStatus = (typeof RETRYABLE_STATUSES)[number];
const isRetryable = (status: JobStatus): status is RetryableStatus => (RETRYABLE_STATUSES as readonly string[]).includes(status);

const CONTINUED_AS_NEW = temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW;

/**
 * Starts a new run of the job if its current run failed, timed out or was cancelled; null if the tenant
 * has no such job. A job that is still running or succeeded — also one another retry started
 * meanwhile — is a JobNotRetryableError. The new run is an open job like a submitted one, so a tenant
 * at its quota gets QuotaExceededError.
 */
export async function retryJob(ctx: JobsContext, tenant: string, jobId: string): Promise<JobResource | null> {
  const job = await ctx.getJob(tenant, jobId);
  return job && retryCurrentRun(ctx, tenant, job);
}

async function retryCurrentRun(ctx: JobsContext, tenant: string, job: JobResource): Promise<JobResource> {
  if (!isRetryable(job.status)) throw new JobNotRetryableError(job);
  let runId: string;
  try {
    runId = await ctx.admitOpenJob(tenant, () => startRetryRun(ctx.temporal, workflowIdFor(tenant, job.id), job.run));
  } catch (err) {
    // A start refused by the workflow-id policies: another retry started a run meanwhile.
    if (!isGrpcServiceError(err) || err.code !== GrpcStatus.ALREADY_EXISTS) throw err;
    throw new JobNotRetryableError((await ctx.getJob(tenant, job.id)) ?? job);
  }
  return (await ctx.getJob(tenant, job.id, runId))!;
}

/** The first event of a run: how it was started. */
async function startEventOf(client: Client, workflowId: string, runId: string) {
  const history = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const first = history.history?.events?.[0];
  if (!first?.workflowExecutionStartedEventAttributes) throw new Error(`run ${runId} of ${workflowId} has no start event`);
  return { first, started: first.workflowExecutionStartedEventAttributes };
}

/**
 * Starts the run that retries `run`, as a copy of its start; returns the new run id. A document job may
 * have continued as new: its latest run was started with where the previous one left off, so the copy
 * is of the start of the first run of that chain — the job as it was submitted.
 */
async function startRetryRun(client: Client, workflowId: string, run: JobRunRef): Promise<string> {
  const namespace = client.options.namespace;
  let { first, started } = await startEventOf(client, workflowId, run.id);
  if (started.firstExecutionRunId && started.firstExecutionRunId !== run.id) {
    ({ first, started } = await startEventOf(client, workflowId, started.firstExecutionRunId));
  }
  const retry: RetryMemo = { retryOf: run.id, runNumber: run.number + 1 };
  const memoFields = Object.fromEntries(Object.entries(retry).map(([k, v]) => [k, defaultPayloadConverter.toPayload(v)]));
  const { WorkflowIdReusePolicy, WorkflowIdConflictPolicy } = temporal.api.enums.v1;
  const response = await client.workflowService.startWorkflowExecution({
    namespace,
    workflowId,
    identity: client.options.identity,
    requestId: randomUUID(),
    // Only after a run that did not succeed, and never next to a running one: a job has one live run.
    workflowIdReusePolicy: WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
    workflowType: started.workflowType,
    taskQueue: started.taskQueue,
    input: started.input,
    // Durations, so the deadline backstop counts from the new run's start.
    workflowExecutionTimeout: started.workflowExecutionTimeout,
    workflowRunTimeout: started.workflowRunTimeout,
    workflowTaskTimeout: started.workflowTaskTimeout,
    retryPolicy: started.retryPolicy,
    memo: { fields: { ...started.memo?.fields, ...memoFields } },
    searchAttributes: started.searchAttributes,
    header: started.header,
    priority: started.priority,
    userMetadata: first.userMetadata,
  });
  return response.runId;
}

export interface BulkRetryFilter extends JobFilter {
  status: RetryableStatus;
  limit: number;
  cursor?: string;
}

/**
 * Retries the jobs of one page of a filter, as `GET /v1/jobs` would list them. A job whose current run
 * matches is retried; one the page names only by an earlier run (it has been retried since) is skipped.
 */
export async function retryJobs(ctx: JobsContext, tenant: string, filter: BulkRetryFilter): Promise<BulkRetryResult> {
  const page = await visibilityPage(ctx.temporal, visibilityQuery(tenant, filter), filter.limit, filter.cursor);
  const named = await jobsOfPage(ctx, tenant, page.executions);
  const result: BulkRetryResult = { retried: [], skipped: [], nextCursor: page.nextCursor };
  for (const { job } of named.filter((n) => !n.currentRunListed)) {
    const detail = `run ${job.run.number} is the current run (${job.status})`;
    result.skipped.push({ id: job.id, status: job.status, run: job.run, reason: 'already-retried', detail });
  }
  const matching = named.filter((n) => n.currentRunListed && n.job.status === filter.status).map((n) => n.job);
  const outcomes = await mapBounded(matching, (job) =>
    retryCurrentRun(ctx, tenant, job).catch((err: unknown) => {
      if (err instanceof JobNotRetryableError || err instanceof QuotaExceededError) return err;
      throw err;
    }),
  );
  outcomes.forEach((outcome, i) => {
    if (outcome instanceof JobNotRetryableError) {
      const { id, status, run } = outcome.job;
      result.skipped.push({ id, status, run, reason: 'not-retryable', detail: `changed while being retried: now ${status}` });
    } else if (outcome instanceof QuotaExceededError) {
      const { id, status, run } = matching[i]!;
      result.skipped.push({ id, status, run, reason: 'quota-exceeded', detail: outcome.message });
    } else result.retried.push({ id: outcome.id, run: outcome.run });
  });
  return result;
}

/** At most this many runs are listed, the most recent first. */
export const MAX_RUNS_LISTED = 100;

/** The job's runs, newest first, each with its status and failure and the links of the retry chain; null if no such job. */
export async function listRuns(ctx: Pick<JobsContext, 'temporal' | 'getJob'>, tenant: string, jobId: string): Promise<JobRun[] | null> {
  const current = await ctx.getJob(tenant, jobId);
  if (!current) return null;
  const page = await visibilityPage(ctx.temporal, runsQuery(tenant, workflowIdFor(tenant, jobId)), MAX_RUNS_LISTED);
  // The current run comes from the job itself: visibility may not list a run started a moment ago. A
  // run that continued as new is part of the run after it, not a run of the job of its own.
  const earlier = [...new Set(page.executions.filter((e) => e.status !== CONTINUED_AS_NEW).map((e) => e.execution?.runId ?? ''))].filter(
    (id) => id && id !== current.run.id,
  );
  const runs = [current, ...(await mapBounded(earlier, (runId) => ctx.getJob(tenant, jobId, runId)))]
    .filter((r): r is JobResource => r !== null)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    .slice(0, MAX_RUNS_LISTED);
  const retriedBy = new Map(runs.filter((r) => r.run.retryOf).map((r) => [r.run.retryOf!, r.run.id]));
  return runs.map((r) => ({
    ...r.run,
    status: r.status,
    attempts: r.attempts,
    lastFailure: r.lastFailure,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt,
    retriedBy: retriedBy.get(r.run.id) ?? null,
    links: { temporalUi: r.links.temporalUi },
  }));
}

/** Listing a tenant's jobs and counting failures, through Temporal visibility (see visibility.ts). */
import type { Client } from '@temporalio/client';
import { DOCUMENT_FAILURES } from '../../documents/contract';
import { DEADLINE_EXCEEDED, NON_RETRYABLE_ERRORS, QUEUE_TIMEOUT } from '../../jobs/job';
import type { JobResource } from '../../jobs/resource';
import type { JobsContext } from './context';
import { mapBounded, queryString, visibilityPage, visibilityQuery, type ExecutionInfo, type JobFilter } from './visibility';

export interface JobListFilter extends JobFilter {
  limit: number;
  cursor?: string;
}

/** A job a page of executions names, as of its current run, and whether the page has a row of that run. */
export interface PageJob {
  job: JobResource;
  currentRunListed: boolean;
}

/**
 * The jobs behind a page of executions, each once, as of its current run. Every run of a job has a row,
 * so a row may stand for an earlier run that has since been retried.
 */
export async function jobsOfPage(ctx: Pick<JobsContext, 'getJob'>, tenant: string, executions: ExecutionInfo[]): Promise<PageJob[]> {
  const prefix = `${tenant}/`;
  const rows = executions
    .map((e) => ({ workflowId: e.execution?.workflowId ?? '', runId: e.execution?.runId }))
    .filter((r) => r.workflowId.startsWith(prefix))
    .map((r) => ({ jobId: r.workflowId.slice(prefix.length), runId: r.runId }));
  const ids = [...new Set(rows.map((r) => r.jobId))];
  const found = await mapBounded(ids, (id) => ctx.getJob(tenant, id));
  return found
    .filter((job): job is JobResource => job !== null)
    .map((job) => ({ job, currentRunListed: rows.some((r) => r.jobId === job.id && r.runId === job.run.id) }));
}

export async function listJobs(
  ctx: Pick<JobsContext, 'temporal' | 'getJob'>,
  tenant: string,
  filter: JobListFilter,
): Promise<{ items: JobResource[]; nextCursor: string | null }> {
  const page = await visibilityPage(ctx.temporal, visibilityQuery(tenant, filter), filter.limit, filter.cursor);
  // A job is listed where its current run is; a row of an earlier run stands for nothing. queued and
  // running share one execution status, so the exact status comes from each job's state.
  const items = (await jobsOfPage(ctx, tenant, page.executions))
    .filter(({ job, currentRunListed }) => currentRunListed && (!filter.status || job.status === filter.status))
    .map(({ job }) => job);
  return { items, nextCursor: page.nextCursor };
}

/**
 * The failure types counted on their own; anything else (an unexpected error, a custom type) is
 * counted as `other`. Visibility cannot group by a custom search attribute, so each is one count.
 */
export const COUNTED_FAILURE_TYPES = [
  ...NON_RETRYABLE_ERRORS,
  'ProviderRateLimited',
  'ProviderUnavailable',
  'ProviderTimeout',
  DEADLINE_EXCEEDED,
  QUEUE_TIMEOUT,
  'TimeoutStartToClose',
  'TimeoutHeartbeat',
  // Document jobs; a failed webhook delivery never fails its job.
  DOCUMENT_FAILURES.chunkFailed,
  DOCUMENT_FAILURES.reviewRejected,
  DOCUMENT_FAILURES.reviewTimedOut,
  DOCUMENT_FAILURES.urlRefused,
  DOCUMENT_FAILURES.unsupportedDocument,
  DOCUMENT_FAILURES.emptyDocument,
] as const;

export interface FailureScope {
  /** Absent: every tenant (for an operator's metrics). */
  tenant?: string;
  pool?: string;
  /** Count failures that ended at or after this time (RFC 3339). */
  since?: string;
}

export interface FailureCounts {
  total: number;
  byType: Record<(typeof COUNTED_FAILURE_TYPES)[number] | 'other', number>;
}

/**
 * Failed runs by failure type (`JobErrorType`, set by the workflow when a job fails). A job that failed,
 * was retried and failed again counts twice: these count failures, not jobs.
 */
export async function countFailures(client: Client, scope: FailureScope): Promise<FailureCounts> {
  const base = ['JobErrorType IS NOT NULL'];
  if (scope.tenant !== undefined) base.push(`JobTenant = ${queryString(scope.tenant)}`);
  if (scope.pool !== undefined) base.push(`JobPool = ${queryString(scope.pool)}`);
  if (scope.since !== undefined) base.push(`CloseTime >= ${queryString(scope.since)}`);
  const buckets: [keyof FailureCounts['byType'], string][] = [
    ...COUNTED_FAILURE_TYPES.map((t): [typeof t, string] => [t, `JobErrorType = ${queryString(t)}`]),
    ['other', `JobErrorType NOT IN (${COUNTED_FAILURE_TYPES.map(queryString).join(', ')})`],
  ];
  const counts = await Promise.all(
    buckets.map(async ([, clause]) => Number((await client.workflow.count([...base, clause].join(' AND '))).count)),
  );
  const byType = Object.fromEntries(buckets.map(([type], i) => [type, counts[i]!])) as FailureCounts['byType'];
  return { total: counts.reduce((a, b) => a + b, 0), byType };
}

/**
 * Listing and counting a tenant's jobs through Temporal visibility. Queries are built only from
 * allow-listed, validated filter values — never from client text — and always carry the tenant.
 */
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { DOCUMENT_FAILURES } from '../../documents/contract';
import { DEADLINE_EXCEEDED, EXECUTION_STATUS_FOR, NON_RETRYABLE_ERRORS, QUEUE_TIMEOUT, JOB_TYPES, type JobStatus, type JobType } from '../../jobs/job';
import type { JobResource } from '../../jobs/resource';
import type { JobClient } from './client';

export interface JobFilter {
  status?: JobStatus;
  type?: JobType;
  pool?: string;
  /** The `JobErrorType` a failed job was filed under (its `lastFailure.type`). */
  errorType?: string;
  createdAfter?: string;
  createdBefore?: string;
}

export interface JobListFilter extends JobFilter {
  limit: number;
  cursor?: string;
}

export class InvalidCursorError extends Error {}

type ExecutionInfo = temporal.api.workflow.v1.IWorkflowExecutionInfo;

/** A string literal for a visibility query. */
export const queryString = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Jobs only: a tenant's conversations are workflows with its JobTenant too, but not jobs. */
export const JOBS_ONLY = `JobType IN (${JOB_TYPES.map(queryString).join(', ')})`;

export function visibilityQuery(tenant: string, f: JobFilter): string {
  const clauses = [`JobTenant = ${queryString(tenant)}`, f.type ? `JobType = ${queryString(f.type)}` : JOBS_ONLY];
  if (f.pool) clauses.push(`JobPool = ${queryString(f.pool)}`);
  if (f.status) clauses.push(`ExecutionStatus IN (${EXECUTION_STATUS_FOR[f.status].map(queryString).join(', ')})`);
  if (f.errorType) clauses.push(`JobErrorType = ${queryString(f.errorType)}`);
  if (f.createdAfter) clauses.push(`StartTime >= ${queryString(f.createdAfter)}`);
  if (f.createdBefore) clauses.push(`StartTime < ${queryString(f.createdBefore)}`);
  return clauses.join(' AND ');
}

/** One page of executions matching `query`, newest first; the cursor is the server's page token. */
export async function visibilityPage(
  client: Client,
  query: string,
  pageSize: number,
  cursor?: string,
): Promise<{ executions: ExecutionInfo[]; nextCursor: string | null }> {
  let nextPageToken: Buffer | undefined;
  if (cursor !== undefined) {
    nextPageToken = Buffer.from(cursor, 'base64url');
    if (nextPageToken.length === 0 || nextPageToken.toString('base64url') !== cursor) throw new InvalidCursorError();
  }
  const page = await client.workflowService
    .listWorkflowExecutions({ namespace: client.options.namespace, pageSize, nextPageToken, query })
    .catch((err: unknown) => {
      // The cursor is the only client-controlled part of the request. A token the server cannot decode
      // is INVALID_ARGUMENT, or UNKNOWN from the dev server's SQLite store.
      const code = (err as { code?: number }).code;
      if (nextPageToken && (code === 3 || code === 2)) throw new InvalidCursorError();
      throw err;
    });
  const token = page.nextPageToken;
  return {
    executions: page.executions ?? [],
    nextCursor: token && token.length > 0 ? Buffer.from(token).toString('base64url') : null,
  };
}

const DESCRIBE_CONCURRENCY = 16;

/** `work` over `items`, a bounded number at a time, results in order. */
export async function mapBounded<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += DESCRIBE_CONCURRENCY) {
    results.push(...(await Promise.all(items.slice(i, i + DESCRIBE_CONCURRENCY).map(work))));
  }
  return results;
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
export async function jobsOfPage(jobs: JobClient, tenant: string, executions: ExecutionInfo[]): Promise<PageJob[]> {
  const prefix = `${tenant}/`;
  const rows = executions
    .map((e) => ({ workflowId: e.execution?.workflowId ?? '', runId: e.execution?.runId }))
    .filter((r) => r.workflowId.startsWith(prefix))
    .map((r) => ({ jobId: r.workflowId.slice(prefix.length), runId: r.runId }));
  const ids = [...new Set(rows.map((r) => r.jobId))];
  const found = await mapBounded(ids, (id) => jobs.get(tenant, id));
  return found
    .filter((job): job is JobResource => job !== null)
    .map((job) => ({ job, currentRunListed: rows.some((r) => r.jobId === job.id && r.runId === job.run.id) }));
}

export async function listJobs(
  jobs: JobClient,
  tenant: string,
  filter: JobListFilter,
): Promise<{ items: JobResource[]; nextCursor: string | null }> {
  const page = await visibilityPage(jobs.temporal, visibilityQuery(tenant, filter), filter.limit, filter.cursor);
  // A job is listed where its current run is; a row of an earlier run stands for nothing. queued and
  // running share one execution status, so the exact status comes from each job's state.
  const items = (await jobsOfPage(jobs, tenant, page.executions))
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

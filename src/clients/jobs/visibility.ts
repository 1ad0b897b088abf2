/**
 * Temporal visibility queries over a tenant's jobs. Queries are built only from allow-listed, validated
 * filter values — never from client text — and always carry the tenant.
 */
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { BATCH_JOB_TYPE, EXECUTION_STATUS_FOR, JOB_TYPES, type JobStatus, type JobType } from '../../jobs/job';
import { InvalidCursorError } from './errors';

export interface JobFilter {
  status?: JobStatus;
  type?: JobType;
  pool?: string;
  /** The `JobErrorType` a failed job was filed under (its `lastFailure.type`). */
  errorType?: string;
  createdAfter?: string;
  createdBefore?: string;
}

export type ExecutionInfo = temporal.api.workflow.v1.IWorkflowExecutionInfo;

/** A string literal for a visibility query. */
export const queryString = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Jobs only: a tenant's conversations and batches are workflows with its JobTenant too, but not jobs. */
export const JOBS_ONLY = `JobType IN (${JOB_TYPES.map(queryString).join(', ')})`;
/** What the quota of open jobs counts: jobs, and each batch as one (docs/batches.md, "Flow control, quotas and priority"). */
export const OPEN_JOBS_COUNTED = `JobType IN (${[...JOB_TYPES, BATCH_JOB_TYPE].map(queryString).join(', ')})`;

export function visibilityQuery(tenant: string, f: JobFilter): string {
  const clauses = [`JobTenant = ${queryString(tenant)}`, f.type ? `JobType = ${queryString(f.type)}` : JOBS_ONLY];
  if (f.pool) clauses.push(`JobPool = ${queryString(f.pool)}`);
  if (f.status) clauses.push(`ExecutionStatus IN (${EXECUTION_STATUS_FOR[f.status].map(queryString).join(', ')})`);
  if (f.errorType) clauses.push(`JobErrorType = ${queryString(f.errorType)}`);
  if (f.createdAfter) clauses.push(`StartTime >= ${queryString(f.createdAfter)}`);
  if (f.createdBefore) clauses.push(`StartTime < ${queryString(f.createdBefore)}`);
  return clauses.join(' AND ');
}

/** The query for every run of one job: its retries, and the runs a document job continued as new into. */
export const runsQuery = (tenant: string, workflowId: string) =>
  `JobTenant = ${queryString(tenant)} AND WorkflowId = ${queryString(workflowId)}`;

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

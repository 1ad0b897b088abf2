/**
 * Listing a tenant's jobs through Temporal visibility. The query is built only from allow-listed,
 * validated filter values — never from client text — and always carries the caller's tenant.
 */
import { EXECUTION_STATUS_FOR, type JobStatus, type JobType } from '../jobs/job';
import type { JobResource } from '../jobs/resource';
import type { JobClient } from './job-client';

export interface JobListFilter {
  status?: JobStatus;
  type?: JobType;
  pool?: string;
  createdAfter?: string;
  createdBefore?: string;
  limit: number;
  cursor?: string;
}

export class InvalidCursorError extends Error {}

const quote = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function visibilityQuery(tenant: string, f: Omit<JobListFilter, 'limit' | 'cursor'>): string {
  const clauses = [`JobTenant = ${quote(tenant)}`];
  if (f.type) clauses.push(`JobType = ${quote(f.type)}`);
  if (f.pool) clauses.push(`JobPool = ${quote(f.pool)}`);
  if (f.status) clauses.push(`ExecutionStatus IN (${EXECUTION_STATUS_FOR[f.status].map(quote).join(', ')})`);
  if (f.createdAfter) clauses.push(`StartTime >= ${quote(f.createdAfter)}`);
  if (f.createdBefore) clauses.push(`StartTime < ${quote(f.createdBefore)}`);
  return clauses.join(' AND ');
}

const DESCRIBE_CONCURRENCY = 16;

export async function listJobs(
  jobs: JobClient,
  tenant: string,
  filter: JobListFilter,
): Promise<{ items: JobResource[]; nextCursor: string | null }> {
  const client = jobs.temporal;
  let nextPageToken: Buffer | undefined;
  if (filter.cursor !== undefined) {
    nextPageToken = Buffer.from(filter.cursor, 'base64url');
    if (nextPageToken.length === 0 || nextPageToken.toString('base64url') !== filter.cursor) throw new InvalidCursorError();
  }
  const page = await client.workflowService
    .listWorkflowExecutions({
      namespace: client.options.namespace,
      pageSize: filter.limit,
      nextPageToken,
      query: visibilityQuery(tenant, filter),
    })
    .catch((err: unknown) => {
      // The cursor is the only client-controlled part of the request. A token the server cannot decode
      // is INVALID_ARGUMENT, or UNKNOWN from the dev server's SQLite store.
      const code = (err as { code?: number }).code;
      if (nextPageToken && (code === 3 || code === 2)) throw new InvalidCursorError();
      throw err;
    });

  const prefix = `${tenant}/`;
  const ids = (page.executions ?? [])
    .map((e) => e.execution?.workflowId ?? '')
    .filter((id) => id.startsWith(prefix))
    .map((id) => id.slice(prefix.length));

  const items: (JobResource | null)[] = new Array(ids.length).fill(null);
  for (let i = 0; i < ids.length; i += DESCRIBE_CONCURRENCY) {
    const batch = ids.slice(i, i + DESCRIBE_CONCURRENCY);
    const resources = await Promise.all(batch.map((id) => jobs.get(tenant, id)));
    resources.forEach((r, j) => (items[i + j] = r));
  }
  const token = page.nextPageToken;
  return {
    // queued and running share one execution status; the exact one comes from each job's state.
    items: items.filter((j): j is JobResource => j !== null && (!filter.status || j.status === filter.status)),
    nextCursor: token && token.length > 0 ? Buffer.from(token).toString('base64url') : null,
  };
}

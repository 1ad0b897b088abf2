/** Listing a tenant's batches, newest first, through Temporal visibility (see ../jobs/visibility.ts). */
import type { Client } from '@temporalio/client';
import { BATCH_JOB_WORKFLOW } from '../../batches/contract';
import { mapBounded, queryString, visibilityPage } from '../jobs/visibility';
import type { BatchReader } from './read';
import type { BatchResource } from './resource';

export interface BatchListFilter {
  limit: number;
  cursor?: string;
}

/** A batch that continued as new has a row per run; only its latest run's row is listed. */
const batchesQuery = (tenant: string) =>
  `WorkflowType = ${queryString(BATCH_JOB_WORKFLOW)} AND JobTenant = ${queryString(tenant)} AND ExecutionStatus != 'ContinuedAsNew'`;

export async function listBatches(
  temporal: Client,
  reader: Pick<BatchReader, 'read'>,
  tenant: string,
  filter: BatchListFilter,
): Promise<{ items: BatchResource[]; nextCursor: string | null }> {
  const page = await visibilityPage(temporal, batchesQuery(tenant), filter.limit, filter.cursor);
  const prefix = `${tenant}/`;
  const ids = page.executions.map((e) => e.execution?.workflowId ?? '').filter((id) => id.startsWith(prefix));
  const read = await mapBounded(ids, (id) => reader.read(tenant, id.slice(prefix.length)));
  return { items: read.flatMap((r) => (r ? [r.batch] : [])), nextCursor: page.nextCursor };
}

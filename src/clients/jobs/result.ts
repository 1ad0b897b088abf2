/**
 * What a job produced. An inference job's result is small and lives in its workflow's history; a
 * document job's result is a blob in the job's scope, read as a stream since it may be large.
 */
import type { Readable } from 'node:stream';
import { BlobNotFoundError, jobScope, type BlobStore } from '../../blobs/store';
import { DOCUMENT_FAILURES } from '../../documents/contract';
import { resultKey } from '../../documents/job-keys';
import type { JobResource } from '../../jobs/resource';
import type { JobsContext } from './context';
import { ResultNotReadyError } from './errors';

export type JobResult = { json: NonNullable<JobResource['result']> } | { stream: Readable };

/** The tenant's job's result; null if there is no such job, ResultNotReadyError if it has none (yet). */
export async function readResult(
  ctx: Pick<JobsContext, 'getJob'>,
  blobs: Pick<BlobStore, 'stream'>,
  tenant: string,
  jobId: string,
): Promise<JobResult | null> {
  const job = await ctx.getJob(tenant, jobId);
  if (!job) return null;
  if (job.type === 'inference') {
    if (!job.result) throw new ResultNotReadyError(job);
    return { json: job.result };
  }
  if (!hasDocumentResult(job)) throw new ResultNotReadyError(job);
  const stream = await blobs.stream(resultKey(jobScope(tenant, job.id))).catch((err: unknown) => {
    // The run ended since the job was read, and its data went with it.
    throw err instanceof BlobNotFoundError ? new ResultNotReadyError(job) : err;
  });
  return { stream };
}

/**
 * Whether the current run has written its result: once aggregated (the review reads it), once
 * published, and after a rejection (kept as the reviewer's reference). A failed or cancelled run's data
 * is gone, and a retried run's result is not yet its own until it has aggregated.
 */
function hasDocumentResult(job: JobResource): boolean {
  if (job.status === 'succeeded' || job.status === 'waiting') return true;
  if (job.status === 'failed') return job.lastFailure?.type === DOCUMENT_FAILURES.reviewRejected;
  return job.status === 'running' && (job.progress?.stage === 'review' || job.progress?.stage === 'publishing');
}

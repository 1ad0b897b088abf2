/** /v1/jobs/:id/result, /v1/jobs/:id/review and DELETE /v1/jobs/:id: what a job produced, its review, and deleting it. */
import { pipeline } from 'node:stream/promises';
import { WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { Router } from 'express';
import { z } from 'zod';
import { BlobNotFoundError, jobScope, type BlobStore } from '../../blobs/store';
import { resultKey } from '../../documents/job-keys';
import { DOCUMENT_FAILURES, REVIEW_DECISIONS } from '../../documents/contract';
import { isJobId } from '../../jobs/ids';
import type { JobResource } from '../../jobs/resource';
import { ReviewNotOpenError, type JobClient } from '../../clients/jobs/client';
import { deleteJob, JobNotDeletableError } from '../../clients/jobs/delete';
import { tenantOf } from '../auth';
import { queryOf } from '../body';
import { Problem } from '../problems';

export const reviewBodySchema = z.strictObject({
  decision: z.enum(REVIEW_DECISIONS),
  reviewer: z.string().trim().min(1).max(200).describe('Who decides: kept with the decision in the job'),
  comment: z.string().max(10_000).optional(),
});
const noQuery = z.strictObject({});

export function jobDataRouter(jobs: JobClient, blobs: BlobStore) {
  const router = Router();
  const notFound = (id: string) => new Problem('not-found', `No job ${id}`);

  router.get('/:id/result', async (req, res) => {
    queryOf(req, noQuery);
    const tenant = tenantOf(req);
    const job = isJobId(req.params.id) ? await jobs.get(tenant, req.params.id) : null;
    if (!job) throw notFound(req.params.id);
    if (job.type === 'inference') {
      if (!job.result) throw notReady(job);
      return void res.json(job.result);
    }
    if (!hasDocumentResult(job)) throw notReady(job);
    const result = await blobs.stream(resultKey(jobScope(tenant, job.id))).catch((err: unknown) => {
      if (err instanceof BlobNotFoundError) throw notReady(job);
      throw err;
    });
    res.type('application/json');
    await pipeline(result, res);
  });

  router.post('/:id/review', async (req, res) => {
    if (!req.is('application/json')) throw new Problem('unsupported-media-type');
    const parsed = reviewBodySchema.safeParse(req.body);
    if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
    try {
      const job = isJobId(req.params.id) ? await jobs.review(tenantOf(req), req.params.id, parsed.data) : null;
      if (!job) throw notFound(req.params.id);
      res.json(job);
    } catch (err) {
      if (err instanceof ReviewNotOpenError) throw new Problem('review-not-open', err.message, { job: err.job });
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
        throw new Problem('temporal-unavailable', 'The job did not take the decision in time (is a workflow worker running?); send it again');
      }
      throw err;
    }
  });

  router.delete('/:id', async (req, res) => {
    queryOf(req, noQuery);
    try {
      const job = isJobId(req.params.id) ? await deleteJob(jobs, blobs, tenantOf(req), req.params.id) : null;
      if (!job) throw notFound(req.params.id);
      res.status(204).end();
    } catch (err) {
      if (err instanceof JobNotDeletableError) throw new Problem('job-not-deletable', err.message, { job: err.job });
      throw err;
    }
  });

  return router;
}

const notReady = (job: JobResource) =>
  new Problem('result-not-ready', `job ${job.id} is ${job.status}${job.progress ? ` (${job.progress.stage})` : ''} and has no result yet`, { job });

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

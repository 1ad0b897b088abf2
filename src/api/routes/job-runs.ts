/**
 * /v1/jobs retries and runs: retry a job, retry the jobs a filter selects, list a job's runs. Mounted
 * before the jobs router so `POST /v1/jobs/retry` is not taken for a job id.
 */
import { Router } from 'express';
import { z } from 'zod';
import { isJobId } from '../../jobs/ids';
import type { JobClient } from '../../clients/jobs/client';
import { RETRYABLE_STATUSES } from '../../clients/jobs/retry';
import { NO_QUERY, optionalJsonBody, queryOf } from '../body';
import { tenantOf } from '../auth';
import { Problem } from '../problems';
import { buildListQuerySchema } from './jobs';

/** Most jobs one bulk retry examines; more take more calls, each with the previous answer's cursor. */
export const MAX_BULK_RETRY = 100;

/** The listing filter, for the jobs that can be retried, as a JSON body. */
export function buildBulkRetrySchema(pools: readonly string[]) {
  return buildListQuerySchema(pools).extend({
    status: z.enum(RETRYABLE_STATUSES).describe('Retry jobs whose current run ended with this status'),
    limit: z.number().int().min(1).max(MAX_BULK_RETRY).default(20).describe('Jobs examined: one page of the listing'),
  });
}

/** Retrying a job takes no options: the retry is the same job. */
export const retryBodySchema = z.strictObject({});

export function jobRunsRouter(jobs: JobClient, pools: readonly string[]) {
  const router = Router();
  const bulkSchema = buildBulkRetrySchema(pools);
  const notFound = (id: string) => new Problem('not-found', `No job ${id}`);

  router.post('/retry', async (req, res) => {
    queryOf(req, NO_QUERY);
    if (!req.is('application/json')) throw new Problem('unsupported-media-type');
    const parsed = bulkSchema.safeParse(req.body);
    if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
    res.json(await jobs.retryMatching(tenantOf(req), parsed.data));
  });

  router.post('/:id/retry', async (req, res) => {
    queryOf(req, NO_QUERY);
    optionalJsonBody(req, retryBodySchema);
    const job = isJobId(req.params.id) ? await jobs.retry(tenantOf(req), req.params.id) : null;
    if (!job) throw notFound(req.params.id);
    res.status(202).location(job.links.self).json(job);
  });

  router.get('/:id/runs', async (req, res) => {
    queryOf(req, NO_QUERY);
    const runs = isJobId(req.params.id) ? await jobs.runs(tenantOf(req), req.params.id) : null;
    if (!runs) throw notFound(req.params.id);
    res.json({ items: runs });
  });

  return router;
}

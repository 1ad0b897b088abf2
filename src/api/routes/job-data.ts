/** /v1/jobs/:id/result, /v1/jobs/:id/review and DELETE /v1/jobs/:id: what a job produced, its review, and deleting it. */
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { z } from 'zod';
import { REVIEW_DECISIONS } from '../../documents/contract';
import { isJobId } from '../../jobs/ids';
import type { JobClient } from '../../clients/jobs/client';
import { tenantOf } from '../auth';
import { NO_QUERY, queryOf } from '../body';
import { Problem } from '../problems';

/**
 * At least one character that trimming keeps, spelled out rather than `\S`: the OpenAPI document carries it, and
 * other regex dialects (Python's, which the contract tests generate requests with) count other characters as space.
 */
const NOT_BLANK = /[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;

export const reviewBodySchema = z.strictObject({
  decision: z.enum(REVIEW_DECISIONS),
  reviewer: z.string().max(200).regex(NOT_BLANK, 'must not be blank').trim().describe('Who decides: kept with the decision in the job'),
  comment: z.string().max(10_000).optional(),
});

export function jobDataRouter(jobs: JobClient) {
  const router = Router();
  const notFound = (id: string) => new Problem('not-found', `No job ${id}`);

  router.get('/:id/result', async (req, res) => {
    queryOf(req, NO_QUERY);
    const result = isJobId(req.params.id) ? await jobs.result(tenantOf(req), req.params.id) : null;
    if (!result) throw notFound(req.params.id);
    if ('json' in result) return void res.json(result.json);
    res.type('application/json');
    await pipeline(result.stream, res);
  });

  router.post('/:id/review', async (req, res) => {
    queryOf(req, NO_QUERY);
    if (!req.is('application/json')) throw new Problem('unsupported-media-type');
    const parsed = reviewBodySchema.safeParse(req.body);
    if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
    const job = isJobId(req.params.id) ? await jobs.review(tenantOf(req), req.params.id, parsed.data) : null;
    if (!job) throw notFound(req.params.id);
    res.json(job);
  });

  router.delete('/:id', async (req, res) => {
    queryOf(req, NO_QUERY);
    const job = isJobId(req.params.id) ? await jobs.delete(tenantOf(req), req.params.id) : null;
    if (!job) throw notFound(req.params.id);
    res.status(204).end();
  });

  return router;
}

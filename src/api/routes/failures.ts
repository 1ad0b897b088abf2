/** /v1/failures: the caller's failed jobs counted by failure type, for dashboards and metrics. */
import { Router } from 'express';
import { z } from 'zod';
import type { JobClient } from '../../clients/jobs/client';
import { tenantOf } from '../auth';
import { queryOf } from '../body';

export function buildFailuresQuerySchema(pools: readonly string[]) {
  return z.strictObject({
    pool: z.enum(pools as [string, ...string[]]).optional(),
    since: z.iso.datetime({ offset: true }).optional().describe('Count failures that ended at or after this time'),
  });
}

export function failuresRouter(jobs: JobClient, pools: readonly string[]) {
  const router = Router();
  const querySchema = buildFailuresQuerySchema(pools);

  router.get('/', async (req, res) => {
    const query = queryOf(req, querySchema);
    const counts = await jobs.countFailures({ tenant: tenantOf(req), ...query });
    res.json({ tenant: tenantOf(req), pool: query.pool ?? null, since: query.since ?? null, ...counts });
  });

  return router;
}

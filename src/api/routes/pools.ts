/** /v1/pools: what each pool is doing, and pausing and resuming it. Operators only (see auth.ts). */
import { Router } from 'express';
import { z } from 'zod';
import type { PoolClient } from '../../clients/pools';
import { NO_QUERY, optionalJsonBody, queryOf } from '../body';
import { Problem } from '../problems';

export const pauseBodySchema = z.strictObject({
  reason: z.string().min(1).max(200).optional().describe('Shown with the pool while it is paused'),
});
export const resumeBodySchema = z.strictObject({});

export function poolsRouter(pools: PoolClient) {
  const router = Router();
  const found = <T>(name: string, pool: T | null): T => {
    if (!pool) throw new Problem('not-found', `No pool ${name}`);
    return pool;
  };

  router.get('/', async (req, res) => {
    queryOf(req, NO_QUERY);
    res.json({ items: await pools.list() });
  });

  router.get('/:name', async (req, res) => {
    queryOf(req, NO_QUERY);
    res.json(found(req.params.name, await pools.get(req.params.name)));
  });

  router.post('/:name/pause', async (req, res) => {
    queryOf(req, NO_QUERY);
    const { reason } = optionalJsonBody(req, pauseBodySchema);
    res.json(found(req.params.name, await pools.pause(req.params.name, reason)));
  });

  router.post('/:name/resume', async (req, res) => {
    queryOf(req, NO_QUERY);
    optionalJsonBody(req, resumeBodySchema);
    res.json(found(req.params.name, await pools.resume(req.params.name)));
  });

  return router;
}

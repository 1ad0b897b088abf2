/** /v1/jobs: submit, read, list and cancel jobs. Each handler validates, then asks the JobClient. */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { isJobId, requestFingerprint } from '../../jobs/ids';
import type { DocumentSource } from '../../documents/contract';
import { JOB_STATUSES, JOB_TYPES } from '../../jobs/job';
import type { buildSubmitSchema, DocumentJobSpec, SubmitRequest } from '../../jobs/spec';
import type { JobClient } from '../../clients/jobs/client';
import type { JobToStart } from '../../clients/jobs/start';
import { tenantOf } from '../auth';
import { NO_QUERY, queryOf } from '../body';
import { Problem } from '../problems';

export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The request's Idempotency-Key, if it sends one; a malformed one is refused. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
    throw new Problem('invalid-request', 'Idempotency-Key must be 1–200 visible ASCII characters');
  }
  return key;
}
/** A failure type as the workflow files it: a name, not free text. */
export const ERROR_TYPE = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/, 'a failure type such as ProviderRejected');

export function buildListQuerySchema(pools: readonly string[]) {
  return z.strictObject({
    status: z.enum(JOB_STATUSES).optional(),
    type: z.enum(JOB_TYPES).optional(),
    pool: z.enum(pools as [string, ...string[]]).optional(),
    errorType: ERROR_TYPE.optional().describe('Failed jobs filed under this failure type (lastFailure.type), e.g. ProviderRejected'),
    createdAfter: z.iso.datetime({ offset: true }).optional(),
    createdBefore: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(4096).optional().meta({
      pattern: '^[A-Za-z0-9_-]+$',
      description: 'The nextCursor of the previous page of the same query, as it was given: any other value is 400 invalid-cursor',
    }),
  });
}

export function jobsRouter(
  jobs: JobClient,
  submitSchema: ReturnType<typeof buildSubmitSchema>,
  pools: readonly string[],
  /** A document job's source, checked; throws a Problem when the job cannot be started as asked. */
  documentSource: (tenant: string, spec: DocumentJobSpec) => Promise<DocumentSource>,
  /** Told of every job created (not of idempotent repeats). */
  onCreated: (tenant: string, spec: SubmitRequest) => void = () => {},
) {
  const router = Router();
  const listQuery = buildListQuerySchema(pools);

  router.post('/', async (req, res) => {
    queryOf(req, NO_QUERY);
    if (!req.is('application/json')) throw new Problem('unsupported-media-type');
    const key = idempotencyKeyOf(req);
    const parsed = submitSchema.safeParse(req.body);
    if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
    const spec = parsed.data;
    const toStart: JobToStart = spec.type === 'document' ? { spec, source: await documentSource(tenantOf(req), spec) } : { spec };
    const { job, created } = await jobs.submit(tenantOf(req), toStart, {
      idempotencyKey: key,
      fingerprint: requestFingerprint(req.body),
    });
    if (created) onCreated(tenantOf(req), parsed.data);
    res
      .status(created ? 202 : 200)
      .location(job.links.self)
      .json(job);
  });

  router.get('/', async (req, res) => {
    const page = await jobs.list(tenantOf(req), queryOf(req, listQuery));
    res.json({ items: page.items, nextCursor: page.nextCursor });
  });

  router.get('/:id', async (req, res) => {
    queryOf(req, NO_QUERY);
    const job = isJobId(req.params.id) ? await jobs.get(tenantOf(req), req.params.id) : null;
    if (!job) throw new Problem('not-found', `No job ${req.params.id}`);
    res.json(job);
  });

  router.post('/:id/cancel', async (req, res) => {
    queryOf(req, NO_QUERY);
    const job = isJobId(req.params.id) ? await jobs.cancel(tenantOf(req), req.params.id) : null;
    if (!job) throw new Problem('not-found', `No job ${req.params.id}`);
    res.status(202).json(job);
  });

  return router;
}

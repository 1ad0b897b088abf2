/**
 * /v1/batches: submit a batch file, read, list and cancel batches, and read their output and errors.
 * A file sent as the body (JSONL) is streamed into the blob store as it arrives and checked whole there,
 * so this router is mounted before the JSON body parser; it parses a JSON body (a file uploaded with
 * POST /v1/documents, named by its id) itself.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import type { BatchClient } from '../../clients/batches/client';
import { batchMetadataSchema, COMPLETION_WINDOW_NAMES } from '../../clients/batches/resource';
import type { BatchRequest } from '../../clients/batches/submit';
import type { Config } from '../../config';
import { BATCH_ID } from '../../jobs/ids';
import { DOCUMENT_ID, httpUrlSchema, JOB_PRIORITIES } from '../../jobs/spec';
import { tenantOf } from '../auth';
import { declaredBodyLimit, jsonDepthLimit, NO_QUERY, queryOf } from '../body';
import { checkWebhook } from '../document-jobs';
import type { DocumentLibrary } from '../documents';
import { Problem } from '../problems';
import { chunksOf, declaredSize, readingUpload } from '../uploads';
import { buildListQuerySchema, idempotencyKeyOf } from './jobs';

/** The Content-Types of a batch file sent as the body: JSON Lines, under either of its names. */
export const BATCH_FILE_TYPES = ['application/x-ndjson', 'application/jsonl'];
/** Query parameters `metadata[key]=value` (OpenAPI's deepObject style) become one `metadata` object. */
const METADATA_PARAM = /^metadata\[(.*)\]$/;

const priority = z.number().int().min(JOB_PRIORITIES.highest).max(JOB_PRIORITIES.lowest);

/** A batch's settings in the query: with a JSONL body, where else; with a JSON body, each may be in either, but once. */
export function buildBatchQuerySchema(pools: readonly string[]) {
  return z.strictObject({
    pool: z.enum(pools as [string, ...string[]]).optional(),
    completionWindow: z
      .enum(COMPLETION_WINDOW_NAMES)
      .optional()
      .describe('Items not run within it are reported expired; 24h when left out'),
    priority: z.coerce
      .number()
      .int()
      .min(JOB_PRIORITIES.highest)
      .max(JOB_PRIORITIES.lowest)
      .optional()
      .describe('1 (most urgent) … 5; 3 when left out'),
    metadata: batchMetadataSchema.optional().describe('metadata[key]=value, up to 16 pairs'),
    webhook: httpUrlSchema.optional().describe('Called, signed, when the batch ends'),
  });
}

/** A batch of a file uploaded with POST /v1/documents, as a JSON body. */
export function buildBatchRequestSchema(pools: readonly string[]) {
  const query = buildBatchQuerySchema(pools).shape;
  return z.strictObject({
    inputFileId: z.string().regex(DOCUMENT_ID, 'an id from POST /v1/documents: doc- and 32 hex digits'),
    pool: query.pool,
    completionWindow: query.completionWindow,
    priority: priority.optional().describe('1 (most urgent) … 5; 3 when left out'),
    metadata: query.metadata,
    webhook: z.strictObject({ url: httpUrlSchema }).optional().describe('Called, signed, when the batch ends'),
  });
}

type QuerySettings = z.infer<ReturnType<typeof buildBatchQuerySchema>>;
type BodySettings = Omit<z.infer<ReturnType<typeof buildBatchRequestSchema>>, 'inputFileId'>;

export interface BatchRouterDeps {
  batches: BatchClient;
  documents: DocumentLibrary;
  config: Pick<Config, 'batches' | 'outbound' | 'tenants' | 'webhookSecret'> & { api: Pick<Config['api'], 'bodyLimitBytes'> };
  pools: readonly string[];
}

export function batchesRouter({ batches, documents, config, pools }: BatchRouterDeps) {
  const router = Router();
  const querySchema = buildBatchQuerySchema(pools);
  const requestSchema = buildBatchRequestSchema(pools);
  const listQuery = buildListQuerySchema(pools).pick({ limit: true, cursor: true });
  const defaultPool = pools.includes('local') ? 'local' : pools[0]!;
  const maxBytes = config.batches.maxBytes;
  const notFound = (id: string) => new Problem('not-found', `No batch ${id}`);
  const batchId = (req: Request<{ id: string }>): string => {
    queryOf(req, NO_QUERY);
    // An id that cannot exist is a 404, as an unknown one is.
    if (!BATCH_ID.test(req.params.id)) throw notFound(req.params.id);
    return req.params.id;
  };

  /** The query's settings and the Idempotency-Key, checked before any of the body is read. */
  const headOf = (req: Request) => {
    const query = querySchema.safeParse(withMetadataObject(req.query));
    if (!query.success) throw Problem.fromZod(query.error, 'query');
    return { query: query.data, key: idempotencyKeyOf(req) };
  };

  /** The settings asked for, defaults filled in and the webhook (at `webhookPath`) checked. */
  const settingsOf = async (req: Request, settings: BodySettings, webhookPath: string): Promise<Omit<BatchRequest, 'file'>> => {
    if (settings.webhook) await checkWebhook(tenantOf(req), settings.webhook.url, webhookPath, config);
    return {
      pool: settings.pool ?? defaultPool,
      completionWindow: settings.completionWindow ?? '24h',
      priority: settings.priority ?? JOB_PRIORITIES.default,
      metadata: settings.metadata ?? {},
      webhook: settings.webhook,
    };
  };

  const answer = (res: express.Response, { batch, created }: Awaited<ReturnType<BatchClient['submit']>>) =>
    res
      .status(created ? 202 : 200)
      .location(batch.links.self)
      .json(batch);

  // The file as the body: streamed, never held whole; any other body goes on to the JSON parser below.
  router.post('/', async (req, res, next) => {
    const { query, key } = headOf(req);
    if (!req.is(BATCH_FILE_TYPES)) return next();
    // Refused before a byte is read: Node reads and drops an unread body once the answer is sent.
    const encoding = req.get('content-encoding');
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      throw new Problem('unsupported-media-type', 'Send the batch file as it is, without a Content-Encoding');
    }
    if (declaredSize(req) > maxBytes) {
      const detail = `The batch file is ${declaredSize(req)} bytes; the limit is ${maxBytes} (SWITCHYARD_BATCH_MAX_BYTES)`;
      throw new Problem('payload-too-large', detail, { maxBytes });
    }
    const settings = await settingsOf(req, settingsOfQuery(query), 'query.webhook');
    const submitted = await readingUpload(req, (body) =>
      batches.submit(tenantOf(req), { ...settings, file: { body: chunksOf(body) } }, key),
    );
    answer(res, submitted);
  });

  // The file uploaded before, named in a JSON body.
  router.post(
    '/',
    declaredBodyLimit(config.api.bodyLimitBytes),
    express.json({ limit: config.api.bodyLimitBytes, strict: false }),
    jsonDepthLimit,
    async (req, res) => {
      const { query, key } = headOf(req);
      if (!req.is('application/json')) {
        const detail = `Send the batch file as the body (${BATCH_FILE_TYPES.join(' or ')}), or name an uploaded one in a JSON body (application/json)`;
        throw new Problem('unsupported-media-type', detail);
      }
      const parsed = requestSchema.safeParse(req.body);
      if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
      const { inputFileId, ...settings } = parsed.data;
      const merged = mergeSettings(settingsOfQuery(query), settings);
      const source = await documents.source(tenantOf(req), inputFileId);
      if (!source || !('document' in source)) {
        const message = `no document ${inputFileId}: upload the file with POST /v1/documents first`;
        throw new Problem('unknown-document', `body.inputFileId: ${message}`, { errors: [{ path: 'body.inputFileId', message }] });
      }
      const request = await settingsOf(req, merged, query.webhook ? 'query.webhook' : 'body.webhook.url');
      answer(res, await batches.submit(tenantOf(req), { ...request, file: { blob: source.document.blob } }, key));
    },
  );

  router.get('/', async (req, res) => {
    const page = await batches.list(tenantOf(req), queryOf(req, listQuery));
    res.json({ items: page.items, nextCursor: page.nextCursor });
  });

  router.get('/:id', async (req, res) => {
    const id = batchId(req);
    const batch = await batches.get(tenantOf(req), id);
    if (!batch) throw notFound(id);
    res.json(batch);
  });

  router.post('/:id/cancel', async (req, res) => {
    const id = batchId(req);
    const batch = await batches.cancel(tenantOf(req), id);
    if (!batch) throw notFound(id);
    res.status(202).json(batch);
  });

  for (const which of ['output', 'errors'] as const) {
    router.get(`/:id/${which}`, async (req, res) => {
      const id = batchId(req);
      const lines = await batches.results(tenantOf(req), id, which);
      if (!lines) throw notFound(id);
      res.type('application/x-ndjson');
      await pipeline(Readable.from(lines), res);
    });
  }

  return router;
}

/** The query with its `metadata[key]` parameters gathered into one `metadata` object. */
function withMetadataObject(query: Record<string, unknown>): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query)) {
    const key = METADATA_PARAM.exec(name)?.[1];
    if (key === undefined) rest[name] = value;
    else metadata[key] = value;
  }
  return Object.keys(metadata).length ? { metadata, ...rest } : rest;
}

const settingsOfQuery = ({ webhook, ...rest }: QuerySettings): BodySettings => ({
  ...rest,
  ...(webhook ? { webhook: { url: webhook } } : {}),
});

/** The query's settings and the body's together; a setting given in both is refused, so neither silently wins. */
function mergeSettings(query: BodySettings, body: BodySettings): BodySettings {
  const twice = (Object.keys(body) as (keyof BodySettings)[]).filter((name) => query[name] !== undefined && body[name] !== undefined);
  if (twice.length) {
    const errors = twice.map((name) => ({ path: `query.${name}`, message: 'also in the body; give each setting once' }));
    throw new Problem('invalid-request', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
  }
  return { ...query, ...body };
}

/** The batch operations of the OpenAPI document (/v1/batches), from the same zod schemas that validate them. */
import { batchResourceSchema } from '../clients/batches/resource';
import { BATCH_ID } from '../jobs/ids';
import { common, idempotencyKeyParam, json, jsonSchema, problem, queryParamsOf, ref, security, type Json } from './openapi-parts';
import { BATCH_FILE_TYPES, buildBatchQuerySchema, buildBatchRequestSchema } from './routes/batches';
import { buildListQuerySchema, IDEMPOTENCY_KEY } from './routes/jobs';

const batchIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: BATCH_ID.source } };
const batch = (description: string) => json(description, ref('Batch'));
const noSuchBatch = problem('No such batch for this tenant');

/** The file as the body: JSON Lines, one request per line, in either format. */
const batchFile: Json = {
  type: 'string',
  minLength: 1,
  description:
    'One JSON request per line, all lines in one format: Switchyard\'s {"custom_id", "task", "input": {"text"} | {"messages"}, "model"?, "maxTokens"?, "temperature"?} ' +
    'or OpenAI\'s batch request line {"custom_id", "method": "POST", "url": "/v1/chat/completions" | "/v1/embeddings", "body"}',
};

/** The output or errors file: one JSON object per line, keyed by custom_id, in input order. */
const resultFile: Json = {
  description:
    'One JSON object per line, in input order, keyed by custom_id. Switchyard format: {"custom_id", "result": {"model", "output", "usage"}, "attempts"} ' +
    'or {"custom_id", "error": {"type", "message", "status"?}, "attempts"}; OpenAI format: the lines of OpenAI\'s batch output file',
  content: { 'application/x-ndjson': { schema: { type: 'string' } } },
};

/** The settings in the query: `metadata` as `metadata[key]=value`, OpenAPI's deepObject style. */
function submitQueryParams(pools: readonly string[]): Json[] {
  return queryParamsOf(buildBatchQuerySchema(pools)).map((p) => (p.name === 'metadata' ? { ...p, style: 'deepObject', explode: true } : p));
}

export function batchesOpenApi(pools: readonly string[]): { schemas: Json; paths: Json } {
  const schemas = {
    BatchRequest: jsonSchema(buildBatchRequestSchema(pools), 'input'),
    Batch: jsonSchema(batchResourceSchema, 'output'),
    BatchPage: {
      type: 'object',
      required: ['items', 'nextCursor'],
      properties: {
        items: { type: 'array', items: ref('Batch') },
        nextCursor: { type: ['string', 'null'], description: 'Pass as cursor for the next page; null on the last page' },
      },
    },
  };
  const results = (which: 'output' | 'errors', summary: string) => ({
    get: {
      operationId: which === 'output' ? 'getBatchOutput' : 'getBatchErrors',
      summary,
      security,
      parameters: [batchIdParam],
      responses: {
        '200': resultFile,
        '404': noSuchBatch,
        '409': problem('The batch has not ended (batch-not-ended)'),
        ...common,
      },
    },
  });
  const paths = {
    '/v1/batches': {
      post: {
        operationId: 'submitBatch',
        summary:
          'Submit a batch: its file as the body (JSON Lines, streamed), or a JSON body naming a file uploaded with POST /v1/documents; the whole file is checked before anything runs',
        security,
        parameters: [...submitQueryParams(pools), idempotencyKeyParam(IDEMPOTENCY_KEY)],
        requestBody: {
          required: true,
          content: {
            ...Object.fromEntries(BATCH_FILE_TYPES.map((t) => [t, { schema: batchFile }])),
            'application/json': { schema: ref('BatchRequest') },
          },
        },
        responses: {
          '202': batch('Accepted: the file was checked whole and the batch started'),
          '200': batch('A repeat of an earlier request with the same Idempotency-Key, file and settings'),
          '400': problem(
            'A file with any bad line, or over the line or byte limit (invalid-batch-file, listing the first errors with their line numbers); ' +
              'invalid settings; a setting both in the query and the body; an inputFileId this tenant has not uploaded (unknown-document); ' +
              'a refused webhook URL (url-refused) or a webhook while no signing secret is configured (webhook-not-configured). Nothing is started',
          ),
          '409': problem('The Idempotency-Key was used with a different file or settings'),
          '413': problem('The body announced (Content-Length) is over SWITCHYARD_BATCH_MAX_BYTES, or the JSON body over the body limit'),
          '415': problem(
            'The body is neither JSON Lines (application/x-ndjson, application/jsonl) nor JSON, or is sent with a Content-Encoding',
          ),
          '429': problem(
            'The tenant has as many open jobs as its quota allows, a batch counting as one (Retry-After is set); nothing was started',
          ),
          ...common,
        },
      },
      get: {
        operationId: 'listBatches',
        summary: "List the caller's batches, newest first",
        security,
        parameters: queryParamsOf(buildListQuerySchema(pools).pick({ limit: true, cursor: true })),
        responses: { '200': json('A page of batches', ref('BatchPage')), '400': problem('Invalid limit or cursor'), ...common },
      },
    },
    '/v1/batches/{id}': {
      get: {
        operationId: 'getBatch',
        summary: 'Read a batch: status, request counts (live while it runs), timestamps, links',
        security,
        parameters: [batchIdParam],
        responses: { '200': batch('The batch'), '404': noSuchBatch, ...common },
      },
    },
    '/v1/batches/{id}/cancel': {
      post: {
        operationId: 'cancelBatch',
        summary: 'Cancel a batch: running groups stop at their next heartbeat; items not run are reported cancelled in its errors',
        security,
        parameters: [batchIdParam],
        responses: {
          '202': batch('Cancellation requested: the batch is cancelling'),
          '404': noSuchBatch,
          '409': problem('The batch has already ended'),
          ...common,
        },
      },
    },
    '/v1/batches/{id}/output': results('output', 'The items that succeeded, as JSON Lines in input order, once the batch has ended'),
    '/v1/batches/{id}/errors': results(
      'errors',
      'The items that failed (expired and cancelled ones included), as JSON Lines in input order, once the batch has ended',
    ),
  };
  return { schemas, paths };
}

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
import { z } from 'zod';
import { bulkRetryResultSchema, jobResourceSchema, jobRunSchema } from '../jobs/resource';
import type { buildSubmitSchema } from '../jobs/spec';
import { COUNTED_FAILURE_TYPES } from '../clients/jobs/list';
import { poolResourceSchema } from '../clients/pools';
import { documentResourceSchema } from './documents';
import { conversationOpenApi } from './openapi-conversations';
import { PROBLEMS, problemType } from './problems';
import { DOCUMENT_CONTENT_TYPES, uploadQuerySchema } from './routes/documents';
import { buildFailuresQuerySchema } from './routes/failures';
import { reviewBodySchema } from './routes/job-data';
import { buildBulkRetrySchema, retryBodySchema } from './routes/job-runs';
import { buildListQuerySchema } from './routes/jobs';
import { pauseBodySchema, resumeBodySchema } from './routes/pools';

type Json = Record<string, unknown>;

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') =>
  z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Json;

const problemSchema: Json = {
  type: 'object',
  required: ['type', 'code', 'title', 'status'],
  properties: {
    type: { type: 'string', enum: Object.keys(PROBLEMS).map((c) => problemType(c as keyof typeof PROBLEMS)) },
    code: { type: 'string', enum: Object.keys(PROBLEMS) },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});
const json = (description: string, schema: Json) => ({ description, content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const job = (description: string) => json(description, ref('Job'));
const itemsOf = (name: string) => ({ type: 'object', properties: { items: { type: 'array', items: ref(name) } } });
/** A request body that may be left out: the action's options as a JSON object. */
const optionalBody = (schema: z.ZodType) => ({ required: false, content: { 'application/json': { schema: jsonSchema(schema, 'input') } } });
const queryParamsOf = (schema: z.ZodType) =>
  Object.entries((jsonSchema(schema, 'input') as { properties: Record<string, Json> }).properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: s,
  }));
/** Responses of actions with an optional body. */
const bodyProblems = {
  '400': problem('Malformed JSON, unknown fields or invalid values'),
  '413': problem('The body is over the size limit'),
  '415': problem('The body is not JSON'),
};
const jobIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^job-[0-9A-Z]{26}$' } };
const documentIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^doc-[0-9a-f]{32}$' } };
const noContent = (description: string) => ({ description });
const security = [{ apiKey: [] }];
/** Responses every /v1 operation can give. */
const common = {
  '401': problem('Missing or invalid API key'),
  '403': problem("The key's role may not do this: tenant keys own jobs, operator keys manage pools"),
  '503': problem('Temporal is unavailable (Retry-After is set)'),
};

export function buildOpenApi(submitSchema: ReturnType<typeof buildSubmitSchema>, pools: readonly string[]): Json {
  const poolNameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: [...pools] } };
  const poolAction = (operationId: string, summary: string, body: z.ZodType) => ({
    post: {
      operationId,
      summary,
      security,
      parameters: [poolNameParam],
      requestBody: optionalBody(body),
      responses: { '200': json('The pool', ref('Pool')), ...bodyProblems, '404': problem('No such pool'), ...common },
    },
  });
  const conversations = conversationOpenApi({ jsonSchema, problem, json, ref, queryParamsOf, security, common, bodyProblems });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version: '1',
      description: 'Durable AI job queuing on Temporal. Errors are RFC 9457 problem details with a stable type.',
    },
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A tenant key from SWITCHYARD_API_KEYS (/v1/jobs, /v1/documents, /v1/failures) or an operator key from SWITCHYARD_OPERATOR_KEYS (/v1/pools)',
        },
      },
      schemas: {
        JobRequest: jsonSchema(submitSchema, 'input'),
        Job: jsonSchema(jobResourceSchema, 'output'),
        JobRun: jsonSchema(jobRunSchema, 'output'),
        ReviewRequest: jsonSchema(reviewBodySchema, 'input'),
        Document: jsonSchema(documentResourceSchema, 'output'),
        BulkRetryRequest: jsonSchema(buildBulkRetrySchema(pools), 'input'),
        BulkRetryResult: jsonSchema(bulkRetryResultSchema, 'output'),
        Pool: jsonSchema(poolResourceSchema, 'output'),
        ...conversations.schemas,
        Problem: problemSchema,
      },
    },
    paths: {
      '/v1/jobs': {
        post: {
          operationId: 'submitJob',
          summary: 'Submit a job',
          security,
          parameters: [
            { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$' } },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/JobRequest' } } } },
          responses: {
            '202': job('Accepted: the job was started'),
            '200': job('A repeat of an earlier request with the same Idempotency-Key'),
            '400': problem('Malformed JSON, unknown fields or invalid values'),
            '409': problem('The Idempotency-Key was used with a different body'),
            '413': problem('The body is over the size limit'),
            '415': problem('The body is not JSON'),
            '429': problem('The tenant has as many open jobs as its quota allows (Retry-After is set); nothing was started'),
            ...common,
          },
        },
        get: {
          operationId: 'listJobs',
          summary: "List the caller's jobs, newest first",
          security,
          parameters: queryParamsOf(buildListQuerySchema(pools)),
          responses: {
            '200': {
              description: 'A page of jobs',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      items: { type: 'array', items: { $ref: '#/components/schemas/Job' } },
                      nextCursor: { type: ['string', 'null'] },
                    },
                  },
                },
              },
            },
            '400': problem('Invalid filter or cursor'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'getJob',
          summary: 'Read a job: status, attempts, last failure, progress, result',
          security,
          parameters: [jobIdParam],
          responses: { '200': job('The job'), '404': problem('No such job for this tenant'), ...common },
        },
        delete: {
          operationId: 'deleteJob',
          summary: 'Delete a job that has ended: its data (results) and its workflow history, every run',
          security,
          parameters: [jobIdParam],
          responses: {
            '204': noContent('Deleted: its data at once, its history in the background (it can be read for up to a minute or so)'),
            '400': problem('Unknown query parameters'),
            '404': problem('No such job for this tenant'),
            '409': problem('The job has not ended; cancel it first'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/result': {
        get: {
          operationId: 'getJobResult',
          summary: "A job's result: a document job's full result JSON (streamed), an inference job's result object",
          security,
          parameters: [jobIdParam],
          responses: {
            '200': json('The result', {}),
            '400': problem('Unknown query parameters'),
            '404': problem('No such job for this tenant'),
            '409': problem('The job has no result (yet)'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/review': {
        post: {
          operationId: 'reviewJob',
          summary: 'Approve or reject the result of a document job waiting for its review',
          security,
          parameters: [jobIdParam],
          requestBody: { required: true, content: { 'application/json': { schema: ref('ReviewRequest') } } },
          responses: {
            '200': job('The decision was taken; the job as it is now'),
            ...bodyProblems,
            '404': problem('No such job for this tenant'),
            '409': problem('No review is open: not a document job, not waiting for a review, or already decided'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: {
          operationId: 'cancelJob',
          summary: 'Cancel a job; the running inference sees it at its next heartbeat',
          security,
          parameters: [jobIdParam],
          responses: {
            '202': job('Cancellation requested'),
            '404': problem('No such job for this tenant'),
            '409': problem('The job has already ended'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/retry': {
        post: {
          operationId: 'retryJob',
          summary: 'Retry a failed, timed-out or cancelled job: a new run of the same job, same input, fresh deadline',
          security,
          parameters: [jobIdParam],
          requestBody: optionalBody(retryBodySchema),
          responses: {
            '202': job('The new run was started'),
            ...bodyProblems,
            '404': problem('No such job for this tenant'),
            '409': problem('The job is queued, running or succeeded'),
            '429': problem('The tenant has as many open jobs as its quota allows (Retry-After is set); nothing was started'),
            ...common,
          },
        },
      },
      '/v1/jobs/retry': {
        post: {
          operationId: 'retryJobs',
          summary: 'Retry the jobs a filter selects, one page at a time',
          security,
          requestBody: { required: true, content: { 'application/json': { schema: ref('BulkRetryRequest') } } },
          responses: {
            '200': json('Which jobs were retried and which were skipped, and why', ref('BulkRetryResult')),
            ...bodyProblems,
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/runs': {
        get: {
          operationId: 'listJobRuns',
          summary: "A job's runs, newest first, linked to the runs they retry and are retried by",
          security,
          parameters: [jobIdParam],
          responses: {
            '200': json('Up to the 100 most recent runs', itemsOf('JobRun')),
            '400': problem('Unknown query parameters'),
            '404': problem('No such job for this tenant'),
            ...common,
          },
        },
      },
      '/v1/documents': {
        post: {
          operationId: 'uploadDocument',
          summary: 'Upload a document (text, Markdown, HTML or PDF) as the raw request body; the same bytes are the same document',
          security,
          parameters: [
            ...queryParamsOf(uploadQuerySchema),
            { name: 'Content-Disposition', in: 'header', required: false, schema: { type: 'string' }, description: 'attachment; filename="…"' },
          ],
          requestBody: {
            required: true,
            content: Object.fromEntries(DOCUMENT_CONTENT_TYPES.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])),
          },
          responses: {
            '201': json('Stored', ref('Document')),
            '200': json('These bytes were uploaded before: that document', ref('Document')),
            '400': problem('An empty body, or a bad file name'),
            '413': problem('The document is over SWITCHYARD_MAX_DOCUMENT_BYTES; nothing was stored'),
            '415': problem('Not a type this API reads; `accepted` lists those it does'),
            ...common,
          },
        },
      },
      '/v1/documents/{id}': {
        get: {
          operationId: 'getDocument',
          summary: 'What is known of an uploaded document: type, size, hash, file name',
          security,
          parameters: [documentIdParam],
          responses: {
            '200': json('The document', ref('Document')),
            '400': problem('Unknown query parameters'),
            '404': problem('No such document for this tenant'),
            ...common,
          },
        },
        delete: {
          operationId: 'deleteDocument',
          summary: 'Delete an uploaded document',
          security,
          parameters: [documentIdParam],
          responses: {
            '204': noContent('Deleted'),
            '400': problem('Unknown query parameters'),
            '404': problem('No such document for this tenant'),
            ...common,
          },
        },
      },
      '/v1/failures': {
        get: {
          operationId: 'countFailures',
          summary: "The caller's failed runs counted by failure type",
          security,
          parameters: queryParamsOf(buildFailuresQuerySchema(pools)),
          responses: {
            '200': json('Counts by failure type; types not listed count as other', failureCountsSchema()),
            '400': problem('Invalid filter'),
            ...common,
          },
        },
      },
      '/v1/pools': {
        get: {
          operationId: 'listPools',
          summary: 'Every pool: settings, backlog, rates, workers, rate limit, tokens, breaker, pause (operators)',
          security,
          responses: { '200': json('The pools', itemsOf('Pool')), ...common },
        },
      },
      '/v1/pools/{name}': {
        get: {
          operationId: 'getPool',
          summary: 'One pool (operators)',
          security,
          parameters: [poolNameParam],
          responses: { '200': json('The pool', ref('Pool')), '404': problem('No such pool'), ...common },
        },
      },
      '/v1/pools/{name}/pause': poolAction('pausePool', 'Stop dispatching the pool’s queued work; jobs wait (operators)', pauseBodySchema),
      '/v1/pools/{name}/resume': poolAction('resumePool', 'Dispatch the pool’s queued work again (operators)', resumeBodySchema),
      ...conversations.paths,
      '/healthz': { get: { operationId: 'health', summary: 'Liveness', responses: { '200': { description: 'The process is up' } } } },
      '/readyz': {
        get: {
          operationId: 'ready',
          summary: 'Readiness: Temporal reachable and the namespace present',
          responses: { '200': { description: 'Ready' }, '503': { description: 'Temporal unreachable' } },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics (no API key: serve it on an internal network only)',
          responses: { '200': { description: 'Prometheus text exposition format' } },
        },
      },
      '/openapi.json': { get: { operationId: 'openapi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/docs': { get: { operationId: 'docs', summary: 'Browsable API docs', responses: { '200': { description: 'HTML' } } } },
    },
  };
}

function failureCountsSchema(): Json {
  const counts = Object.fromEntries([...COUNTED_FAILURE_TYPES, 'other'].map((t) => [t, { type: 'integer' }]));
  return {
    type: 'object',
    properties: {
      tenant: { type: 'string' },
      pool: { type: ['string', 'null'] },
      since: { type: ['string', 'null'] },
      total: { type: 'integer' },
      byType: { type: 'object', properties: counts, required: Object.keys(counts) },
    },
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A self-contained HTML page of the document: no scripts, no assets from elsewhere. */
export function renderDocsPage(doc: Json): string {
  const paths = doc.paths as Record<string, Record<string, { summary?: string; responses?: Json }>>;
  const ops = Object.entries(paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(
      ([method, op]) =>
        `<h3><code>${method.toUpperCase()} ${escapeHtml(path)}</code></h3><p>${escapeHtml(op.summary ?? '')}</p>` +
        `<p>Responses: ${Object.keys(op.responses ?? {}).join(', ')}</p>`,
    ),
  );
  const schemas = (doc.components as { schemas: Json }).schemas;
  return `<!doctype html><meta charset="utf-8"><title>Switchyard API</title>
<style>body{font:15px system-ui;max-width:60rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}</style>
<h1>Switchyard API v1</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>${ops.join('\n')}
<h2>Schemas</h2>${Object.entries(schemas)
    .map(([name, s]) => `<h3>${name}</h3><pre>${escapeHtml(JSON.stringify(s, null, 2))}</pre>`)
    .join('\n')}`;
}

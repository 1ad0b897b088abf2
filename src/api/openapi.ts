/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
import { z } from 'zod';
import { jobResourceSchema } from '../jobs/resource';
import type { buildSubmitSchema } from '../jobs/spec';
import { PROBLEMS, problemType } from './problems';
import { buildListQuerySchema } from './routes/jobs';

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
const job = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } },
});
const jobIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^job-[0-9A-Z]{26}$' } };
const security = [{ apiKey: [] }];
/** Responses every /v1 operation can give. */
const common = { '401': problem('Missing or invalid API key'), '503': problem('Temporal is unavailable (Retry-After is set)') };

export function buildOpenApi(submitSchema: ReturnType<typeof buildSubmitSchema>, pools: readonly string[]): Json {
  const listQuery = jsonSchema(buildListQuerySchema(pools), 'input') as { properties: Record<string, Json> };
  const queryParams = Object.entries(listQuery.properties).map(([name, schema]) => ({ name, in: 'query', required: false, schema }));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version: '1',
      description: 'Durable AI job queuing on Temporal. Errors are RFC 9457 problem details with a stable type.',
    },
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from SWITCHYARD_API_KEYS' } },
      schemas: { JobRequest: jsonSchema(submitSchema, 'input'), Job: jsonSchema(jobResourceSchema, 'output'), Problem: problemSchema },
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
            ...common,
          },
        },
        get: {
          operationId: 'listJobs',
          summary: "List the caller's jobs, newest first",
          security,
          parameters: queryParams,
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
          summary: 'Read a job: status, attempts, last failure, result',
          security,
          parameters: [jobIdParam],
          responses: { '200': job('The job'), '404': problem('No such job for this tenant'), ...common },
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
      '/healthz': { get: { operationId: 'health', summary: 'Liveness', responses: { '200': { description: 'The process is up' } } } },
      '/readyz': {
        get: {
          operationId: 'ready',
          summary: 'Readiness: Temporal reachable and the namespace present',
          responses: { '200': { description: 'Ready' }, '503': { description: 'Temporal unreachable' } },
        },
      },
      '/openapi.json': { get: { operationId: 'openapi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/docs': { get: { operationId: 'docs', summary: 'Browsable API docs', responses: { '200': { description: 'HTML' } } } },
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

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. Every request
 * and response body is a named schema under components/schemas, so /docs can show each one.
 */
import { poolResourceSchema } from '../clients/pools';
import type { buildSubmitSchema } from '../jobs/spec';
import { documentResourceSchema } from './documents';
import { batchesOpenApi } from './openapi-batches';
import { codecOpenApi } from './openapi-codec';
import { conversationOpenApi } from './openapi-conversations';
import { jobsOpenApi } from './openapi-jobs';
import {
  bodyProblems,
  common,
  json,
  jsonSchema,
  noContent,
  optionalBody,
  problem,
  problemSchema,
  queryParamsOf,
  rateLimitHeaders,
  ref,
  security,
  tenantOperations,
  type Json,
} from './openapi-parts';
import { DOCUMENT_CONTENT_TYPES, uploadQuerySchema } from './routes/documents';
import { pauseBodySchema, resumeBodySchema } from './routes/pools';

const documentIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^doc-[0-9a-f]{32}$' } };

/** What an upload's bytes must be for each declared type: a PDF starts like one, anything else is UTF-8 text without NUL. */
function uploadBodies(): Json {
  const text = { type: 'string', minLength: 1, pattern: '^[^\\u0000]*$', description: 'UTF-8 text without NUL characters' };
  const pdf = { type: 'string', pattern: '%PDF-', description: 'A PDF: %PDF- within its first 1024 bytes' };
  const told = { ...text, description: 'A PDF, or UTF-8 text without NUL characters: the type is told from the bytes and the file name' };
  const schemas: Record<string, Json> = { 'application/pdf': pdf, 'application/octet-stream': told };
  return Object.fromEntries(DOCUMENT_CONTENT_TYPES.map((t) => [t, { schema: schemas[t] ?? text }]));
}

function documentsPaths(): Json {
  const noSuchDocument = problem('No such document for this tenant');
  return {
    '/v1/documents': {
      post: {
        operationId: 'uploadDocument',
        summary: 'Upload a document (text, Markdown, HTML or PDF) as the raw request body; the same bytes are the same document',
        security,
        parameters: [
          ...queryParamsOf(uploadQuerySchema),
          {
            name: 'Content-Disposition',
            in: 'header',
            required: false,
            description:
              'attachment; filename="…" (or filename*=UTF-8\'\'…): the file name, if not in ?filename=; without path separators or control characters',
            schema: { type: 'string' },
          },
        ],
        requestBody: { required: true, content: uploadBodies() },
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
          '404': noSuchDocument,
          ...common,
        },
      },
      delete: {
        operationId: 'deleteDocument',
        summary: 'Delete an uploaded document',
        security,
        parameters: [documentIdParam],
        responses: { '204': noContent('Deleted'), '400': problem('Unknown query parameters'), '404': noSuchDocument, ...common },
      },
    },
  };
}

function poolsPaths(pools: readonly string[]): Json {
  const poolNameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: [...pools] } };
  const pool = json('The pool', ref('Pool'));
  const noSuchPool = problem('No such pool');
  const action = (operationId: string, summary: string, body: string) => ({
    post: {
      operationId,
      summary,
      security,
      parameters: [poolNameParam],
      requestBody: optionalBody(body),
      responses: {
        '200': pool,
        ...bodyProblems,
        '404': noSuchPool,
        ...common,
      },
    },
  });
  return {
    '/v1/pools': {
      get: {
        operationId: 'listPools',
        summary: 'Every pool: settings, backlog, rates, workers, rate limit, tokens, breaker, pause (operators)',
        security,
        responses: { '200': json('The pools', ref('PoolList')), '400': problem('Query parameters'), ...common },
      },
    },
    '/v1/pools/{name}': {
      get: {
        operationId: 'getPool',
        summary: 'One pool (operators)',
        security,
        parameters: [poolNameParam],
        responses: { '200': pool, '400': problem('Query parameters'), '404': noSuchPool, ...common },
      },
    },
    '/v1/pools/{name}/pause': action('pausePool', 'Stop dispatching the pool’s queued work; jobs wait (operators)', 'PauseRequest'),
    '/v1/pools/{name}/resume': action('resumePool', 'Dispatch the pool’s queued work again (operators)', 'ResumeRequest'),
  };
}

const statusSchema = (values: string[]) => ({ type: 'object', required: ['status'], properties: { status: { enum: values } } });

/** The unauthenticated operations: health, readiness and the docs (metrics are served on an address of their own). */
const operationsPaths: Json = {
  '/healthz': {
    get: { operationId: 'health', summary: 'Liveness', responses: { '200': json('The process is up', statusSchema(['ok'])) } },
  },
  '/readyz': {
    get: {
      operationId: 'ready',
      summary: 'Readiness: Temporal reachable and the namespace present',
      responses: {
        '200': json('Ready', statusSchema(['ready'])),
        '503': json('Temporal unreachable (Retry-After is set)', statusSchema(['unready'])),
      },
    },
  },
  '/openapi.json': {
    get: { operationId: 'openapi', summary: 'This document', responses: { '200': json('OpenAPI 3.1', { type: 'object' }) } },
  },
  '/docs': {
    get: {
      operationId: 'docs',
      summary: 'Browsable API docs (Swagger UI)',
      responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
  },
};

export function buildOpenApi(submitSchema: ReturnType<typeof buildSubmitSchema>, pools: readonly string[], namespace: string): Json {
  const codec = codecOpenApi(namespace);
  const jobs = jobsOpenApi(submitSchema, pools);
  const conversations = conversationOpenApi(pools);
  const batches = batchesOpenApi(pools);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version: '1',
      description:
        'Durable AI job queuing on Temporal. Errors are RFC 9457 problem details with a stable type. ' +
        'A method a path does not list is answered 405 with Allow naming those it does; OPTIONS answers with that Allow. ' +
        'Unknown query parameters are refused (400 unknown-field) like unknown body fields. ' +
        'A body announced over the limit is refused (413) before it is read; a request not received within the request timeout is 408; ' +
        'JSON nested deeper than 64 levels is 400. ' +
        "Tenants' requests are rate limited: every answer to a tenant carries RateLimit and RateLimit-Policy " +
        '(draft-ietf-httpapi-ratelimit-headers-10), and a request over the rate is 429 with Retry-After.',
    },
    // Relative: calls go to the origin that served this document.
    servers: [{ url: '/' }],
    components: {
      headers: rateLimitHeaders,
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A tenant key from SWITCHYARD_API_KEYS (/v1/jobs, /v1/batches, /v1/documents, /v1/failures, /v1/conversations) or an operator key from SWITCHYARD_OPERATOR_KEYS (/v1/pools, /codec)',
        },
      },
      schemas: {
        ...jobs.schemas,
        Document: jsonSchema(documentResourceSchema, 'output'),
        Pool: jsonSchema(poolResourceSchema, 'output'),
        PoolList: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref('Pool') } } },
        PauseRequest: jsonSchema(pauseBodySchema, 'input'),
        ResumeRequest: jsonSchema(resumeBodySchema, 'input'),
        ...conversations.schemas,
        ...batches.schemas,
        ...codec.schemas,
        Problem: problemSchema,
      },
    },
    paths: {
      ...tenantOperations({ ...jobs.paths, ...batches.paths, ...documentsPaths(), ...conversations.paths }),
      ...poolsPaths(pools),
      ...codec.paths,
      ...operationsPaths,
    },
  };
}

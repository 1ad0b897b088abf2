/** The building blocks every part of the OpenAPI document is made of, so that all of it reads the same. */
import { z } from 'zod';
import { PROBLEMS, problemType, type ProblemCode } from './problems';

export type Json = Record<string, unknown>;

export const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Json =>
  z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' });

export const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

export const problemSchema: Json = {
  type: 'object',
  required: ['type', 'code', 'title', 'status'],
  properties: {
    type: { type: 'string', enum: Object.keys(PROBLEMS).map((c) => problemType(c as ProblemCode)) },
    code: { type: 'string', enum: Object.keys(PROBLEMS) },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

export const problem = (description: string): Json => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});
export const json = (description: string, schema: Json): Json => ({ description, content: { 'application/json': { schema } } });
export const noContent = (description: string): Json => ({ description });

/** A JSON request body, always sent. */
export const jsonBody = (name: string): Json => ({ required: true, content: { 'application/json': { schema: ref(name) } } });
/** A request body that may be left out: the action's options as a JSON object. */
export const optionalBody = (name: string): Json => ({ required: false, content: { 'application/json': { schema: ref(name) } } });

export const queryParamsOf = (schema: z.ZodType): Json[] =>
  Object.entries((jsonSchema(schema, 'input') as { properties: Record<string, Json> }).properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: s,
  }));

export const idempotencyKeyParam = (pattern: RegExp): Json => ({
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'A repeat with the same key and body answers what the first request created, and starts nothing',
  schema: { type: 'string', pattern: pattern.source },
});

export const security = [{ apiKey: [] }];

/** Responses every /v1 operation can give. */
export const common = {
  '401': problem('Missing or invalid API key'),
  '403': problem("The key's role may not do this: tenant keys own jobs, operator keys manage pools"),
  '503': problem('Temporal is unavailable (Retry-After is set)'),
};

/** Responses of an operation with a JSON body. */
export const bodyProblems = {
  '400': problem('Malformed JSON, unknown fields or invalid values'),
  '413': problem('The body is over the size limit'),
  '415': problem('The body is not JSON'),
};

/** The RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10) a rate-limited tenant's answers carry. */
export const rateLimitHeaders: Json = {
  RateLimit: {
    description: 'Where the tenant stands under its policy on this API replica: remaining requests r, seconds t until all are back',
    schema: { type: 'string', examples: ['"tenant";r=42;t=1'] },
  },
  'RateLimit-Policy': {
    description: "The tenant's quota q of requests per window w seconds on this API replica",
    schema: { type: 'string', examples: ['"tenant";q=100;w=1'] },
  },
  'Retry-After': {
    description: 'Seconds to wait before the next request (with 429 and 503)',
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
};

const headerRefs = Object.fromEntries(Object.keys(rateLimitHeaders).map((name) => [name, { $ref: `#/components/headers/${name}` }]));
const RATE_LIMITED = 'over the tenant’s request rate (rate-limited; Retry-After and RateLimit say when to try again)';

/**
 * What every tenant operation may answer besides its own responses: the tenant's RateLimit fields on any
 * answer, 429 when it is over its request rate, and 400 for an unknown query parameter. An operation's
 * own 429 or 400 keeps its words and gains these.
 */
export function tenantOperations(paths: Json): Json {
  const operation = (op: { responses: Record<string, Json> }) => {
    const responses: Record<string, Json> = { ...op.responses };
    const own429 = responses['429'] as { description: string } | undefined;
    responses['429'] = own429
      ? { ...own429, description: `${own429.description}; or ${RATE_LIMITED}` }
      : problem(`The request is ${RATE_LIMITED}`);
    responses['400'] ??= problem('Unknown query parameters');
    for (const [status, response] of Object.entries(responses)) responses[status] = { ...response, headers: headerRefs };
    return { ...op, responses };
  };
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => [
      path,
      Object.fromEntries(Object.entries(item as Record<string, { responses: Record<string, Json> }>).map(([m, op]) => [m, operation(op)])),
    ]),
  );
}

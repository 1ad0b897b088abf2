/**
 * Errors as RFC 9457 problem details. Every error a client can cause has a stable `type` (and the
 * same `code`), so clients branch on it; nothing a client sends ends in a 500.
 */
import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';
import type { z } from 'zod';

interface ProblemSpec {
  status: number;
  title: string;
  /**
   * Seconds a client should wait before trying again (Retry-After), for a condition that passes. A
   * tenant at its quota waits for some of its jobs to finish, which no one can predict; a few seconds
   * keeps its retries from becoming load of their own.
   */
  retryAfterS?: number;
}

/** Every problem the API answers with (src/api/error-problems.ts says which error is which problem). */
export const PROBLEMS = {
  'malformed-json': { status: 400, title: 'The request body is not valid JSON' },
  'invalid-request': { status: 400, title: 'The request is not valid' },
  'unknown-field': { status: 400, title: 'The request has fields this API does not know' },
  'invalid-cursor': { status: 400, title: 'The cursor is not one this API issued for this query' },
  'invalid-batch-file': { status: 400, title: 'The batch file is not valid' },
  'empty-document': { status: 400, title: 'The document is empty' },
  'unknown-document': { status: 400, title: 'The job names a document this tenant has not uploaded' },
  'url-refused': { status: 400, title: 'The URL may not be fetched or called' },
  'webhook-not-configured': { status: 400, title: 'Webhooks need a signing secret, and none is configured' },
  'undecodable-payload': { status: 400, title: 'A payload could not be decoded: its key is not held here, or it was altered' },
  unauthorized: { status: 401, title: 'A valid API key is required' },
  forbidden: { status: 403, title: 'This API key may not do that' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'The resource does not support this method; Allow lists those it does' },
  'request-timeout': { status: 408, title: 'The request was not received in time' },
  'idempotency-conflict': { status: 409, title: 'The Idempotency-Key was used with a different request' },
  'job-not-cancellable': { status: 409, title: 'The job has already ended' },
  'job-not-retryable': { status: 409, title: 'Only a failed, timed-out or cancelled job can be retried' },
  'job-not-deletable': { status: 409, title: 'Only a job that has ended can be deleted' },
  'review-not-open': { status: 409, title: 'The job is not waiting for a review' },
  'result-not-ready': { status: 409, title: 'The job has no result yet' },
  'batch-not-cancellable': { status: 409, title: 'The batch has already ended' },
  'batch-not-ended': { status: 409, title: 'The batch has not ended: its output and errors are read once it has' },
  'conversation-exists': { status: 409, title: 'The conversation exists with a different pipeline or maxPending' },
  'conversation-ended': { status: 409, title: 'The conversation was deleted' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'unsupported-document-type': { status: 415, title: 'The document is not of a type this API reads' },
  'quota-exceeded': { status: 429, title: 'The tenant has as many open jobs as its quota allows', retryAfterS: 5 },
  'too-many-pending': { status: 429, title: 'The conversation has as many messages waiting as it allows', retryAfterS: 2 },
  // Retry-After comes from the tenant's bucket (rate-limit.ts).
  'rate-limited': { status: 429, title: 'The tenant is sending requests faster than its rate limit allows' },
  'headers-too-large': { status: 431, title: 'The request headers are too large' },
  'temporal-unavailable': { status: 503, title: 'Temporal is unavailable; retry later', retryAfterS: 5 },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, ProblemSpec>;

export type ProblemCode = keyof typeof PROBLEMS;

export class Problem extends Error {
  override readonly name = 'Problem';
  constructor(
    readonly code: ProblemCode,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail ?? PROBLEMS[code].title);
  }

  static fromZod(error: z.ZodError, where: 'body' | 'query'): Problem {
    const unknown = error.issues.find((i) => i.code === 'unrecognized_keys');
    const errors = error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
    return new Problem(unknown ? 'unknown-field' : 'invalid-request', errors.map((e) => `${e.path}: ${e.message}`).join('; '), {
      errors,
    });
  }
}

export function problemType(code: ProblemCode): string {
  return `/problems/${code}`;
}

function problemBody(problem: Problem): Record<string, unknown> {
  const { status, title } = PROBLEMS[problem.code];
  return { type: problemType(problem.code), code: problem.code, title, status, detail: problem.message, ...problem.extra };
}

export function sendProblem(res: Response, problem: Problem): void {
  const { status, retryAfterS }: ProblemSpec = PROBLEMS[problem.code];
  if (problem.code === 'unauthorized') res.set('WWW-Authenticate', 'Bearer');
  if (retryAfterS !== undefined) res.set('Retry-After', String(retryAfterS));
  res.status(status).type('application/problem+json').json(problemBody(problem));
}

/** A problem as a whole HTTP/1.1 response, for requests Node's HTTP parser rejects before Express sees them. */
export function rawProblemResponse(problem: Problem): string {
  const { status } = PROBLEMS[problem.code];
  const body = JSON.stringify(problemBody(problem));
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`, 'Content-Type: application/problem+json; charset=utf-8'];
  return [...head, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join('\r\n');
}

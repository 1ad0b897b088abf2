/**
 * Errors as RFC 9457 problem details. Every error a client can cause has a stable `type` (and the
 * same `code`), so clients branch on it; nothing a client sends ends in a 500.
 */
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Response } from 'express';
import type { z } from 'zod';
import type { QuotaExceededError } from '../clients/jobs/open-jobs';

export const PROBLEMS = {
  'malformed-json': { status: 400, title: 'The request body is not valid JSON' },
  'invalid-request': { status: 400, title: 'The request is not valid' },
  'unknown-field': { status: 400, title: 'The request has fields this API does not know' },
  'invalid-cursor': { status: 400, title: 'The cursor is not one this API issued for this query' },
  'empty-document': { status: 400, title: 'The document is empty' },
  'unknown-document': { status: 400, title: 'The job names a document this tenant has not uploaded' },
  'url-refused': { status: 400, title: 'The URL may not be fetched or called' },
  'webhook-not-configured': { status: 400, title: 'Webhooks need a signing secret, and none is configured' },
  unauthorized: { status: 401, title: 'A valid API key is required' },
  forbidden: { status: 403, title: 'This API key may not do that' },
  'not-found': { status: 404, title: 'Not found' },
  'request-timeout': { status: 408, title: 'The request was not received in time' },
  'idempotency-conflict': { status: 409, title: 'The Idempotency-Key was used with a different request' },
  'job-not-cancellable': { status: 409, title: 'The job has already ended' },
  'job-not-retryable': { status: 409, title: 'Only a failed, timed-out or cancelled job can be retried' },
  'job-not-deletable': { status: 409, title: 'Only a job that has ended can be deleted' },
  'review-not-open': { status: 409, title: 'The job is not waiting for a review' },
  'result-not-ready': { status: 409, title: 'The job has no result yet' },
  'conversation-exists': { status: 409, title: 'The conversation exists with a different pipeline or maxPending' },
  'conversation-ended': { status: 409, title: 'The conversation was deleted' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'unsupported-document-type': { status: 415, title: 'The document is not of a type this API reads' },
  'quota-exceeded': { status: 429, title: 'The tenant has as many open jobs as its quota allows' },
  'too-many-pending': { status: 429, title: 'The conversation has as many messages waiting as it allows' },
  'headers-too-large': { status: 431, title: 'The request headers are too large' },
  'temporal-unavailable': { status: 503, title: 'Temporal is unavailable; retry later' },
  internal: { status: 500, title: 'Internal error' },
} as const;

export type ProblemCode = keyof typeof PROBLEMS;

export class Problem extends Error {
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

/**
 * Seconds a client should wait before trying again. A tenant at its quota waits for some of its jobs to
 * finish, which no one can predict; a few seconds keeps its retries from becoming load of their own.
 */
const RETRY_AFTER_S: Partial<Record<ProblemCode, number>> = { 'temporal-unavailable': 5, 'quota-exceeded': 5, 'too-many-pending': 2 };

export function sendProblem(res: Response, problem: Problem): void {
  if (problem.code === 'unauthorized') res.set('WWW-Authenticate', 'Bearer');
  const retryAfter = RETRY_AFTER_S[problem.code];
  if (retryAfter !== undefined) res.set('Retry-After', String(retryAfter));
  res.status(PROBLEMS[problem.code].status).type('application/problem+json').json(problemBody(problem));
}

/** A problem as a whole HTTP/1.1 response, for requests Node's HTTP parser rejects before Express sees them. */
export function rawProblemResponse(problem: Problem): string {
  const { status } = PROBLEMS[problem.code];
  const body = JSON.stringify(problemBody(problem));
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`, 'Content-Type: application/problem+json; charset=utf-8'];
  return [...head, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join('\r\n');
}

/** Errors from Temporal's client that mean "the service is not reachable right now". */
export function isTemporalUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 14 || code === 4 || code === 'ECONNREFUSED') return true; // UNAVAILABLE, DEADLINE_EXCEEDED
    if (e instanceof Error && /failed to connect|connection refused|no connection established/i.test(e.message)) return true;
  }
  return false;
}

const BODY_PARSER_PROBLEMS: Record<string, ProblemCode> = {
  'entity.parse.failed': 'malformed-json',
  'entity.too.large': 'payload-too-large',
  'encoding.unsupported': 'unsupported-media-type',
  'charset.unsupported': 'unsupported-media-type',
  'request.aborted': 'invalid-request',
  'request.size.invalid': 'invalid-request',
};

export function errorHandler(log: (fields: Record<string, unknown>) => void): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof Problem) return sendProblem(res, err);
    const bodyProblem = BODY_PARSER_PROBLEMS[(err as { type?: string }).type ?? ''];
    if (bodyProblem) return sendProblem(res, new Problem(bodyProblem, (err as Error).message));
    // Other client errors from Express's own layers carry status 400: a malformed %-escape in a path
    // parameter, a gzip body that does not inflate.
    if ((err as { status?: unknown }).status === 400) {
      return sendProblem(res, new Problem('invalid-request', (err as Error).message));
    }
    if (isTemporalUnavailable(err)) return sendProblem(res, new Problem('temporal-unavailable'));
    log({ level: 'error', msg: 'unhandled error', error: String((err as Error)?.stack ?? err) });
    sendProblem(res, new Problem('internal', 'An unexpected error occurred; it has been logged'));
  };
}

/** A tenant at its quota of open jobs: the counts go in the body, the wait in Retry-After. */
export function quotaExceeded(err: QuotaExceededError): Problem {
  return new Problem('quota-exceeded', err.message, { openJobs: err.openJobs, maxOpenJobs: err.maxOpenJobs });
}

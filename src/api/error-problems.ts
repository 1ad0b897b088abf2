/**
 * Which error is which problem: the one table the API's error middleware answers from. Routes throw
 * (or let through) errors as they come; a domain error is found by its code, a body parser's by its
 * type. Express's own client errors carry status 400, and an unreachable Temporal is a 503 to retry.
 * Anything else no client caused: it is logged and answered with a 500.
 */
import type { ErrorRequestHandler } from 'express';
import type * as batches from '../batches/errors';
import type * as batchClient from '../clients/batches/errors';
import type { BlobTooLargeError } from '../blobs/store';
import type * as conversations from '../clients/conversations/errors';
import type * as jobs from '../clients/jobs/errors';
import { DOCUMENT_TYPES } from '../documents/contract';
import type { UnsupportedDocumentError } from '../documents/detect';
import { SwitchyardError } from '../errors';
import { Problem, sendProblem, type ProblemCode } from './problems';
import { DOCUMENT_CONTENT_TYPES } from './routes/documents';
import type { UploadInterruptedError } from './uploads';

/** The domain errors a request can run into: every error of the job, conversation and batch clients, the batch file's, and the upload's. */
type RequestError =
  | (typeof jobs)[keyof typeof jobs]['prototype']
  | (typeof conversations)[keyof typeof conversations]['prototype']
  | (typeof batches)[keyof typeof batches]['prototype']
  | (typeof batchClient)[keyof typeof batchClient]['prototype']
  | UnsupportedDocumentError
  | BlobTooLargeError
  | UploadInterruptedError;

type ProblemOf = { [C in RequestError['code']]: (err: Extract<RequestError, { code: C }>) => Problem };

/** What a refused upload is told it may send instead. */
const ACCEPTED_DOCUMENTS = { accepted: { types: [...DOCUMENT_TYPES], contentTypes: DOCUMENT_CONTENT_TYPES } };

const PROBLEM_OF: ProblemOf = {
  'idempotency-conflict': (e) => new Problem('idempotency-conflict', e.message, { jobId: e.jobId }),
  'message-conflict': (e) => new Problem('idempotency-conflict', e.message, { messageId: e.messageId }),
  'batch-conflict': (e) => new Problem('idempotency-conflict', e.message, { batchId: e.batchId }),
  // The counts go in the body, the wait in Retry-After.
  'quota-exceeded': (e) => new Problem('quota-exceeded', e.message, { openJobs: e.openJobs, maxOpenJobs: e.maxOpenJobs }),
  'invalid-cursor': () => new Problem('invalid-cursor'),
  'job-not-cancellable': (e) => new Problem('job-not-cancellable', e.message, { job: e.job }),
  'job-not-retryable': (e) => new Problem('job-not-retryable', e.message, { job: e.job }),
  'job-not-deletable': (e) => new Problem('job-not-deletable', e.message, { job: e.job }),
  'review-not-open': (e) => new Problem('review-not-open', e.message, { job: e.job }),
  'review-not-taken': (e) => new Problem('temporal-unavailable', e.message),
  'result-not-ready': (e) => new Problem('result-not-ready', e.message, { job: e.job }),
  'batch-not-cancellable': (e) => new Problem('batch-not-cancellable', e.message, { batch: e.batch }),
  'batch-not-ended': (e) => new Problem('batch-not-ended', e.message, { batch: e.batch }),
  'conversation-exists': (e) => new Problem('conversation-exists', e.message, { conversation: e.conversation }),
  'conversation-ended': (e) => new Problem('conversation-ended', e.message),
  'too-many-pending': (e) => new Problem('too-many-pending', e.message),
  'message-not-taken': (e) => new Problem('temporal-unavailable', e.message),
  'target-refused': (e) => new Problem('url-refused', e.message, { errors: [{ path: `body.targets.${e.index}.url`, message: e.reason }] }),
  'webhook-secret-missing': (e) => new Problem('webhook-not-configured', e.message),
  'unsupported-document': (e) => new Problem('unsupported-document-type', e.reason, ACCEPTED_DOCUMENTS),
  'blob-too-large': (e) =>
    new Problem(
      'payload-too-large',
      `The document is over the limit of ${e.maxBytes} bytes (SWITCHYARD_MAX_DOCUMENT_BYTES); nothing was stored`,
      {
        maxBytes: e.maxBytes,
      },
    ),
  'upload-interrupted': (e) => new Problem('invalid-request', e.message),
  'batch-file-rejected': (e) => new Problem('invalid-batch-file', e.message, { errors: e.errors, errorCount: e.errorCount }),
  'job-input-too-large': (e) => new Problem('payload-too-large', e.message, { inputBytes: e.inputBytes, maxInputBytes: e.maxInputBytes }),
};

/** The body parser's errors, by their `type`. */
const BODY_PARSER_PROBLEMS: Record<string, ProblemCode> = {
  'entity.parse.failed': 'malformed-json',
  'entity.too.large': 'payload-too-large',
  'encoding.unsupported': 'unsupported-media-type',
  'charset.unsupported': 'unsupported-media-type',
  'request.aborted': 'invalid-request',
  'request.size.invalid': 'invalid-request',
};

/** Other client errors of Express's own layers, by their HTTP status; any other 4xx is an invalid request. */
const CLIENT_STATUS_PROBLEMS: Record<number, ProblemCode> = {
  404: 'not-found',
  408: 'request-timeout',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
};

/** The problem `err` is; undefined for an error no client caused. */
function problemOf(err: unknown): Problem | undefined {
  if (err instanceof Problem) return err;
  if (err instanceof SwitchyardError && Object.hasOwn(PROBLEM_OF, err.code)) {
    return (PROBLEM_OF[err.code as RequestError['code']] as (e: SwitchyardError) => Problem)(err);
  }
  const bodyProblem = BODY_PARSER_PROBLEMS[(err as { type?: string }).type ?? ''];
  if (bodyProblem) return new Problem(bodyProblem, (err as Error).message);
  // Other client errors from Express's own layers carry a 4xx status: a malformed %-escape in a path
  // parameter, a gzip body that does not inflate.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new Problem(CLIENT_STATUS_PROBLEMS[status] ?? 'invalid-request', (err as Error).message);
  }
  if (isTemporalUnavailable(err)) return new Problem('temporal-unavailable');
  return undefined;
}

/**
 * gRPC codes of Temporal's client that mean "not now": UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED
 * (a busy server, or a workflow's query buffer full while its task is in flight), CANCELLED (a call cut
 * off as the server went away) and FAILED_PRECONDITION (a workflow whose task failed or timed out and is
 * being retried cannot be queried until it completes).
 */
const RETRYABLE_GRPC_CODES: unknown[] = [14, 4, 8, 1, 9];

/** Errors from Temporal's client that mean "the service cannot answer right now". */
function isTemporalUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (RETRYABLE_GRPC_CODES.includes(code) || code === 'ECONNREFUSED') return true;
    if (e instanceof Error && /failed to connect|connection refused|no connection established/i.test(e.message)) return true;
  }
  return false;
}

/** What an error was caused by, innermost last, with gRPC codes: the SDK's wrappers hide them behind their own message. */
function causesOf(err: unknown): string[] {
  const causes: string[] = [];
  for (let e = (err as { cause?: unknown })?.cause; e; e = (e as { cause?: unknown }).cause) {
    const { name, message, code } = e as { name?: unknown; message?: unknown; code?: unknown };
    causes.push(`${String(name)}: ${String(message)}${typeof code === 'number' || typeof code === 'string' ? ` (code ${code})` : ''}`);
  }
  return causes;
}

export function errorHandler(log: (fields: Record<string, unknown>) => void): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    if (res.headersSent) return;
    const problem = problemOf(err);
    if (problem) return sendProblem(res, problem);
    log({ level: 'error', msg: 'unhandled error', error: String((err as Error)?.stack ?? err), causes: causesOf(err) });
    sendProblem(res, new Problem('internal', 'An unexpected error occurred; it has been logged'));
  };
}

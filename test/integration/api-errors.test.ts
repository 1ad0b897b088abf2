/**
 * Every bad input the API can get, sent to a real API process on the run's dev server. Each answer is
 * an RFC 9457 problem (application/problem+json) with its status and a stable `type` and `code`; none
 * is a 500. Also: the API with Temporal unreachable (503s with Retry-After, bounded in time) and
 * configurations the API refuses to start with.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MAX_TEXT_CHARS } from '../../src/jobs/spec';
import { pickFreePort } from '../../src/local/dev-server';
import { READY_LINES } from '../../src/local/processes';
import { runRefusedApi, sentimentJob, Stack, TENANTS, type ProcessHandle } from '../../testkit/stack';

/** Over 200,000 characters of text must fit under the body limit, so it is 256 KiB rather than 64 KiB. */
const BODY_LIMIT_BYTES = 256 * 1024;
const MAX_ATTEMPTS = 7;
const MAX_DEADLINE_MS = 86_400_000;
/** A well-formed job id that no job has. */
const UNKNOWN_JOB = 'job-01ARZ3NDEKTSV4RRFFQ69G5FAV';
const EIGHT_MB = 8 * 1024 * 1024;
const HELLO = [{ role: 'user', content: 'hi' }];
const ACME_AUTH = `Authorization: Bearer ${TENANTS.acme.key}`;
const OPERATOR_KEY = 'operator-key-0123456789abcdef';
/** A well-formed document id that no document has. */
const UNKNOWN_DOCUMENT = 'doc-0123456789abcdef0123456789abcdef';
const MAX_DOCUMENT_BYTES = 4096;
const AS_OPERATOR = { as: null, headers: { authorization: `Bearer ${OPERATOR_KEY}` } } as const;

let stack: Stack;
let api: ProcessHandle;

before(async () => {
  stack = new Stack({
    env: {
      SWITCHYARD_BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
      SWITCHYARD_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      SWITCHYARD_MAX_DEADLINE_MS: String(MAX_DEADLINE_MS),
      SWITCHYARD_OPERATOR_KEYS: OPERATOR_KEY,
      SWITCHYARD_MAX_DOCUMENT_BYTES: String(MAX_DOCUMENT_BYTES),
    },
  });
  // No workers: none of these requests may start a job.
  api = await stack.startApi();
});
after(() => stack?.stop());

type Answer = Awaited<ReturnType<Stack['call']>>;
type CallOptions = NonNullable<Parameters<Stack['call']>[2]>;

/** Asserts an RFC 9457 problem with this status and code, and returns its body. */
function assertProblem(answer: Answer, status: number, code: string): any {
  const context = `${answer.status} ${JSON.stringify(answer.body)}`;
  assert.equal(answer.status, status, context);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json(;|$)/, context);
  assert.equal(answer.body.type, `/problems/${code}`, context);
  assert.equal(answer.body.code, code, context);
  assert.equal(answer.body.status, status, context);
  return answer.body;
}

/** Asserts a 400 whose `errors` hold one for the field at `path`, saying `message` if given. */
function assertFieldError(answer: Answer, code: string, path: string, message?: RegExp): void {
  const { errors } = assertProblem(answer, 400, code);
  assert.ok(Array.isArray(errors), `no errors array in ${JSON.stringify(answer.body)}`);
  const error = errors.find((e: { path: string }) => e.path === path);
  assert.ok(error, `no error at ${path} in ${JSON.stringify(errors)}`);
  if (message) assert.match(error.message, message);
}

/** A sentiment job with some fields replaced; a field set to undefined is left out of the JSON. */
const job = (fields: Record<string, unknown> = {}) => ({ ...sentimentJob(), ...fields });
/** Job fields with text of this many characters. */
const textOf = (chars: number) => ({ input: { text: 'a'.repeat(chars) } });
const submit = (fields: Record<string, unknown>, opts: CallOptions = {}) => stack.call('POST', '/v1/jobs', { body: job(fields), ...opts });
const submitRaw = (rawBody: string, headers: Record<string, string> = {}) => stack.call('POST', '/v1/jobs', { rawBody, headers });

/** Rejects if `work` takes longer than `ms`: a request must fail fast, never hang. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One request over a bare socket, for what fetch will not send (control characters, no content type). */
async function rawRequest(head: string[], body = ''): Promise<Answer> {
  const { hostname, port } = new URL(stack.apiUrl);
  const socket = net.connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  let failure: Error | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (err) => (failure = err)); // a reset after the answer is fine; no answer is not
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const lines = [...head, `Host: ${hostname}:${port}`, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  await within(10_000, closed);
  const text = Buffer.concat(chunks).toString('utf8');
  assert.ok(text, `no answer on the socket${failure ? `: ${failure.message}` : ''}`);
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
  const headers = new Headers(headerLines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(text.slice(split + 4)) };
}

describe('request bodies', () => {
  const malformed: [string, string][] = [
    ['a truncated object', '{"type": "inference", "task":'],
    ['trailing garbage', '{"type": "inference"} x'],
    ['single quotes', "{'type': 'inference'}"],
    ['a stray comma', '{,}'],
  ];
  for (const [name, raw] of malformed) {
    test(`malformed JSON (${name}) is 400 malformed-json`, async () => {
      assertProblem(await submitRaw(raw), 400, 'malformed-json');
    });
  }

  const notAnObject: [string, string][] = [
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['a JSON string', '"sentiment"'],
    ['a JSON number', '42'],
  ];
  for (const [name, raw] of notAnObject) {
    test(`${name} as the body is 400 invalid-request at body`, async () => {
      assertFieldError(await submitRaw(raw), 'invalid-request', 'body', /expected object/);
    });
  }

  const unknownFields: [string, Record<string, unknown>, string, string][] = [
    ['at the top level', { tenant: 'globex' }, 'body', 'tenant'],
    ['in retry', { retry: { maxAttempts: 3, jitter: true } }, 'body.retry', 'jitter'],
    ['in timeouts', { timeouts: { queueMs: 1000 } }, 'body.timeouts', 'queueMs'],
    ['in input', { input: { text: 'fine', language: 'en' } }, 'body.input', 'language'],
    ['in a chat message', { task: 'chat', input: { messages: [{ ...HELLO[0], name: 'x' }] } }, 'body.input.messages.0', 'name'],
  ];
  for (const [where, fields, path, key] of unknownFields) {
    test(`an unknown field ${where} is 400 unknown-field naming it`, async () => {
      assertFieldError(await submit(fields), 'unknown-field', path, new RegExp(`"${key}"`));
    });
  }

  test('an unknown field wins over invalid values, and every problem is listed', async () => {
    const answer = await submit({ color: 'red', priority: 0 });
    assertFieldError(answer, 'unknown-field', 'body', /"color"/);
    assertFieldError(answer, 'unknown-field', 'body.priority');
  });

  const invalid: [string, Record<string, unknown>, string, RegExp?][] = [
    ['a missing type', { type: undefined }, 'body.type'],
    ['an unknown job type', { type: 'batch' }, 'body.type'],
    ['a missing task', { task: undefined }, 'body.task'],
    ['an unknown task', { task: 'translate' }, 'body.task'],
    ['a task of the wrong type', { task: 42 }, 'body.task'],
    ['a missing input', { input: undefined }, 'body.input'],
    ['empty text', { input: { text: '' } }, 'body.input.text'],
    [`text over ${MAX_TEXT_CHARS} characters`, textOf(MAX_TEXT_CHARS + 1), 'body.input.text', new RegExp(`<=${MAX_TEXT_CHARS}\\b`)],
    ['a chat task with input.text', { task: 'chat' }, 'body.input', /input\.messages/],
    ['a sentiment task with input.messages', { input: { messages: HELLO } }, 'body.input', /input\.text/],
    ['a chat task with no messages', { task: 'chat', input: { messages: [] } }, 'body.input.messages'],
    ['an unknown pool', { pool: 'gpu' }, 'body.pool'],
    ['priority 0', { priority: 0 }, 'body.priority', />=1/],
    ['priority 6', { priority: 6 }, 'body.priority', /<=5/],
    ['a fractional priority', { priority: 2.5 }, 'body.priority'],
    ['a priority given as a string', { priority: '3' }, 'body.priority'],
    ['temperature above 2', { temperature: 2.5 }, 'body.temperature'],
    ['retry that is null', { retry: null }, 'body.retry'],
    ['retry.maxAttempts 0', { retry: { maxAttempts: 0 } }, 'body.retry.maxAttempts'],
    [
      `retry.maxAttempts above SWITCHYARD_MAX_ATTEMPTS (${MAX_ATTEMPTS})`,
      { retry: { maxAttempts: MAX_ATTEMPTS + 1 } },
      'body.retry.maxAttempts',
      new RegExp(`<=${MAX_ATTEMPTS}\\b`),
    ],
    [
      'retry.maxIntervalMs below retry.initialIntervalMs',
      { retry: { initialIntervalMs: 5000, maxIntervalMs: 1000 } },
      'body.retry.maxIntervalMs',
    ],
    [
      `timeouts.deadlineMs above SWITCHYARD_MAX_DEADLINE_MS (${MAX_DEADLINE_MS})`,
      { timeouts: { deadlineMs: MAX_DEADLINE_MS + 1 } },
      'body.timeouts.deadlineMs',
      new RegExp(`<=${MAX_DEADLINE_MS}\\b`),
    ],
  ];
  for (const [name, fields, path, message] of invalid) {
    test(`${name} is 400 invalid-request at ${path}`, async () => {
      assertFieldError(await submit(fields), 'invalid-request', path, message);
    });
  }
});

describe('body size, media type and encoding', () => {
  test(`a body over SWITCHYARD_BODY_LIMIT_BYTES (${BODY_LIMIT_BYTES}) is 413 payload-too-large`, async () => {
    const answer = await submit(textOf(BODY_LIMIT_BYTES));
    assertProblem(answer, 413, 'payload-too-large');
  });

  test('a multi-megabyte body is a 413 answer, not a reset connection', async () => {
    const answer = await within(30_000, submit(textOf(EIGHT_MB)));
    assertProblem(answer, 413, 'payload-too-large');
  });

  const unsupported: [string, Record<string, string>][] = [
    ['text/plain', { 'content-type': 'text/plain' }],
    ['a form', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['another +json type', { 'content-type': 'application/merge-patch+json' }],
    ['JSON in a charset other than UTF', { 'content-type': 'application/json; charset=latin1' }],
    ['an unknown content-encoding', { 'content-encoding': 'squash' }],
  ];
  for (const [name, headers] of unsupported) {
    test(`a body as ${name} is 415 unsupported-media-type`, async () => {
      assertProblem(await submitRaw(JSON.stringify(job()), headers), 415, 'unsupported-media-type');
    });
  }

  test('a body with no content type at all is 415 unsupported-media-type', async () => {
    const answer = await rawRequest(['POST /v1/jobs HTTP/1.1', ACME_AUTH], JSON.stringify(job()));
    assertProblem(answer, 415, 'unsupported-media-type');
  });

  test('a gzip content-encoding whose body is not gzip is 400 invalid-request', async () => {
    assertProblem(await submitRaw(JSON.stringify(job()), { 'content-encoding': 'gzip' }), 400, 'invalid-request');
  });
});

describe('Idempotency-Key', () => {
  const badKeys: [string, string][] = [
    ['over 200 characters', 'k'.repeat(201)],
    ['empty', ''],
    ['with a space', 'order 42'],
    ['with a tab', 'order\t42'],
    ['with a non-ASCII character', 'ordér-42'],
  ];
  for (const [name, key] of badKeys) {
    test(`a key ${name} is 400 invalid-request`, async () => {
      const answer = await submit({}, { headers: { 'idempotency-key': key } });
      assert.match(assertProblem(answer, 400, 'invalid-request').detail, /Idempotency-Key/);
    });
  }

  test('a key of exactly 200 characters passes the key check (the body is then checked)', async () => {
    const answer = await submit({ priority: 0 }, { headers: { 'idempotency-key': 'k'.repeat(200) } });
    assertFieldError(answer, 'invalid-request', 'body.priority');
  });

  // fetch will not send these; Node's HTTP parser rejects them before Express sees the request.
  const controls: [string, string][] = [
    ['NUL', '\x00'],
    ['SOH', '\x01'],
    ['ESC', '\x1b'],
    ['DEL', '\x7f'],
  ];
  for (const [name, char] of controls) {
    test(`a key with a ${name} control character is 400 invalid-request`, async () => {
      const head = ['POST /v1/jobs HTTP/1.1', ACME_AUTH, 'Content-Type: application/json'];
      const answer = await rawRequest([...head, `Idempotency-Key: order${char}42`], JSON.stringify(job()));
      assertProblem(answer, 400, 'invalid-request');
    });
  }

  test('headers over Node’s size limit are 431 headers-too-large', async () => {
    const answer = await rawRequest(['GET /v1/jobs HTTP/1.1', ACME_AUTH, `Idempotency-Key: ${'k'.repeat(20_000)}`]);
    assertProblem(answer, 431, 'headers-too-large');
  });
});

describe('job ids and routes', () => {
  const notFound: [string, string][] = [
    ['GET', `/v1/jobs/${UNKNOWN_JOB}`],
    ['GET', `/v1/jobs/${UNKNOWN_JOB.toLowerCase()}`],
    ['GET', '/v1/jobs/not-a-job-id'],
    ['GET', `/v1/jobs/acme%2F${UNKNOWN_JOB}`],
    ['POST', `/v1/jobs/${UNKNOWN_JOB}/cancel`],
    ['POST', '/v1/jobs/not-a-job-id/cancel'],
    ['GET', '/nope'],
    ['GET', '/v1/nope'],
    ['GET', '/v2/jobs'],
    ['DELETE', `/v1/jobs/${UNKNOWN_JOB}`],
  ];
  for (const [method, url] of notFound) {
    test(`${method} ${url} is 404 not-found`, async () => {
      assertProblem(await stack.call(method, url), 404, 'not-found');
    });
  }

  test('a malformed %-escape in a job id is 400 invalid-request', async () => {
    assertProblem(await stack.call('GET', '/v1/jobs/job-%E0%A4%A'), 400, 'invalid-request');
    assertProblem(await stack.call('POST', '/v1/jobs/%ZZ/cancel'), 400, 'invalid-request');
  });
});

/** Every /v1 endpoint, with a valid body where it takes one. */
const EVERY_ENDPOINT: [string, string, unknown?][] = [
  ['POST', '/v1/jobs', job()],
  ['GET', `/v1/jobs/${UNKNOWN_JOB}`],
  ['GET', '/v1/jobs'],
  ['POST', `/v1/jobs/${UNKNOWN_JOB}/cancel`],
  ['POST', `/v1/jobs/${UNKNOWN_JOB}/retry`],
  ['POST', '/v1/jobs/retry', { status: 'failed' }],
  ['GET', `/v1/jobs/${UNKNOWN_JOB}/runs`],
  ['GET', '/v1/failures'],
  ['GET', '/v1/pools'],
  ['GET', '/v1/pools/local'],
  ['POST', '/v1/pools/local/pause'],
  ['POST', '/v1/pools/local/resume'],
  ['GET', `/v1/jobs/${UNKNOWN_JOB}/result`],
  ['POST', `/v1/jobs/${UNKNOWN_JOB}/review`, { decision: 'approve', reviewer: 'dana' }],
  ['DELETE', `/v1/jobs/${UNKNOWN_JOB}`],
];
/** The /v1 endpoints that never reach Temporal: uploaded documents live in the blob store. */
const DOCUMENT_ENDPOINTS: [string, string, unknown?][] = [
  ['POST', '/v1/documents'],
  ['GET', `/v1/documents/${UNKNOWN_DOCUMENT}`],
  ['DELETE', `/v1/documents/${UNKNOWN_DOCUMENT}`],
];

describe('methods a path does not have', () => {
  /** A method the OpenAPI document does not list for the path, and the methods it does list. */
  const notAllowed: [string, string, string][] = [
    ['GET', `/v1/jobs/${UNKNOWN_JOB}/cancel`, 'POST'],
    ['PUT', '/v1/jobs', 'POST, GET'],
    ['POST', '/healthz', 'GET'],
    ['GET', '/v1/jobs/retry', 'POST'],
    ['GET', '/v1/pools/local/pause', 'POST'],
    ['DELETE', '/v1/pools/local', 'GET'],
    ['GET', '/v1/documents', 'POST'],
    ['PUT', `/v1/documents/${UNKNOWN_DOCUMENT}`, 'GET, DELETE'],
    ['GET', '/v1/conversations', 'POST'],
    ['PUT', '/v1/conversations/no-such-conversation', 'GET, DELETE'],
    ['GET', '/v1/conversations/no-such-conversation/messages', 'POST'],
  ];
  for (const [method, url, allow] of notAllowed) {
    test(`${method} ${url} is 405 method-not-allowed with Allow: ${allow}, whoever asks`, async () => {
      for (const who of [{}, AS_OPERATOR, { as: null }] as CallOptions[]) {
        const answer = await stack.call(method, url, who);
        assertProblem(answer, 405, 'method-not-allowed');
        assert.equal(answer.headers.get('allow'), allow);
      }
    });
  }

  test('OPTIONS answers with the Allow of the path, without an API key', async () => {
    const answer = await stack.call('OPTIONS', `/v1/jobs/${UNKNOWN_JOB}`, { as: null });
    assert.equal(answer.status, 204);
    assert.equal(answer.headers.get('allow'), 'GET, DELETE');
  });
});

describe('authentication', () => {
  const credentials: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['a wrong key', { authorization: 'Bearer wrong-key-0123456789abcdef' }],
    ['a malformed header (Basic xyz)', { authorization: 'Basic xyz' }],
    ['a valid key under the Basic scheme', { authorization: `Basic ${TENANTS.acme.key}` }],
    ['Bearer with no key', { authorization: 'Bearer' }],
    ['two keys', { authorization: `Bearer ${TENANTS.acme.key} ${TENANTS.globex.key}` }],
  ];
  for (const [method, url, body] of [...EVERY_ENDPOINT, ...DOCUMENT_ENDPOINTS]) {
    for (const [name, headers] of credentials) {
      test(`${method} ${url} with ${name} is 401 with WWW-Authenticate: Bearer`, async () => {
        const answer = await stack.call(method, url, { as: null, headers, body });
        assertProblem(answer, 401, 'unauthorized');
        assert.equal(answer.headers.get('www-authenticate'), 'Bearer');
      });
    }
  }

  test('authentication comes before the body: an unauthenticated malformed or oversized body is 401', async () => {
    assertProblem(await stack.call('POST', '/v1/jobs', { as: null, rawBody: '{not json' }), 401, 'unauthorized');
    const huge = await within(30_000, stack.call('POST', '/v1/jobs', { as: null, body: job(textOf(EIGHT_MB)) }));
    assertProblem(huge, 401, 'unauthorized');
    const upload = await within(30_000, stack.upload(Buffer.alloc(EIGHT_MB, 'a'), 'text/plain', { as: null }));
    assertProblem(upload, 401, 'unauthorized');
  });

  test('authentication comes before routing under /v1', async () => {
    assertProblem(await stack.call('GET', '/v1/nope', { as: null }), 401, 'unauthorized');
  });
});

describe('listing', () => {
  const badQueries: [string, 'invalid-request' | 'unknown-field', string][] = [
    ['foo=1', 'unknown-field', 'query'],
    ['tenant=globex', 'unknown-field', 'query'],
    ['status=done', 'invalid-request', 'query.status'],
    ['status=queued&status=running', 'invalid-request', 'query.status'],
    ['type=batch', 'invalid-request', 'query.type'],
    ['pool=gpu', 'invalid-request', 'query.pool'],
    ['limit=0', 'invalid-request', 'query.limit'],
    ['limit=101', 'invalid-request', 'query.limit'],
    ['limit=abc', 'invalid-request', 'query.limit'],
    ['limit=2.5', 'invalid-request', 'query.limit'],
    ['createdAfter=yesterday', 'invalid-request', 'query.createdAfter'],
    ['createdAfter=2026-01-01', 'invalid-request', 'query.createdAfter'],
    ['createdBefore=2026-13-01T00:00:00Z', 'invalid-request', 'query.createdBefore'],
    ['cursor=', 'invalid-request', 'query.cursor'],
  ];
  for (const [query, code, path] of badQueries) {
    test(`?${query} is 400 ${code} at ${path}`, async () => {
      assertFieldError(await stack.call('GET', `/v1/jobs?${query}`), code, path);
    });
  }

  const badCursors: [string, string][] = [
    ['garbage', '!!!not-base64!!!'],
    ['base64 that is not canonical base64url', 'aGVsbG8='],
    ['well-formed base64url the server never issued', randomBytes(48).toString('base64url')],
  ];
  for (const [name, cursor] of badCursors) {
    test(`a cursor that is ${name} is 400 invalid-cursor`, async () => {
      assertProblem(await stack.call('GET', `/v1/jobs?cursor=${encodeURIComponent(cursor)}`), 400, 'invalid-cursor');
    });
  }
});

describe('retries, runs, failures and pools', () => {
  /** The actions with a JSON body, each as the role it needs; none of these bodies is valid. */
  const actions: [string, string, CallOptions][] = [
    ['POST', `/v1/jobs/${UNKNOWN_JOB}/retry`, {}],
    ['POST', '/v1/jobs/retry', {}],
    ['POST', '/v1/pools/local/pause', AS_OPERATOR],
    ['POST', '/v1/pools/local/resume', AS_OPERATOR],
  ];
  for (const [method, url, who] of actions) {
    test(`${method} ${url}: malformed JSON is 400, an oversized body 413, a body not JSON 415, an unknown field 400`, async () => {
      assertProblem(await stack.call(method, url, { ...who, rawBody: '{"reason": ' }), 400, 'malformed-json');
      assertProblem(await stack.call(method, url, { ...who, body: { reason: 'a'.repeat(BODY_LIMIT_BYTES) } }), 413, 'payload-too-large');
      const plain = await stack.call(method, url, { ...who, rawBody: '{}', headers: { ...who.headers, 'content-type': 'text/plain' } });
      assertProblem(plain, 415, 'unsupported-media-type');
      assertFieldError(
        await stack.call(method, url, { ...who, body: { status: 'failed', force: true } }),
        'unknown-field',
        'body',
        /"force"/,
      );
    });
  }

  test('retrying an unknown job is 404 once its (empty) body is valid, with or without a body', async () => {
    assertProblem(await stack.call('POST', `/v1/jobs/${UNKNOWN_JOB}/retry`, { body: {} }), 404, 'not-found');
    assertProblem(await stack.call('POST', `/v1/jobs/${UNKNOWN_JOB}/retry`), 404, 'not-found');
  });

  const bulkInvalid: [string, unknown, string][] = [
    ['no status', {}, 'body.status'],
    ['a status that cannot be retried', { status: 'succeeded' }, 'body.status'],
    ['limit 0', { status: 'failed', limit: 0 }, 'body.limit'],
    ['limit over the maximum', { status: 'failed', limit: 101 }, 'body.limit'],
    ['limit as a string', { status: 'failed', limit: '5' }, 'body.limit'],
    ['an error type with spaces', { status: 'failed', errorType: 'Provider Rejected' }, 'body.errorType'],
    ['an unknown pool', { status: 'failed', pool: 'gpu' }, 'body.pool'],
    ['a date that is not RFC 3339', { status: 'failed', createdAfter: 'yesterday' }, 'body.createdAfter'],
    ['a JSON array', [], 'body'],
  ];
  for (const [name, body, path] of bulkInvalid) {
    test(`bulk retry with ${name} is 400 invalid-request at ${path}`, async () => {
      assertFieldError(await stack.call('POST', '/v1/jobs/retry', { body }), 'invalid-request', path);
    });
  }

  test('bulk retry with a cursor the server never issued is 400 invalid-cursor', async () => {
    const answer = await stack.call('POST', '/v1/jobs/retry', {
      body: { status: 'failed', cursor: randomBytes(48).toString('base64url') },
    });
    assertProblem(answer, 400, 'invalid-cursor');
  });

  const pauseInvalid: [string, unknown][] = [
    ['an empty reason', { reason: '' }],
    ['a reason over 200 characters', { reason: 'r'.repeat(201) }],
    ['a reason that is not a string', { reason: 42 }],
  ];
  for (const [name, body] of pauseInvalid) {
    test(`pausing with ${name} is 400 invalid-request at body.reason`, async () => {
      assertFieldError(await stack.call('POST', '/v1/pools/local/pause', { ...AS_OPERATOR, body }), 'invalid-request', 'body.reason');
    });
  }

  const badQueries: [string, CallOptions, 'invalid-request' | 'unknown-field', string][] = [
    ['/v1/jobs?errorType=Provider%20Rejected', {}, 'invalid-request', 'query.errorType'],
    [`/v1/jobs/${UNKNOWN_JOB}/runs?limit=5`, {}, 'unknown-field', 'query'],
    ['/v1/failures?tenant=globex', {}, 'unknown-field', 'query'],
    ['/v1/failures?pool=gpu', {}, 'invalid-request', 'query.pool'],
    ['/v1/failures?since=yesterday', {}, 'invalid-request', 'query.since'],
    ['/v1/pools?verbose=1', AS_OPERATOR, 'unknown-field', 'query'],
    ['/v1/pools/local?verbose=1', AS_OPERATOR, 'unknown-field', 'query'],
  ];
  for (const [url, who, code, path] of badQueries) {
    test(`GET ${url} is 400 ${code} at ${path}`, async () => {
      assertFieldError(await stack.call('GET', url, who), code, path);
    });
  }

  const notFound: [string, string, CallOptions][] = [
    ['POST', '/v1/jobs/not-a-job-id/retry', {}],
    ['GET', `/v1/jobs/${UNKNOWN_JOB}/runs`, {}],
    ['GET', '/v1/jobs/not-a-job-id/runs', {}],
    ['GET', '/v1/pools/gpu', AS_OPERATOR],
    ['POST', '/v1/pools/gpu/pause', AS_OPERATOR],
    ['POST', '/v1/pools/gpu/resume', AS_OPERATOR],
  ];
  for (const [method, url, who] of notFound) {
    test(`${method} ${url} is 404 not-found`, async () => {
      assertProblem(await stack.call(method, url, who), 404, 'not-found');
    });
  }

  const wrongRole: [string, string, CallOptions, string][] = [
    ['GET', '/v1/pools', {}, 'a tenant key'],
    ['POST', '/v1/pools/local/pause', {}, 'a tenant key'],
    ['POST', '/v1/pools/gpu/resume', {}, 'a tenant key'],
    ['GET', '/v1/jobs', AS_OPERATOR, 'an operator key'],
    ['POST', '/v1/jobs', AS_OPERATOR, 'an operator key'],
    ['POST', '/v1/jobs/retry', AS_OPERATOR, 'an operator key'],
    ['GET', '/v1/failures', AS_OPERATOR, 'an operator key'],
    ['POST', '/v1/documents', AS_OPERATOR, 'an operator key'],
    ['GET', `/v1/documents/${UNKNOWN_DOCUMENT}`, AS_OPERATOR, 'an operator key'],
    ['POST', `/v1/jobs/${UNKNOWN_JOB}/review`, AS_OPERATOR, 'an operator key'],
  ];
  for (const [method, url, who, name] of wrongRole) {
    test(`${method} ${url} with ${name} is 403 forbidden, before any body is read`, async () => {
      const body = method === 'POST' ? { rawBody: '{not json' } : {};
      assertProblem(await stack.call(method, url, { ...who, ...body }), 403, 'forbidden');
    });
  }
});

describe('documents and document jobs', () => {
  let documentId: string;
  before(async () => {
    const answer = await stack.upload('A short text to analyse. It has two sentences.', 'text/plain');
    assert.ok([200, 201].includes(answer.status), JSON.stringify(answer.body));
    documentId = answer.body.id;
  });
  /** A document job on the uploaded document, with some fields replaced; a field set to undefined is left out. */
  const documentJob = (fields: Record<string, unknown> = {}) => ({
    type: 'document',
    source: { documentId },
    tasks: ['keywords'],
    ...fields,
  });
  const submitDocument = (fields: Record<string, unknown>) => stack.call('POST', '/v1/jobs', { body: documentJob(fields) });

  const invalid: [string, Record<string, unknown>, string, RegExp?][] = [
    ['no source', { source: undefined }, 'body.source'],
    [
      'a source that is both a document and a URL',
      { source: { documentId: UNKNOWN_DOCUMENT, url: 'https://example.com/a' } },
      'body.source',
    ],
    ['a malformed document id', { source: { documentId: 'doc-XYZ' } }, 'body.source.documentId', /doc- and 32 hex digits/],
    ['a URL that is not http(s)', { source: { url: 'file:///etc/passwd' } }, 'body.source.url'],
    ['no tasks', { tasks: undefined }, 'body.tasks'],
    ['an empty task list', { tasks: [] }, 'body.tasks'],
    ['a task twice', { tasks: ['keywords', 'keywords'] }, 'body.tasks', /each task once/],
    ['an unknown task', { tasks: ['translate'] }, 'body.tasks.0'],
    ['the prompt task without a prompt', { tasks: ['prompt'] }, 'body.prompt', /needs a prompt/],
    ['a prompt without the prompt task', { prompt: 'Summarise.' }, 'body.prompt', /only used by the prompt task/],
    ['chunks under 200 characters', { chunking: { targetChars: 199 } }, 'body.chunking.targetChars', />=200/],
    ['chunks over 20,000 characters', { chunking: { targetChars: 20_001 } }, 'body.chunking.targetChars', /<=20000/],
    ['maxParallel 0', { maxParallel: 0 }, 'body.maxParallel'],
    ['maxParallel over 100', { maxParallel: 101 }, 'body.maxParallel', /<=100/],
    ['an unknown failure policy', { failurePolicy: 'ignore' }, 'body.failurePolicy'],
    ['a review without a timeout', { review: {} }, 'body.review.timeoutMs'],
    ['a review timeout over 30 days', { review: { timeoutMs: 30 * 86_400_000 + 1 } }, 'body.review.timeoutMs'],
    ['an unknown review onTimeout', { review: { timeoutMs: 60_000, onTimeout: 'escalate' } }, 'body.review.onTimeout'],
    ['a webhook URL that is not http(s)', { webhook: { url: 'ftp://example.com/hook' } }, 'body.webhook.url'],
  ];
  for (const [name, fields, path, message] of invalid) {
    test(`a document job with ${name} is 400 invalid-request at ${path}`, async () => {
      assertFieldError(await submitDocument(fields), 'invalid-request', path, message);
    });
  }

  const unknownFields: [string, Record<string, unknown>, string, string][] = [
    ['in chunking', { chunking: { targetChars: 500, overlap: 50 } }, 'body.chunking', 'overlap'],
    ['in review', { review: { timeoutMs: 60_000, escalateTo: 'boss' } }, 'body.review', 'escalateTo'],
    ['in webhook', { webhook: { url: 'https://example.com/hook', secret: 'mine' } }, 'body.webhook', 'secret'],
    ['in timeouts (maxQueueMs is for inference jobs)', { timeouts: { maxQueueMs: 1000 } }, 'body.timeouts', 'maxQueueMs'],
    ['at the top level (input is for inference jobs)', { input: { text: 'x' } }, 'body', 'input'],
  ];
  for (const [where, fields, path, key] of unknownFields) {
    test(`a document job with an unknown field ${where} is 400 unknown-field naming it`, async () => {
      assertFieldError(await submitDocument(fields), 'unknown-field', path, new RegExp(`"${key}"`));
    });
  }

  test('a document this tenant has not uploaded is 400 unknown-document, for another tenant’s too', async () => {
    const answer = await submitDocument({ source: { documentId: UNKNOWN_DOCUMENT } });
    assertFieldError(answer, 'unknown-document', 'body.source.documentId', /POST \/v1\/documents/);
    const theirs = await stack.call('POST', '/v1/jobs', { as: 'globex', body: documentJob() });
    assertProblem(theirs, 400, 'unknown-document');
  });

  const refusedUrls: [string, RegExp][] = [
    ['http://127.0.0.1/report.txt', /127\.0\.0\.1 is a loopback address/],
    ['http://10.1.2.3/report.txt', /10\.1\.2\.3 is a private address/],
    ['http://192.168.1.20:8080/report.txt', /192\.168\.1\.20 is a private address/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
    ['http://[::1]:8080/report.txt', /::1 is a loopback address/],
    ['http://[::ffff:10.0.0.1]/report.txt', /is a private address/],
    ['http://localhost:3000/report.txt', /localhost resolves to .* loopback address/],
    ['http://0.0.0.0/report.txt', /unspecified/],
    ['https://user:secret@example.com/report.txt', /user name or password/],
  ];
  for (const [url, reason] of refusedUrls) {
    test(`a document URL ${url} is 400 url-refused, saying why`, async () => {
      const answer = await submitDocument({ source: { url } });
      assertFieldError(answer, 'url-refused', 'body.source.url', reason);
      assert.match(answer.body.detail, reason);
    });
  }

  test('a webhook with no signing secret configured is 400 webhook-not-configured, naming where to set one', async () => {
    const answer = await submitDocument({ webhook: { url: 'https://example.com/hook' } });
    const { detail } = assertProblem(answer, 400, 'webhook-not-configured');
    assert.match(detail, /SWITCHYARD_WEBHOOK_SECRET/);
    assert.match(detail, /webhookSecret/);
  });

  const uploads: [string, string | Buffer, Record<string, string>, number, string][] = [
    ['an empty body', '', { 'content-type': 'text/plain' }, 400, 'empty-document'],
    [
      `a body over ${MAX_DOCUMENT_BYTES} bytes`,
      'x'.repeat(MAX_DOCUMENT_BYTES + 1),
      { 'content-type': 'text/plain' },
      413,
      'payload-too-large',
    ],
    ['an image', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), { 'content-type': 'image/png' }, 415, 'unsupported-document-type'],
    [
      'binary bytes as octets',
      Buffer.from([0, 1, 2, 3, 255, 254]),
      { 'content-type': 'application/octet-stream' },
      415,
      'unsupported-document-type',
    ],
    ['text declared as a PDF', 'Not a PDF at all.', { 'content-type': 'application/pdf' }, 415, 'unsupported-document-type'],
    ['a zip archive', 'PK\u0003\u0004', { 'content-type': 'application/zip' }, 415, 'unsupported-document-type'],
    [
      'a gzip content-encoding',
      'plain text',
      { 'content-type': 'text/plain', 'content-encoding': 'gzip' },
      415,
      'unsupported-document-type',
    ],
  ];
  for (const [name, bytes, headers, status, code] of uploads) {
    test(`uploading ${name} is ${status} ${code}`, async () => {
      const answer = await stack.upload(bytes, null, { headers });
      const body = assertProblem(answer, status, code);
      if (status === 415 && !headers['content-encoding']) assert.deepEqual(body.accepted.types, ['text', 'markdown', 'html', 'pdf']);
    });
  }

  test('an upload with a bad file name or an unknown query parameter is 400, naming it', async () => {
    assertFieldError(
      await stack.upload('text', 'text/plain', { query: '?filename=..%2Fetc%2Fpasswd' }),
      'invalid-request',
      'query.filename',
    );
    assertFieldError(await stack.upload('text', 'text/plain', { query: '?name=a.txt' }), 'unknown-field', 'query');
    const disposition = { 'content-disposition': 'attachment; filename="../../etc/passwd"' };
    assertFieldError(await stack.upload('text', 'text/plain', { headers: disposition }), 'invalid-request', 'headers.content-disposition');
  });

  const notFound: [string, string][] = [
    ['GET', `/v1/documents/${UNKNOWN_DOCUMENT}`],
    ['GET', '/v1/documents/not-a-document-id'],
    ['GET', `/v1/documents/${UNKNOWN_DOCUMENT.toUpperCase()}`],
    ['DELETE', `/v1/documents/${UNKNOWN_DOCUMENT}`],
    ['DELETE', '/v1/documents/not-a-document-id'],
    ['GET', `/v1/jobs/${UNKNOWN_JOB}/result`],
    ['GET', '/v1/jobs/not-a-job-id/result'],
    ['DELETE', '/v1/jobs/not-a-job-id'],
    ['POST', '/v1/jobs/not-a-job-id/review'],
  ];
  for (const [method, url] of notFound) {
    test(`${method} ${url} is 404 not-found`, async () => {
      const body = url.endsWith('/review') ? { decision: 'approve', reviewer: 'dana' } : undefined;
      assertProblem(await stack.call(method, url, { body }), 404, 'not-found');
    });
  }

  test('reading a document, a result or deleting with unknown query parameters is 400 unknown-field', async () => {
    assertFieldError(await stack.call('GET', `/v1/documents/${documentId}?verbose=1`), 'unknown-field', 'query');
    assertFieldError(await stack.call('GET', `/v1/jobs/${UNKNOWN_JOB}/result?format=csv`), 'unknown-field', 'query');
    assertFieldError(await stack.call('DELETE', `/v1/jobs/${UNKNOWN_JOB}?force=true`), 'unknown-field', 'query');
  });

  const review = `/v1/jobs/${UNKNOWN_JOB}/review`;
  const badReviews: [string, unknown, string, 'invalid-request' | 'unknown-field'][] = [
    ['no decision', { reviewer: 'dana' }, 'body.decision', 'invalid-request'],
    ['an unknown decision', { decision: 'maybe', reviewer: 'dana' }, 'body.decision', 'invalid-request'],
    ['no reviewer', { decision: 'approve' }, 'body.reviewer', 'invalid-request'],
    ['a blank reviewer', { decision: 'approve', reviewer: '   ' }, 'body.reviewer', 'invalid-request'],
    ['a reviewer of a vertical tab alone', { decision: 'approve', reviewer: '\u000b' }, 'body.reviewer', 'invalid-request'],
    ['a reviewer over 200 characters', { decision: 'approve', reviewer: 'r'.repeat(201) }, 'body.reviewer', 'invalid-request'],
    ['a comment that is not a string', { decision: 'approve', reviewer: 'dana', comment: 42 }, 'body.comment', 'invalid-request'],
    ['an unknown field', { decision: 'approve', reviewer: 'dana', score: 5 }, 'body', 'unknown-field'],
  ];
  for (const [name, body, path, code] of badReviews) {
    test(`a review with ${name} is 400 ${code} at ${path}`, async () => {
      assertFieldError(await stack.call('POST', review, { body }), code, path);
    });
  }

  test('a review that is malformed, oversized or not JSON is 400, 413, 415', async () => {
    assertProblem(await stack.call('POST', review, { rawBody: '{"decision": ' }), 400, 'malformed-json');
    assertProblem(
      await stack.call('POST', review, { body: { decision: 'approve', reviewer: 'a'.repeat(BODY_LIMIT_BYTES) } }),
      413,
      'payload-too-large',
    );
    assertProblem(
      await stack.call('POST', review, { rawBody: '{}', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported-media-type',
    );
    assertProblem(await stack.call('POST', review), 415, 'unsupported-media-type');
  });
});

describe('Temporal unavailable', () => {
  let down: Stack;
  before(async () => {
    // An API process whose Temporal address is a port where nothing listens.
    down = new Stack({ env: { TEMPORAL_ADDRESS: `127.0.0.1:${await pickFreePort()}`, SWITCHYARD_OPERATOR_KEYS: OPERATOR_KEY } });
    await down.startApi();
  });
  after(() => down?.stop());

  const ANSWER_WITHIN_MS = 15_000;
  for (const [method, url, body] of EVERY_ENDPOINT) {
    test(`${method} ${url} is 503 temporal-unavailable with Retry-After, within ${ANSWER_WITHIN_MS / 1000} s`, async () => {
      const who = url.startsWith('/v1/pools') ? AS_OPERATOR : {};
      const answer = await within(ANSWER_WITHIN_MS, down.call(method, url, { body, ...who }));
      assertProblem(answer, 503, 'temporal-unavailable');
      assert.match(answer.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    });
  }

  test('/readyz is 503 with Retry-After while /healthz stays 200', async () => {
    const ready = await within(ANSWER_WITHIN_MS, down.call('GET', '/readyz', { as: null }));
    assert.equal(ready.status, 503);
    assert.equal(ready.body.status, 'unready');
    assert.match(ready.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    const health = await down.call('GET', '/healthz', { as: null });
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok' });
  });
});

describe('configurations the API refuses to start with', () => {
  const refusals: [string, Record<string, string>, string][] = [
    ['no API keys on a non-loopback host', { API_HOST: '0.0.0.0', SWITCHYARD_API_KEYS: '' }, 'SWITCHYARD_API_KEYS'],
    ['an API key shorter than 16 characters', { SWITCHYARD_API_KEYS: 'acme:short' }, 'SWITCHYARD_API_KEYS'],
    ['a port that is not a number', { API_PORT: 'abc' }, 'API_PORT'],
    ['pools that are not JSON', { SWITCHYARD_POOLS: '{' }, 'SWITCHYARD_POOLS'],
    ['a body limit below the minimum', { SWITCHYARD_BODY_LIMIT_BYTES: '10' }, 'SWITCHYARD_BODY_LIMIT_BYTES'],
  ];
  for (const [name, env, variable] of refusals) {
    test(`${name}: exits non-zero naming ${variable}`, async () => {
      const { exit, output } = await runRefusedApi({ ...stack.env, ...env });
      assert.match(exit, /^[1-9]\d*$/, `it exited by itself, non-zero (not ${exit}):\n${output}`);
      assert.ok(output.includes(variable), output);
      assert.doesNotMatch(output, READY_LINES.api);
    });
  }
});

describe('conversations', () => {
  const CID = 'no-such-conversation';
  const MID = `msg-${'0'.repeat(32)}`;
  const handler = { name: 'a', pool: 'local', task: 'sentiment' };
  const conversation = (fields: Record<string, unknown> = {}) => ({ id: 'c1', stages: [{ handlers: [handler] }], ...fields });
  const create = (body: unknown, opts: CallOptions = {}) => stack.call('POST', '/v1/conversations', { body, ...opts });
  const postMessage = (body: unknown, opts: CallOptions = {}) => stack.call('POST', `/v1/conversations/${CID}/messages`, { body, ...opts });
  const ENDPOINTS: [string, string, unknown?][] = [
    ['POST', '/v1/conversations', conversation()],
    ['GET', `/v1/conversations/${CID}`],
    ['DELETE', `/v1/conversations/${CID}`],
    ['POST', `/v1/conversations/${CID}/messages`, { text: 'hi' }],
    ['GET', `/v1/conversations/${CID}/messages/1`],
    ['GET', `/v1/conversations/${CID}/messages/${MID}/events`],
  ];

  for (const [url, send] of [
    ['/v1/conversations', create],
    [`/v1/conversations/${CID}/messages`, postMessage],
  ] as const) {
    test(`POST ${url}: malformed JSON 400, an oversized body 413, a body not JSON 415, not an object 400`, async () => {
      assertProblem(await stack.call('POST', url, { rawBody: '{"text": ' }), 400, 'malformed-json');
      assertProblem(await send({ text: 'a'.repeat(BODY_LIMIT_BYTES) }), 413, 'payload-too-large');
      assertProblem(
        await stack.call('POST', url, { rawBody: '{}', headers: { 'content-type': 'text/plain' } }),
        415,
        'unsupported-media-type',
      );
      assertFieldError(await stack.call('POST', url, { rawBody: '[]' }), 'invalid-request', 'body', /expected object/);
    });
  }

  const unknownFields: [string, Record<string, unknown>, string, string][] = [
    ['at the top level', conversation({ tenant: 'globex' }), 'body', 'tenant'],
    ['in a stage', conversation({ stages: [{ handlers: [handler], parallel: true }] }), 'body.stages.0', 'parallel'],
    ['in a handler', conversation({ stages: [{ handlers: [{ ...handler, priority: 1 }] }] }), 'body.stages.0.handlers.0', 'priority'],
    [
      'in a handler’s retry',
      conversation({ stages: [{ handlers: [{ ...handler, retry: { jitter: true } }] }] }),
      'body.stages.0.handlers.0.retry',
      'jitter',
    ],
    ['in a target', conversation({ targets: [{ name: 't', url: 'https://example.com/hook', secret: 'x' }] }), 'body.targets.0', 'secret'],
  ];
  for (const [where, body, path, key] of unknownFields) {
    test(`creating with an unknown field ${where} is 400 unknown-field naming it`, async () => {
      assertFieldError(await create(body), 'unknown-field', path, new RegExp(`"${key}"`));
    });
  }

  const invalid: [string, Record<string, unknown>, string][] = [
    ['no id', conversation({ id: undefined }), 'body.id'],
    ['an id with a slash', conversation({ id: 'a/b' }), 'body.id'],
    ['an id of 65 characters', conversation({ id: 'c'.repeat(65) }), 'body.id'],
    ['no stages', conversation({ stages: [] }), 'body.stages'],
    ['a stage without handlers', conversation({ stages: [{ handlers: [] }] }), 'body.stages.0.handlers'],
    [
      'six stages',
      conversation({ stages: Array.from({ length: 6 }, (_, i) => ({ handlers: [{ ...handler, name: `h${i}` }] })) }),
      'body.stages',
    ],
    ['an unknown pool', conversation({ stages: [{ handlers: [{ ...handler, pool: 'gpu' }] }] }), 'body.stages.0.handlers.0.pool'],
    ['an unknown task', conversation({ stages: [{ handlers: [{ ...handler, task: 'translate' }] }] }), 'body.stages.0.handlers.0.task'],
    [
      'a prompt on a sentiment handler',
      conversation({ stages: [{ handlers: [{ ...handler, prompt: 'be nice' }] }] }),
      'body.stages.0.handlers.0.prompt',
    ],
    [
      'two handlers of one name',
      conversation({ stages: [{ handlers: [handler] }, { handlers: [handler] }] }),
      'body.stages.1.handlers.0.name',
    ],
    [
      'a quorum above the handlers',
      conversation({ stages: [{ handlers: [handler], fanIn: { quorum: 2 } }] }),
      'body.stages.0.fanIn.quorum',
    ],
    ['an unknown fan-in', conversation({ stages: [{ handlers: [handler], fanIn: 'any' }] }), 'body.stages.0.fanIn'],
    ['maxPending 0', conversation({ maxPending: 0 }), 'body.maxPending'],
    ['maxPending above 1000', conversation({ maxPending: 1001 }), 'body.maxPending'],
    ['a target URL that is not http(s)', conversation({ targets: [{ name: 't', url: 'ftp://example.com/hook' }] }), 'body.targets.0.url'],
    [
      'two targets of one name',
      conversation({
        targets: [
          { name: 't', url: 'https://example.com/a' },
          { name: 't', url: 'https://example.com/b' },
        ],
      }),
      'body.targets.1.name',
    ],
  ];
  for (const [name, body, path] of invalid) {
    test(`creating with ${name} is 400 invalid-request at ${path}`, async () => {
      assertFieldError(await create(body), 'invalid-request', path);
    });
  }

  test('a target at a link-local address is 400 url-refused naming the target, before anything starts', async () => {
    const answer = await create(conversation({ targets: [{ name: 'meta', url: 'http://169.254.169.254/latest/meta-data' }] }));
    const problem = assertProblem(answer, 400, 'url-refused');
    assert.equal(problem.errors[0].path, 'body.targets.0.url');
    assert.match(problem.detail, /meta.*169\.254\.169\.254/);
  });

  test('targets while no webhook secret is configured are 400 webhook-not-configured', async () => {
    // A public address (a documentation range): the URL passes, with no DNS needed.
    const answer = await create(conversation({ targets: [{ name: 't', url: 'https://203.0.113.10/hook' }] }));
    assert.match(assertProblem(answer, 400, 'webhook-not-configured').detail, /SWITCHYARD_WEBHOOK_SECRET/);
  });

  const badMessages: [string, unknown, 'invalid-request' | 'unknown-field', string][] = [
    ['no text', {}, 'invalid-request', 'body.text'],
    ['empty text', { text: '' }, 'invalid-request', 'body.text'],
    ['text over 32,000 characters', { text: 'a'.repeat(32_001) }, 'invalid-request', 'body.text'],
    ['text that is not a string', { text: 42 }, 'invalid-request', 'body.text'],
    ['an author over 200 characters', { text: 'hi', author: 'a'.repeat(201) }, 'invalid-request', 'body.author'],
    ['metadata that is not an object', { text: 'hi', metadata: 'x' }, 'invalid-request', 'body.metadata'],
    ['metadata over 4,000 characters as JSON', { text: 'hi', metadata: { note: 'n'.repeat(4000) } }, 'invalid-request', 'body.metadata'],
    ['an unknown field', { text: 'hi', role: 'user' }, 'unknown-field', 'body'],
  ];
  for (const [name, body, code, path] of badMessages) {
    test(`a message with ${name} is 400 ${code} at ${path}`, async () => {
      assertFieldError(await postMessage(body), code, path);
    });
  }

  test('a message with a bad Idempotency-Key is 400 invalid-request', async () => {
    const answer = await postMessage({ text: 'hi' }, { headers: { 'idempotency-key': 'has space' } });
    assert.match(assertProblem(answer, 400, 'invalid-request').detail, /Idempotency-Key/);
  });

  const notFound: [string, string][] = [
    ['GET', `/v1/conversations/${CID}`],
    ['GET', '/v1/conversations/bad%2Fid'],
    ['GET', `/v1/conversations/${'c'.repeat(65)}`],
    ['DELETE', `/v1/conversations/${CID}`],
    ['GET', `/v1/conversations/${CID}/messages/1`],
    ['GET', `/v1/conversations/${CID}/messages/${MID}`],
    ['GET', `/v1/conversations/${CID}/messages/0`],
    ['GET', `/v1/conversations/${CID}/messages/msg-xyz`],
    ['GET', `/v1/conversations/${CID}/messages/1/events`],
    ['POST', '/v1/conversations/bad.id/messages'],
  ];
  for (const [method, url] of notFound) {
    test(`${method} ${url} is 404 not-found`, async () => {
      assertProblem(await stack.call(method, url, method === 'POST' ? { body: { text: 'hi' } } : {}), 404, 'not-found');
    });
  }

  const badQueries: [string, 'invalid-request' | 'unknown-field', string][] = [
    [`/v1/conversations/${CID}?verbose=1`, 'unknown-field', 'query'],
    [`/v1/conversations/${CID}/messages/1?verbose=1`, 'unknown-field', 'query'],
    [`/v1/conversations/${CID}/messages/1/events?from=3`, 'unknown-field', 'query'],
    [`/v1/conversations/${CID}/messages/1/events?lastEventId=-1`, 'invalid-request', 'query.lastEventId'],
    [`/v1/conversations/${CID}/messages/1/events?lastEventId=abc`, 'invalid-request', 'query.lastEventId'],
  ];
  for (const [url, code, path] of badQueries) {
    test(`GET ${url} is 400 ${code} at ${path}`, async () => {
      assertFieldError(await stack.call('GET', url), code, path);
    });
  }

  test('a Last-Event-ID that is not an event id is 400 invalid-request', async () => {
    const answer = await stack.call('GET', `/v1/conversations/${CID}/messages/1/events`, { headers: { 'last-event-id': 'abc' } });
    assert.match(assertProblem(answer, 400, 'invalid-request').detail, /Last-Event-ID/);
  });

  for (const [method, url, body] of ENDPOINTS) {
    test(`${method} ${url} without a key is 401, with an operator key 403`, async () => {
      assertProblem(await stack.call(method, url, { as: null, body }), 401, 'unauthorized');
      const wrongKey = await stack.call(method, url, { as: null, headers: { authorization: 'Bearer wrong-key-0123456789abcdef' }, body });
      assertProblem(wrongKey, 401, 'unauthorized');
      assertProblem(await stack.call(method, url, { ...AS_OPERATOR, body }), 403, 'forbidden');
    });
  }

  describe('with Temporal unreachable', () => {
    let down: Stack;
    before(async () => {
      down = new Stack({ env: { TEMPORAL_ADDRESS: `127.0.0.1:${await pickFreePort()}` } });
      await down.startApi();
    });
    after(() => down?.stop());

    for (const [method, url, body] of ENDPOINTS) {
      test(`${method} ${url} is 503 temporal-unavailable with Retry-After, within 15 s`, async () => {
        const answer = await within(15_000, down.call(method, url, { body }));
        assertProblem(answer, 503, 'temporal-unavailable');
        assert.match(answer.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      });
    }
  });
});

test('no request to the API ended in a 5xx or an unhandled error', () => {
  const bad = api.lines.filter((l) => /"status":5\d\d|"unhandled error"/.test(l));
  assert.deepEqual(bad, []);
});

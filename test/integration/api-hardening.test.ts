/**
 * The API against requests that tie it up or break it rather than ask it something: bodies announced larger
 * than they are, bodies and headers that trickle in, JSON nested thousands deep, job inputs that outgrow
 * Temporal's payload limit once invalid UTF-8 is replaced, unknown query parameters; and the hardening
 * headers every answer carries. A real API process on the run's dev server, no workers: nothing here may
 * start a job. Raw sockets (node:net) send what fetch will not.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DOCS_CSP } from '../../src/api/docs-ui';
import { MAX_JSON_DEPTH } from '../../src/api/body';
import { Stack, TENANTS, type ProcessHandle } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const REQUEST_TIMEOUT_MS = 2000;
/** The request timeout, Node's check of it (every second) and a busy machine's delay: an answer due at the timeout comes by then. */
const TIMEOUT_ANSWER_MS = REQUEST_TIMEOUT_MS + 8000;
/** An answer that must come at once, before any timeout could have produced it. */
const AT_ONCE_MS = REQUEST_TIMEOUT_MS - 500;
const OPERATOR_KEY = 'operator-key-hardening-0123456789';
const UNKNOWN_JOB = 'job-01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_DOCUMENT = 'doc-0123456789abcdef0123456789abcdef';
const ACME_AUTH = `Authorization: Bearer ${TENANTS.acme.key}`;
const OPERATOR_AUTH = `Authorization: Bearer ${OPERATOR_KEY}`;

let stack: Stack;
let api: ProcessHandle;

before(async () => {
  stack = new Stack({ env: { SWITCHYARD_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), SWITCHYARD_OPERATOR_KEYS: OPERATOR_KEY } });
  api = await stack.startApi();
});
after(() => stack?.stop());

interface RawAnswer {
  status: number;
  headers: Headers;
  body: any;
  /** Everything the server wrote on the connection, to count its answers. */
  text: string;
}

/** A request's head (with Host) and the first part of its body, as sent on the wire. */
function requestStart(head: string[], firstBytes = ''): string {
  const { host } = new URL(stack.apiUrl);
  return `${[...head, `Host: ${host}`].join('\r\n')}\r\n\r\n${firstBytes}`;
}

/** A connection that has sent `start`, and gets what the server writes. */
function openConnection(start: string) {
  const { hostname, port } = new URL(stack.apiUrl);
  const socket = net.connect(Number(port), hostname);
  let received = '';
  const watchers = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
    for (const watch of watchers) watch();
  });
  socket.on('error', () => {}); // a reset once the answer is in is fine; no answer is not, and the waits say so
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(start);

  /** The first whole answer on the connection, or a failure naming what was (not) received within `ms`. */
  const answer = (ms: number) =>
    new Promise<RawAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no whole answer within ${ms} ms; received: ${JSON.stringify(received)}`)), ms);
      const watch = () => {
        const split = received.indexOf('\r\n\r\n');
        if (split < 0) return;
        const [statusLine = '', ...lines] = received.slice(0, split).split('\r\n');
        const headers = new Headers(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        const body = Buffer.from(received.slice(split + 4));
        if (body.length < Number(headers.get('content-length'))) return;
        clearTimeout(timer);
        watchers.delete(watch);
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body.toString('utf8')), text: received });
      };
      watchers.add(watch);
      watch();
    });
  return { socket, closed, answer, received: () => received };
}

/** Rejects if `work` takes longer than `ms`. */
async function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function assertProblem(answer: { status: number; headers: Headers; body: any }, status: number, code: string): any {
  const context = `${answer.status} ${JSON.stringify(answer.body)}`;
  assert.equal(answer.status, status, context);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, context);
  assert.equal(answer.body.code, code, context);
  return answer.body;
}

// Each waits out a request timeout: side by side.
describe('a body announced larger than the limit', { concurrency: true }, () => {
  // Every route that takes a body, and cancel, which takes none; the upload's limit is the document limit.
  const routes: [string, string][] = [
    ['/v1/jobs', ACME_AUTH],
    ['/v1/jobs/retry', ACME_AUTH],
    [`/v1/jobs/${UNKNOWN_JOB}/retry`, ACME_AUTH],
    [`/v1/jobs/${UNKNOWN_JOB}/review`, ACME_AUTH],
    [`/v1/jobs/${UNKNOWN_JOB}/cancel`, ACME_AUTH],
    ['/v1/conversations', ACME_AUTH],
    ['/v1/conversations/c1/messages', ACME_AUTH],
    ['/v1/documents', ACME_AUTH],
    ['/v1/pools/local/pause', OPERATOR_AUTH],
    ['/v1/pools/local/resume', OPERATOR_AUTH],
  ];
  for (const [route, auth] of routes) {
    test(`POST ${route} announcing 50,000,000 bytes and sending 5 is 413 at once, and the connection ends with the request timeout`, async () => {
      const conn = openConnection(
        requestStart([`POST ${route} HTTP/1.1`, auth, 'Content-Type: application/json', 'Content-Length: 50000000'], '{"a":'),
      );
      const answer = await conn.answer(AT_ONCE_MS);
      assertProblem(answer, 413, 'payload-too-large');
      await within(TIMEOUT_ANSWER_MS, conn.closed, 'the connection closed');
      assert.equal(conn.received().match(/HTTP\/1\.1 /g)?.length, 1, `one answer only: ${conn.received()}`);
    });
  }

  test('a body that does come after an early 413 is read off, and the connection serves the next request', async () => {
    const body = 'x'.repeat(2 * 1024 * 1024);
    const conn = openConnection(
      requestStart(['POST /v1/jobs HTTP/1.1', ACME_AUTH, 'Content-Type: application/json', `Content-Length: ${body.length}`]),
    );
    assertProblem(await conn.answer(AT_ONCE_MS), 413, 'payload-too-large');
    conn.socket.write(body);
    conn.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await within(TIMEOUT_ANSWER_MS, conn.closed, 'the second answer');
    assert.match(conn.received(), /HTTP\/1\.1 413[\s\S]*HTTP\/1\.1 200[\s\S]*"status":"ok"/);
  });
});

describe('slow requests', () => {
  test('a body that stops arriving is 408 request-timeout once the request timeout passes, and the connection is closed', async () => {
    const conn = openConnection(
      requestStart(['POST /v1/jobs HTTP/1.1', ACME_AUTH, 'Content-Type: application/json', 'Content-Length: 100'], '{"type":'),
    );
    const startedAt = Date.now();
    assertProblem(await conn.answer(TIMEOUT_ANSWER_MS), 408, 'request-timeout');
    assert.ok(Date.now() - startedAt >= REQUEST_TIMEOUT_MS - 100, 'not before the timeout');
    await within(TIMEOUT_ANSWER_MS, conn.closed, 'the connection closed');
  });

  test('headers that stop arriving are 408 request-timeout too', async () => {
    const conn = openConnection(`GET /v1/jobs HTTP/1.1\r\n${ACME_AUTH}\r\n`);
    assertProblem(await conn.answer(TIMEOUT_ANSWER_MS), 408, 'request-timeout');
    await within(TIMEOUT_ANSWER_MS, conn.closed, 'the connection closed');
  });

  test('a client that hangs up in the middle of its body leaves the API well', async () => {
    const conn = openConnection(
      requestStart(['POST /v1/jobs HTTP/1.1', ACME_AUTH, 'Content-Type: application/json', 'Content-Length: 1000'], '{"type":'),
    );
    conn.socket.destroy();
    await conn.closed;
    assert.equal((await stack.call('GET', '/healthz', { as: null })).status, 200);
  });
});

describe('JSON nesting', () => {
  /** `levels` objects inside each other, as JSON text (JSON.stringify itself would overflow the stack). */
  const nested = (levels: number) => `${'{"a":'.repeat(levels)}"deep"${'}'.repeat(levels)}`;

  test('message metadata nested 10,000 levels is 400 invalid-request, not a stack overflow', async () => {
    const answer = await stack.call('POST', '/v1/conversations/c1/messages', { rawBody: `{"text":"hi","metadata":${nested(10_000)}}` });
    const { errors } = assertProblem(answer, 400, 'invalid-request');
    assert.deepEqual(errors, [{ path: 'body', message: `nested deeper than ${MAX_JSON_DEPTH} levels` }]);
  });

  test('a job input nested 10,000 arrays deep is 400 invalid-request', async () => {
    const rawBody = `{"type":"inference","task":"sentiment","input":{"text":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
    assertProblem(await stack.call('POST', '/v1/jobs', { rawBody }), 400, 'invalid-request');
  });

  test(`a body ${MAX_JSON_DEPTH} levels deep passes the depth check, and is judged by its fields`, async () => {
    // The body is the first level, `extra` and what it holds the other 63.
    const rawBody = `{"type":"inference","task":"sentiment","input":{"text":"fine"},"extra":${nested(MAX_JSON_DEPTH - 1)}}`;
    const { errors } = assertProblem(await stack.call('POST', '/v1/jobs', { rawBody }), 400, 'unknown-field');
    assert.equal(errors[0].path, 'body');
  });
});

describe("a job input that outgrows Temporal's payload limit", () => {
  test('a chat job of 1,000,000 invalid UTF-8 bytes (3 MB once replaced) is 413, and nothing starts', async () => {
    // Five messages of 200,000 bytes that are no UTF-8: the body is under the 1 MiB body limit.
    const content = Buffer.alloc(200_000, 0xff);
    const message = Buffer.concat([Buffer.from('{"role":"user","content":"'), content, Buffer.from('"}')]);
    const messages = Array.from({ length: 5 }, () => message);
    const rawBody = Buffer.concat([
      Buffer.from('{"type":"inference","task":"chat","input":{"messages":['),
      ...messages.flatMap((m, i) => (i ? [Buffer.from(','), m] : [m])),
      Buffer.from(']}}'),
    ]);
    assert.ok(rawBody.length < 1024 * 1024);
    const answer = await stack.call('POST', '/v1/jobs', { rawBody, headers: { 'content-type': 'application/json' } });
    const problem = assertProblem(answer, 413, 'payload-too-large');
    assert.ok(problem.inputBytes > 3_000_000 && problem.maxInputBytes === 1536 * 1024, JSON.stringify({ ...problem, detail: undefined }));
    assert.match(problem.detail, /SWITCHYARD_MAX_JOB_INPUT_BYTES/);
    const list = await stack.call('GET', '/v1/jobs');
    assert.deepEqual(list.body.items, [], 'no job was started');
  });
});

describe('query parameters', () => {
  const values: Record<string, string> = { id: UNKNOWN_JOB, cid: 'c1', mid: '1', name: 'local' };
  test('an unknown query parameter is 400 unknown-field on every /v1 operation, as an unknown body field is', async () => {
    const doc = (await stack.call('GET', '/openapi.json', { as: null })).body;
    let checked = 0;
    for (const [template, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      if (!template.startsWith('/v1/')) continue;
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) =>
        template.startsWith('/v1/documents') ? UNKNOWN_DOCUMENT : values[name]!,
      );
      for (const method of Object.keys(item)) {
        const who = path.startsWith('/v1/pools') ? { as: null, headers: { authorization: `Bearer ${OPERATOR_KEY}` } } : {};
        const answer = await stack.call(method.toUpperCase(), `${path}?foo=1`, who);
        const { errors } = assertProblem(answer, 400, 'unknown-field');
        assert.match(errors[0].path, /^query/, `${method} ${path}`);
        checked++;
      }
    }
    assert.ok(checked >= 20, `${checked} operations`);
  });

  test('GET /v1/jobs/:id?foo=1 is 400 (it was 200)', async () => {
    assertProblem(await stack.call('GET', `/v1/jobs/${UNKNOWN_JOB}?foo=1`), 400, 'unknown-field');
  });
});

describe('hardening headers', () => {
  const expected: Record<string, RegExp> = {
    'x-content-type-options': /^nosniff$/,
    'x-frame-options': /^SAMEORIGIN$/,
    'strict-transport-security': /max-age=\d+/,
    'referrer-policy': /^no-referrer$/,
    'cross-origin-opener-policy': /^same-origin$/,
    'cross-origin-resource-policy': /^same-origin$/,
  };
  for (const [what, path, as] of [
    ['an answer', '/v1/jobs', 'acme'],
    ['a problem', `/v1/jobs/${UNKNOWN_JOB}?foo=1`, 'acme'],
    ['a 401', '/v1/jobs', null],
    ['/healthz', '/healthz', null],
  ] as const) {
    test(`${what} carries them, with a policy that loads nothing`, async () => {
      const answer = await stack.call('GET', path, { as });
      for (const [name, value] of Object.entries(expected)) assert.match(answer.headers.get(name) ?? '', value, name);
      assert.equal(answer.headers.get('content-security-policy'), "default-src 'none';frame-ancestors 'none'");
      assert.equal(answer.headers.get('x-powered-by'), null);
    });
  }

  test('/docs keeps the policy its page needs', async () => {
    const answer = await stack.call('GET', '/docs', { as: null });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-security-policy'), DOCS_CSP);
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
  });
});

test('nothing above was a 5xx or an unhandled error', async () => {
  assertProblem(await stack.call('GET', '/end-of-the-file', { as: null }), 404, 'not-found');
  await eventually('the last request logged', () => api.lines.find((l) => l.includes('"path":"/end-of-the-file"')));
  const bad = api.lines.filter((l) => /"status":5\d\d|unhandled error/.test(l));
  assert.deepEqual(bad, []);
});

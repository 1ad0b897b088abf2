import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type OutboundPolicy, UrlRefusedError } from '../../src/net/outbound';
import { deliverWebhook, signWebhook, verifyWebhook, WebhookFailedError, WebhookVerificationError } from '../../src/net/webhook';

const SECRET = 'a-webhook-secret-of-some-length';
const POLICY: OutboundPolicy = { allow: ['127.0.0.1/32'], timeoutMs: 5000, maxBytes: 1024 * 1024, maxRedirects: 3 };
const now = Math.floor(Date.now() / 1000);
const rejectsWith = (reason: RegExp) => (err: unknown) => err instanceof WebhookVerificationError && reason.test(err.reason);

describe('signing and verifying', () => {
  const message = { id: 'msg_job-01ABC', timestamp: now, body: '{"type":"document.completed","jobId":"job-01ABC"}' };

  it('signs as Standard Webhooks does: v1, base64 HMAC-SHA256 of id.timestamp.body', () => {
    const headers = signWebhook(SECRET, message);
    const expected = createHmac('sha256', SECRET).update(`${message.id}.${message.timestamp}.${message.body}`).digest('base64');
    assert.deepEqual(headers, { 'webhook-id': message.id, 'webhook-timestamp': String(now), 'webhook-signature': `v1,${expected}` });
    assert.equal(verifyWebhook(SECRET, headers, message.body), true);
    assert.equal(verifyWebhook(SECRET, headers, Buffer.from(message.body)), true);
  });

  it('rejects a tampered body, another id, a wrong secret, an old or future timestamp and missing headers', () => {
    const headers = signWebhook(SECRET, message);
    assert.throws(
      () => verifyWebhook(SECRET, headers, message.body.replace('job-01ABC', 'job-01ABD')),
      rejectsWith(/no signature matches/),
    );
    assert.throws(
      () => verifyWebhook(SECRET, { ...headers, 'webhook-id': 'msg_other' }, message.body),
      rejectsWith(/no signature matches/),
    );
    assert.throws(() => verifyWebhook('another-secret-of-some-length', headers, message.body), rejectsWith(/no signature matches/));
    const old = signWebhook(SECRET, { ...message, timestamp: now - 301 });
    assert.throws(() => verifyWebhook(SECRET, old, message.body), rejectsWith(/more than 300 s from now/));
    assert.equal(verifyWebhook(SECRET, old, message.body, 600), true, 'within a wider tolerance');
    const future = signWebhook(SECRET, { ...message, timestamp: now + 3600 });
    assert.throws(() => verifyWebhook(SECRET, future, message.body), rejectsWith(/more than 300 s/));
    assert.throws(() => verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': '12.5' }, message.body), rejectsWith(/not unix seconds/));
    const { 'webhook-signature': _, ...unsigned } = headers;
    assert.throws(() => verifyWebhook(SECRET, unsigned, message.body), rejectsWith(/are all needed/));
    assert.throws(
      () => verifyWebhook(SECRET, { ...headers, 'webhook-signature': 'v1,short' }, message.body),
      rejectsWith(/no signature matches/),
    );
  });

  it('accepts any one of several signatures, as while a secret is rotated', () => {
    const headers = signWebhook(SECRET, message);
    const rotated = { ...headers, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${headers['webhook-signature']}` };
    assert.equal(verifyWebhook(SECRET, rotated, message.body), true);
  });
});

describe('delivering to a real receiver', () => {
  type Received = { headers: http.IncomingHttpHeaders; body: string };
  const received: Received[] = [];
  /** What the receiver answers next: status and headers; it verifies every request it gets. */
  let answer: { status: number; headers?: Record<string, string>; body?: string } = { status: 204 };
  const receiver = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(parts).toString() });
      res.writeHead(answer.status, answer.headers).end(answer.body);
    });
  });
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });
  after(() => receiver.close());

  const event = { type: 'document.completed', jobId: 'job-01ABC', tenant: 'acme', result: { sha256: 'ab'.repeat(32), size: 1234 } };
  const deliver = (overrides: Partial<Parameters<typeof deliverWebhook>[0]> = {}) =>
    deliverWebhook({ url, id: 'msg_job-01ABC', event, secret: SECRET, policy: POLICY, ...overrides });

  it('POSTs signed JSON that the receiver verifies with verifyWebhook; a 2xx is delivered', async () => {
    answer = { status: 204 };
    assert.deepEqual(await deliver(), { status: 204 });
    const got = received.at(-1)!;
    assert.equal(got.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(got.body), event);
    assert.equal(verifyWebhook(SECRET, got.headers, got.body), true);
    assert.equal(got.headers['webhook-id'], 'msg_job-01ABC');
  });

  it('a 4xx is permanent; 408, 429 and 5xx are retryable, with Retry-After in ms', async () => {
    const cases: [number, Record<string, string> | undefined, boolean, number | undefined][] = [
      [400, undefined, false, undefined],
      [410, undefined, false, undefined],
      [408, undefined, true, undefined],
      [429, { 'retry-after': '7' }, true, 7000],
      [503, { 'retry-after': '99999' }, true, 3_600_000],
      [500, undefined, true, undefined],
    ];
    for (const [status, headers, retryable, retryAfterMs] of cases) {
      answer = { status, headers, body: `nope ${status}` };
      await assert.rejects(deliver(), (err: unknown) => {
        assert.ok(err instanceof WebhookFailedError, String(err));
        assert.equal(err.status, status);
        assert.equal(err.retryable, retryable, `${status} retryable`);
        assert.equal(err.retryAfterMs, retryAfterMs, `${status} Retry-After`);
        assert.match(err.message, new RegExp(`HTTP ${status}: nope ${status}`));
        return true;
      });
    }
  });

  it('does not follow a redirect: the event would be re-sent elsewhere, or lost as a GET', async () => {
    answer = { status: 301, headers: { location: 'http://127.0.0.1:1/elsewhere' } };
    const before = received.length;
    await assert.rejects(deliver(), (err: unknown) => err instanceof WebhookFailedError && !err.retryable && /redirect/.test(err.message));
    assert.equal(received.length, before + 1, 'only the one request');
  });

  it('refuses a receiver on a private address through the SSRF guard', async () => {
    const before = received.length;
    await assert.rejects(
      deliver({ policy: { ...POLICY, allow: [] } }),
      (err: unknown) => err instanceof UrlRefusedError && /loopback/.test(err.reason),
    );
    assert.equal(received.length, before);
  });

  it('keeps the id and signs each attempt with its own timestamp', async () => {
    answer = { status: 200 };
    /** Delivers once; the request's timestamp must be a second of its delivery. */
    const attempt = async () => {
      const from = Math.floor(Date.now() / 1000);
      await deliver();
      const to = Math.floor(Date.now() / 1000);
      const [got] = received.slice(-1);
      const timestamp = Number(got!.headers['webhook-timestamp']);
      assert.ok(timestamp >= from && timestamp <= to, `signed at ${timestamp}, delivered between ${from} and ${to}`);
      return got!;
    };
    const first = await attempt();
    const second = await attempt();
    assert.equal(first.headers['webhook-id'], second.headers['webhook-id']);
  });
});

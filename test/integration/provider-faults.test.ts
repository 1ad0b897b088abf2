/**
 * How jobs on an OpenAI-compatible pool live through provider faults, end to end: real worker and API
 * processes, the fake OpenAI server scripted to fail. Retries follow the provider's signals (5xx,
 * 429 + Retry-After), rejections fail at once, and deadlines and attempt timeouts end hung calls.
 *
 * The pool talks to the fake server through a small TCP relay that notes when the client hangs up on
 * a request that was never answered: that is how a test sees a hung HTTP call being aborted.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI, type Fault } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const RETRY = { initialIntervalMs: 100, maxIntervalMs: 1000, maxAttempts: 5 };

let openai: FakeOpenAI;
let relay: HangUpRelay;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  relay = await startHangUpRelay(openai.url);
  stack = await new Stack({
    pools: { remote: { provider: 'openai', concurrency: 4, baseUrl: relay.url, model: 'fake-model', requestTimeoutMs: 60_000 } },
  }).start();
});
after(async () => {
  await stack?.stop();
  await relay?.close();
  await openai?.close();
});
beforeEach(() => openai.script([]));

/**
 * Submits a chat job whose message carries a unique tag, so the fake server's requests for this job
 * can be told apart from any other's, and scripts the fake server's next answers.
 */
async function submitChat(faults: Fault[], spec: Record<string, unknown> = {}): Promise<{ id: string; tag: string }> {
  openai.script(faults);
  const tag = `job-tag-${randomUUID()}`;
  const { status, body } = await stack.call('POST', '/v1/jobs', {
    body: { type: 'inference', task: 'chat', pool: 'remote', input: { messages: [{ role: 'user', content: tag }] }, retry: RETRY, ...spec },
  });
  assert.equal(status, 202, JSON.stringify(body));
  return { id: body.id, tag };
}

const requestsFor = (tag: string) => openai.requestsMentioning(tag);

/**
 * Runs a later job to its end, so that a check that nothing more came for an earlier one follows a request the
 * fake server got after it, not a guess of how long a stray request would take.
 */
async function aLaterJobDone(): Promise<void> {
  const { id, tag } = await submitChat([]);
  assert.equal((await stack.waitForJob(id, ['succeeded', 'failed'])).status, 'succeeded');
  assert.equal(requestsFor(tag).length, 1);
}

describe('retryable provider failures', () => {
  test('500 then 200: the job succeeds on attempt 2', async () => {
    const { id, tag } = await submitChat([{ status: 500 }]);
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    assert.equal(job.attempts, 2);
    assert.equal(job.result.output.message.content, `echo: ${tag}`);
    assert.equal(requestsFor(tag).length, 2);
  });

  test('429 with Retry-After: 2 waits the provider’s 2 s, not the 100 ms backoff, showing queued meanwhile', async () => {
    const { id, tag } = await submitChat([{ status: 429, retryAfter: '2', body: { error: { message: 'Rate limit reached' } } }]);

    // Between the attempts the job waits for its retry: queued, one attempt made, and why.
    const waiting = await eventually('the job to show its rate-limited first attempt', async () => {
      const { body } = await stack.call('GET', `/v1/jobs/${id}`);
      return body.lastFailure ? body : undefined;
    });
    assert.equal(requestsFor(tag).length, 1, 'the GET must land inside the Retry-After wait');
    assert.equal(waiting.status, 'queued');
    assert.equal(waiting.attempts, 1);
    assert.equal(waiting.lastFailure.type, 'ProviderRateLimited');
    assert.match(waiting.lastFailure.message, /Rate limit reached/);

    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    assert.equal(job.attempts, 2);
    const [first, second] = requestsFor(tag);
    assert.ok(first && second && requestsFor(tag).length === 2);
    const gap = second.receivedAt - first.receivedAt;
    console.log(`rate-limited retry came ${gap} ms after the first request`);
    assert.ok(gap >= 1900 && gap < 6000, `second request came ${gap} ms after the first; Retry-After asked for 2000`);
  });

  test('5xx every time with maxAttempts 3: failed after exactly 3 requests', async () => {
    const { id, tag } = await submitChat(
      Array.from({ length: 5 }, () => ({ status: 503 })),
      { retry: { ...RETRY, maxAttempts: 3 } },
    );
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'failed');
    assert.equal(job.attempts, 3);
    assert.equal(job.lastFailure.type, 'ProviderUnavailable');
    assert.match(job.lastFailure.message, /HTTP 503/);
    await aLaterJobDone(); // nothing may still be on its way
    assert.equal(requestsFor(tag).length, 3);
  });
});

describe('rejections', () => {
  test('400 with an OpenAI error body: failed at once, with the provider’s message', async () => {
    const message = "Invalid value for 'temperature': must be at most 2.";
    const { id, tag } = await submitChat([
      { status: 400, body: { error: { message, type: 'invalid_request_error', param: 'temperature', code: null } } },
    ]);
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'failed');
    assert.equal(job.attempts, 1);
    assert.equal(job.lastFailure.type, 'ProviderRejected');
    assert.ok(job.lastFailure.message.includes(message), job.lastFailure.message);
    await aLaterJobDone();
    assert.equal(requestsFor(tag).length, 1);
  });
});

describe('timeouts', () => {
  test('past its deadline a hung job is timed_out, and the hung HTTP call is aborted', async () => {
    const { id, tag } = await submitChat([{ hang: true }], { timeouts: { deadlineMs: 1500, attemptMs: 60_000 } });
    await eventually('the request to reach the fake server', () => requestsFor(tag)[0]);

    const job = await stack.waitForJob(id, ['timed_out', 'succeeded', 'failed', 'cancelled']);
    assert.equal(job.status, 'timed_out', JSON.stringify(job.lastFailure));
    assert.equal(job.lastFailure.type, 'JobDeadlineExceeded');
    assert.equal(job.result, null);
    const took = Date.parse(job.finishedAt) - Date.parse(job.createdAt);
    assert.ok(took >= 1500 && took < 8000, `the job ended ${took} ms after it was created; its deadline was 1500`);

    // The activity learns through its heartbeat that it is no longer wanted, and aborts the call.
    const hangUp = await eventually('the hung request to be aborted', () => relay.hangUps.find((h) => h.request.includes(tag)));
    const abortedAfter = hangUp.at - Date.parse(job.finishedAt);
    console.log(`hung request aborted ${abortedAfter} ms after the job timed out`);
    assert.ok(abortedAfter < 10_000, `aborted ${abortedAfter} ms after the job ended`);
    assert.equal(requestsFor(tag).length, 1);
  });

  test('an attempt that hangs past attemptMs is retried, and the job succeeds on attempt 2', async () => {
    const { id, tag } = await submitChat([{ hang: true }], { timeouts: { attemptMs: 1000 } });
    const job = await stack.waitForJob(id, ['succeeded', 'failed', 'timed_out']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    assert.equal(job.attempts, 2);
    const [first, second] = requestsFor(tag);
    assert.ok(first && second && requestsFor(tag).length === 2);
    const gap = second.receivedAt - first.receivedAt;
    assert.ok(gap >= 900 && gap < 6000, `second attempt's request came ${gap} ms after the first; attemptMs was 1000`);
    // The timed-out attempt does not keep its HTTP call open for the pool's 60 s request timeout.
    const hangUp = await eventually('the timed-out attempt’s request to be aborted', () =>
      relay.hangUps.find((h) => h.request.includes(tag)),
    );
    const abortedAfter = hangUp.at - Date.parse(job.finishedAt);
    assert.ok(abortedAfter < 10_000, `aborted ${abortedAfter} ms after the job ended`);
  });
});

interface HangUpRelay {
  /** The fake server's base URL, through the relay. */
  url: string;
  /** Each time a client closed its connection while its last request was still unanswered. */
  hangUps: { at: number; request: string }[];
  close(): Promise<void>;
}

/** A TCP relay to `target` that records clients hanging up on unanswered requests. */
async function startHangUpRelay(target: string): Promise<HangUpRelay> {
  const upstreamUrl = new URL(target);
  const hangUps: HangUpRelay['hangUps'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(upstreamUrl.port), upstreamUrl.hostname);
    let unanswered = ''; // what the client sent since the server last answered
    let upstreamClosed = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.once('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      unanswered += chunk.toString('utf8');
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      unanswered = '';
      client.write(chunk);
    });
    client.once('close', () => {
      if (unanswered && !upstreamClosed) hangUps.push({ at: Date.now(), request: unanswered });
      upstream.destroy();
    });
    upstream.once('close', () => {
      upstreamClosed = true;
      client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${upstreamUrl.pathname}`,
    hangUps,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

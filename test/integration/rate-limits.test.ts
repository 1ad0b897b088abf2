/**
 * Fleet-wide pool limits with real worker processes (two per pool) and the fake OpenAI server as the
 * provider, whose request log is the measure: requests per second (Temporal's task-queue rate limit)
 * and tokens per minute (the limiter workflow). The two run side by side to keep the file near a minute.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { temporal as temporalProto } from '@temporalio/proto';
import { startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually, sleep } from '../../testkit/wait';
import { limiterWorkflowId, poolTaskQueue } from '../../src/temporal/task-queues';
import { limiterStateQuery } from '../../src/inference/limiter-contract';

const RPS = 4;
const TOKENS_PER_MINUTE = 1200;
/**
 * How long the token test watches the provider from its first call at least: the first minute and a few seconds of the
 * next. It watches on until a call has gone again after the first minute, however long a busy machine takes to get there.
 */
const TOKEN_TEST_MS = 67_000;

let rpsProvider: FakeOpenAI;
let tokenProvider: FakeOpenAI;
let stack: Stack;

before(async () => {
  [rpsProvider, tokenProvider] = await Promise.all([startFakeOpenAI(), startFakeOpenAI()]);
  const pool = (url: string) => ({ provider: 'openai' as const, baseUrl: url, model: 'fake-model', concurrency: 4 });
  stack = new Stack({
    pools: {
      // Without the breaker, so the provider sees exactly what the queue dispatches (see the README on how they combine).
      rps: { ...pool(rpsProvider.url), rateLimit: { requestsPerSecond: RPS }, breaker: { enabled: false } },
      tokens: { ...pool(tokenProvider.url), rateLimit: { tokensPerMinute: TOKENS_PER_MINUTE } },
    },
  });
  // Two worker processes per pool: the limits hold across processes, not per process. The rps pool's
  // start in its test, once its backlog is queued.
  await Promise.all([
    stack.worker(['--workflows']),
    stack.startApi(),
    stack.worker(['--pool', 'tokens']),
    stack.worker(['--pool', 'tokens']),
  ]);
});
after(async () => {
  await stack?.stop();
  await Promise.all([rpsProvider?.close(), tokenProvider?.close()]);
});

/** Submits `n` chat jobs on `pool`, all at once; each message carries `words` words and a tag. */
async function submitChats(pool: string, n: number, words: number, extra: Record<string, unknown> = {}): Promise<string[]> {
  const text = (i: number) => `job-${i}-${randomUUID()} ${Array.from({ length: words }, (_, w) => `word${w}`).join(' ')}`;
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const { status, body } = await stack.call('POST', '/v1/jobs', {
        body: { type: 'inference', task: 'chat', pool, input: { messages: [{ role: 'user', content: text(i) }] }, ...extra },
      });
      assert.equal(status, 202, JSON.stringify(body));
      return body.id as string;
    }),
  );
}

/**
 * The most calls any stretch of the log holds beyond `perSecond` × its length: a token bucket's burst.
 * Calls in any window of T seconds ≤ burst + perSecond × T.
 */
function burstBeyond(times: number[], perSecond: number): number {
  let most = 0;
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) most = Math.max(most, j - i + 1 - (perSecond * (times[j]! - times[i]!)) / 1000);
  }
  return most;
}

/** Calls per second as the least-squares slope of call count over time: the rate the queue settles at. */
function sustainedRate(times: number[]): number {
  const n = times.length;
  const meanT = times.reduce((a, t) => a + t, 0) / n;
  const meanI = (n - 1) / 2;
  const cov = times.reduce((a, t, i) => a + (t - meanT) * (i - meanI), 0);
  const varT = times.reduce((a, t) => a + (t - meanT) ** 2, 0);
  return (cov / varT) * 1000;
}

/** The most requests (or tokens, with `weight`) received in any window of `windowMs`, sliding over every request. */
function busiestWindow(requests: RecordedRequest[], windowMs: number, weight: (r: RecordedRequest) => number = () => 1): number {
  const sorted = [...requests].sort((a, b) => a.receivedAt - b.receivedAt);
  let best = 0;
  for (let i = 0, j = 0, sum = 0; i < sorted.length; i++) {
    sum += weight(sorted[i]!);
    while (sorted[i]!.receivedAt - sorted[j]!.receivedAt >= windowMs) sum -= weight(sorted[j++]!);
    best = Math.max(best, sum);
  }
  return best;
}

describe('pool limits', { concurrency: true }, () => {
  test(`requests per second: 2 worker processes with 8 slots between them hold ${RPS}/s (+10 %) after a short burst`, async () => {
    const jobs = 48;
    const ids = await submitChats('rps', jobs, 5);
    // A backlog first, so what follows is the limit at work, not the pace of submissions.
    const temporal = await stack.temporal();
    await eventually('every call queued', async () => {
      const { stats } = await temporal.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: poolTaskQueue(stack.prefix, 'rps') },
        taskQueueType: temporalProto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        reportStats: true,
      });
      return Number(stats?.approximateBacklogCount ?? 0) >= jobs || undefined;
    });
    await Promise.all([stack.worker(['--pool', 'rps']), stack.worker(['--pool', 'rps'])]);
    await Promise.all(ids.map((id) => stack.waitForJob(id, ['succeeded'])));
    const calls = rpsProvider.requests.map((r) => r.receivedAt).sort((a, b) => a - b);
    assert.equal(calls.length, jobs);
    // The bucket's initial burst is bounded below; the rate is measured after it (2 s worth of calls).
    const sustained = sustainedRate(calls.slice(2 * RPS));
    const average = ((calls.length - 1) * 1000) / (calls.at(-1)! - calls[0]!);
    const burst = burstBeyond(calls, RPS * 1.1);
    console.log(
      `rps: ${jobs} calls; sustained ${sustained.toFixed(2)}/s, whole run ${average.toFixed(2)}/s; burst beyond ${RPS * 1.1}/s: ${burst.toFixed(1)} calls`,
    );
    assert.ok(sustained <= RPS * 1.1, `sustained ${sustained.toFixed(2)} calls/s; limit ${RPS}`);
    assert.ok(sustained >= RPS * 0.8, `sustained ${sustained.toFixed(2)} calls/s: the limit, not something else, should set the pace`);
    // Temporal's queue limiter is a token bucket that starts full: about two seconds' worth may go at once.
    assert.ok(burst <= 2 * RPS + 1, `a stretch of the log held ${burst.toFixed(1)} calls beyond ${RPS * 1.1}/s`);
  });

  test(`tokens per minute: 2 worker processes under load, ${TOKEN_TEST_MS / 1000} s from the first call; no 60-second window of the provider’s log holds more than ${TOKENS_PER_MINUTE}`, async () => {
    // Each call: ~55 tokens by the provider's count, ~135 estimated (chars / 4 + overhead + maxTokens).
    // 60 of them want ~3300 tokens: more than the first minute allows, and than the test's 68 s.
    const started = Date.now();
    const ids = await submitChats('tokens', 60, 30, { maxTokens: 20, timeouts: { attemptMs: 180_000 } });
    const firstCall = await eventually('the first call to reach the provider', () => tokenProvider.requests[0]?.receivedAt);
    await sleep(firstCall + TOKEN_TEST_MS - Date.now());
    await eventually('a call once the first minute’s reservations have left the window', () =>
      tokenProvider.requests.find((r) => r.status === 200 && r.receivedAt >= firstCall + 60_000),
    );

    const answered = tokenProvider.requests.filter((r) => r.status === 200);
    const tokensOf = (r: RecordedRequest) => r.usageTokens ?? 0;
    const busiestMinute = busiestWindow(answered, 60_000, tokensOf);
    const first = Math.min(...answered.map((r) => r.receivedAt));
    const firstMinute = answered.filter((r) => r.receivedAt < first + 60_000);
    const later = answered.filter((r) => r.receivedAt >= first + 60_000);
    const total = answered.reduce((n, r) => n + tokensOf(r), 0);
    console.log(
      `tokens: ${answered.length} calls, ${total} tokens in ${((Date.now() - started) / 1000).toFixed(0)} s; busiest 60 s held ${busiestMinute}; ` +
        `first minute ${firstMinute.length} calls / ${firstMinute.reduce((n, r) => n + tokensOf(r), 0)} tokens; after it ${later.length} calls`,
    );
    assert.ok(busiestMinute <= TOKENS_PER_MINUTE, `a 60-second window held ${busiestMinute} tokens; the limit is ${TOKENS_PER_MINUTE}`);
    assert.ok(
      busiestMinute >= TOKENS_PER_MINUTE * 0.7,
      `the busiest minute used ${busiestMinute} tokens: the limiter should let the budget be used`,
    );
    assert.ok(later.length > 0, 'calls went again once the first minute’s reservations left the window');
    assert.ok(answered.length < ids.length, 'the load was more than the limit allowed in this time');

    // Jobs held back are running (waiting for the limiter, heartbeating) or queued — none failed.
    const statuses = await Promise.all(ids.map(async (id) => (await stack.call('GET', `/v1/jobs/${id}`)).body.status as string));
    assert.deepEqual(
      [...new Set(statuses)].filter((s) => !['succeeded', 'running', 'queued'].includes(s)),
      [],
    );
    const limiter = await (await stack.temporal()).workflow.getHandle(limiterWorkflowId(stack.prefix, 'tokens')).query(limiterStateQuery);
    assert.equal(limiter.tokens?.perMinute, TOKENS_PER_MINUTE);
    assert.ok(limiter.tokens.reservedInWindow <= TOKENS_PER_MINUTE);
    await Promise.all(ids.map((id) => stack.call('POST', `/v1/jobs/${id}/cancel`)));
  });
});

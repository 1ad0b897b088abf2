/**
 * The limiter workflow on Temporal's time-skipping test server: grants and waits of the token window
 * across a skipped minute, the breaker opening, going half-open on its own timer and closing on a good
 * probe, a provider's Retry-After holding every call, continue-as-new carrying the state, the worker-side
 * client coalescing concurrent calls, and histories replaying — one recorded before the hold existed too.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { poolSchema } from '../../src/config';
import { LimiterClient } from '../../src/inference/limiter-client';
import { type LimiterBatch, type LimiterSettings, limiterSettingsOf } from '../../src/inference/limiter-state';
import { GRANT_SLACK_MS, WINDOW_MS } from '../../src/inference/token-window';
import { createLogger } from '../../src/logger';
import { limiterExchangeUpdate, limiterStateQuery, type PoolLimiterInput } from '../../src/inference/limiter-contract';
import { poolLimiter } from '../../workflows';
import { startTimeSkipping } from '../../testkit/time-skipping';
import { eventually } from '../../testkit/wait';

const WORKFLOWS_PATH = require.resolve('../../workflows');
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `limiter-${randomUUID()}`;

before(async () => {
  env = await startTimeSkipping();
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: WORKFLOWS_PATH });
  running = worker.run();
});
after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

const settings = (over: { tokensPerMinute?: number; breaker?: Record<string, unknown> } = {}): LimiterSettings =>
  limiterSettingsOf(
    poolSchema.parse({
      provider: 'openai',
      baseUrl: 'http://x',
      model: 'm',
      rateLimit: { tokensPerMinute: over.tokensPerMinute },
      breaker: over.breaker,
    }),
  )!;

async function startLimiter(input: Omit<PoolLimiterInput, 'limiter'>) {
  return env.client.workflow.start(poolLimiter, {
    workflowId: `limiter-${randomUUID()}`,
    taskQueue,
    args: [{ limiter: 'test', ...input }],
  });
}

type Handle = Awaited<ReturnType<typeof startLimiter>>;
const send = (handle: Handle, batch: Omit<LimiterBatch, 'settle'> & Partial<Pick<LimiterBatch, 'settle'>>) =>
  handle.executeUpdate(limiterExchangeUpdate, { args: [{ settle: [], ...batch }] });

test('token window: grants up to the limit, makes the next call wait, and grants it once the minute has passed', async () => {
  const s = settings({ tokensPerMinute: 1000, breaker: { enabled: false } });
  const handle = await startLimiter({ settings: s });
  const first = await send(handle, {
    settings: s,
    admit: [
      { id: 'a', tokens: 700 },
      { id: 'b', tokens: 400 },
    ],
  });
  assert.deepEqual(first[0], { id: 'a', granted: true, probe: false });
  assert.equal(first[1]!.granted, false);
  const retryInMs = 'retryInMs' in first[1]! ? first[1].retryInMs : NaN;
  assert.ok(retryInMs > WINDOW_MS && retryInMs <= WINDOW_MS + GRANT_SLACK_MS, `retry in ${retryInMs} ms`);
  assert.deepEqual((await handle.query(limiterStateQuery)).tokens, { perMinute: 1000, reservedInWindow: 700, available: 300 });

  await env.sleep(WINDOW_MS + GRANT_SLACK_MS);
  // The workflow woke on its own to let the window empty, so the query sees it without traffic.
  assert.deepEqual((await handle.query(limiterStateQuery)).tokens, { perMinute: 1000, reservedInWindow: 0, available: 1000 });
  assert.deepEqual(await send(handle, { settings: s, admit: [{ id: 'b', tokens: 400 }] }), [{ id: 'b', granted: true, probe: false }]);
});

test('breaker: opens on throttling, turns half-open on its own when the Retry-After has passed, closes on a good probe', async () => {
  const s = settings({ breaker: { failureThreshold: 2, minOpenMs: 1000 } });
  const handle = await startLimiter({ settings: s });
  const throttled = (id: string) => ({ id, outcome: 'throttled' as const, tokens: 0, retryAfterMs: 3000 });
  const [waiting] = await send(handle, { settings: s, settle: [throttled('x'), throttled('y')], admit: [{ id: 'a', tokens: 1 }] });
  assert.deepEqual(waiting, { id: 'a', granted: false, retryInMs: 3000, reason: 'breaker open' });
  assert.equal((await handle.query(limiterStateQuery)).breaker.state, 'open');

  await env.sleep(3500);
  const state = await handle.query(limiterStateQuery);
  assert.deepEqual(state.breaker, { enabled: true, state: 'half-open', openUntil: null, recentFailures: 0, opened: 1 });
  const [probe, other] = await send(handle, {
    settings: s,
    admit: [
      { id: 'a', tokens: 1 },
      { id: 'b', tokens: 1 },
    ],
  });
  assert.deepEqual(probe, { id: 'a', granted: true, probe: true });
  assert.equal(other!.granted, false);
  const [resumed] = await send(handle, { settings: s, settle: [{ id: 'a', outcome: 'ok', tokens: 1 }], admit: [{ id: 'b', tokens: 1 }] });
  assert.equal(resumed!.granted, true);
  assert.equal((await handle.query(limiterStateQuery)).breaker.state, 'closed');
});

test("a provider's Retry-After holds every call until it has passed; the process that was told holds its own at once", async () => {
  const s = settings();
  const handle = await startLimiter({ settings: s });
  const [held] = await send(handle, {
    settings: s,
    settle: [{ id: 'x', outcome: 'throttled', tokens: 0, retryAfterMs: 2000 }],
    admit: [{ id: 'a', tokens: 1 }],
  });
  assert.deepEqual(held, { id: 'a', granted: false, retryInMs: 2000, reason: 'provider Retry-After' });
  assert.notEqual((await handle.query(limiterStateQuery)).retryAfterUntil, null);
  await env.sleep(2100);
  assert.equal((await handle.query(limiterStateQuery)).retryAfterUntil, null);
  assert.deepEqual(await send(handle, { settings: s, admit: [{ id: 'a', tokens: 1 }] }), [{ id: 'a', granted: true, probe: false }]);

  const client = new LimiterClient({
    client: env.client,
    workflowId: `limiter-${randomUUID()}`,
    taskQueue,
    limiter: 'test',
    settings: s,
    log: createLogger('error'),
  });
  const beats: unknown[] = [];
  const ctx = { signal: new AbortController().signal, heartbeat: (d?: unknown) => void beats.push(d) };
  (await client.acquire(1, ctx)).settle('throttled', 0, 60_000);
  const abort = new AbortController();
  const next = client.acquire(1, { ...ctx, signal: abort.signal });
  await eventually('the next call to wait for the Retry-After', () =>
    beats.some((d) => (d as { waiting?: string } | undefined)?.waiting === 'provider Retry-After') ? true : undefined,
  );
  abort.abort(new Error('done waiting'));
  await assert.rejects(next, /done waiting/);
  await client.close();
});

test('continue-as-new carries the window and the breaker into the next run', async () => {
  const s = settings({ tokensPerMinute: 1000, breaker: { failureThreshold: 1 } });
  const handle = await startLimiter({ settings: s, maxUpdatesPerRun: 2 });
  const { runId: firstRun } = await handle.describe();
  await send(handle, { settings: s, admit: [{ id: 'a', tokens: 600 }] });
  await send(handle, { settings: s, settle: [{ id: 'gone', outcome: 'unavailable', tokens: 0 }], admit: [] });

  const next = env.client.workflow.getHandle(handle.workflowId);
  const described = await next.describe();
  assert.notEqual(described.runId, firstRun, 'a new run');
  const state = await next.query(limiterStateQuery);
  assert.deepEqual(state.tokens, { perMinute: 1000, reservedInWindow: 600, available: 400 });
  assert.equal(state.breaker.state, 'open');
  assert.equal(state.breaker.opened, 1);
});

test('the worker-side client starts the limiter on first use and coalesces concurrent calls into few updates', async () => {
  const workflowId = `limiter-${randomUUID()}`;
  const s = settings({ tokensPerMinute: 100_000, breaker: { enabled: false } });
  const client = new LimiterClient({ client: env.client, workflowId, taskQueue, limiter: 'test', settings: s, log: createLogger('error') });
  const ctx = { signal: new AbortController().signal, heartbeat: () => undefined };
  const permits = await Promise.all(Array.from({ length: 30 }, () => client.acquire(100, ctx)));
  for (const p of permits) p.settle('ok', 50);
  await client.close();

  const state = await env.client.workflow.getHandle(workflowId).query(limiterStateQuery);
  assert.equal(state.tokens?.reservedInWindow, 30 * 50, 'every call reserved and was reconciled');
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const updates = history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
  console.log(`30 concurrent calls and their settlements took ${updates} updates`);
  assert.ok(updates <= 4, `${updates} updates for 30 calls`);
});

test('a call waiting for the limiter gives up at once when cancelled', async () => {
  const workflowId = `limiter-${randomUUID()}`;
  const s = settings({ breaker: { failureThreshold: 1, minOpenMs: 60_000 } });
  const client = new LimiterClient({ client: env.client, workflowId, taskQueue, limiter: 'test', settings: s, log: createLogger('error') });
  const first = await client.acquire(1, { signal: new AbortController().signal, heartbeat: () => undefined });
  first.settle('unavailable', 1);

  const abort = new AbortController();
  const beats: unknown[] = [];
  const waiting = client.acquire(1, { signal: abort.signal, heartbeat: (d) => void beats.push(d) });
  const rejected = assert.rejects(waiting, /cancelled by the test/);
  await eventually('its heartbeat to say why it waits', () =>
    beats.some((d) => (d as { waiting?: string } | undefined)?.waiting === 'breaker open') ? true : undefined,
  );
  const abortedAt = Date.now();
  abort.abort(new Error('cancelled by the test'));
  await rejected;
  assert.ok(Date.now() - abortedAt < 5000);
  await client.close();
});

test('a recorded limiter history replays without non-determinism', async () => {
  const s = settings({ tokensPerMinute: 500, breaker: { failureThreshold: 1 } });
  const handle = await startLimiter({ settings: s });
  await send(handle, {
    settings: s,
    admit: [
      { id: 'a', tokens: 400 },
      { id: 'b', tokens: 400 },
    ],
  });
  await send(handle, { settings: s, settle: [{ id: 'a', outcome: 'throttled', tokens: 0, retryAfterMs: 2000 }], admit: [] });
  await env.sleep(2500);
  await send(handle, { settings: s, admit: [{ id: 'c', tokens: 10 }] });
  await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, await handle.fetchHistory(), handle.workflowId);
});

test('a limiter run recorded before Retry-Afters held every call replays with the hold patched in', async () => {
  // Recorded by the limiter as it was: a call granted right after a throttled answer with Retry-After: 5 reserved
  // tokens and so set a timer that the hold would not have; its history must still replay.
  const recorded: unknown = JSON.parse(
    fs.readFileSync(path.join(__dirname, '../fixtures/pool-limiter-before-retry-after-hold.json'), 'utf8'),
  );
  await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, recorded, 'limiter-recorded-before-retry-after-hold');
});

/**
 * A provider's Retry-After holds the whole fleet: three worker processes of an OpenAI-compatible pool, and the
 * fake provider answering a fifth of its calls `429 Retry-After: 1`. Whoever got the 429 reports it to the pool's
 * limiter, and from then on no call of any worker goes until the second has passed. Counted from the limiter's
 * own history (its updates, in the order and at the times it applied them) and the provider's log: every 429 was
 * reported, every call the provider saw was one the limiter granted, and none was granted while a Retry-After it
 * had heard of was running. Calls that reach the provider within a second of a 429 can only be calls the limiter
 * had granted before it heard of it: in flight, as nothing can recall them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Admission, LimiterBatch } from '../../src/inference/limiter-state';
import { fetchHistoryDecoded } from '../../src/temporal/decoded';
import { limiterWorkflowId } from '../../src/temporal/task-queues';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const WORKERS = 3;
const SLOTS = 4;
const JOBS = 60;
const RETRY_AFTER_MS = 1000;

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  stack = await new Stack({
    pools: { remote: { provider: 'openai', baseUrl: openai.url, model: 'fake-model', concurrency: SLOTS } },
  }).start();
  for (let i = 1; i < WORKERS; i++) await stack.worker(['--pool', 'remote']);
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

type Event = temporal.api.history.v1.IHistoryEvent;

/** Every run of the limiter workflow, oldest first: it continues as new every so many updates. */
async function limiterHistory(): Promise<Event[]> {
  const client = await stack.temporal();
  const workflowId = limiterWorkflowId(stack.prefix, 'remote');
  const runs: Event[][] = [];
  for (let runId: string | undefined = undefined; ;) {
    const events: Event[] = (await fetchHistoryDecoded(client.workflow.getHandle(workflowId, runId))).events ?? [];
    runs.unshift(events);
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    if (!runId) return runs.flat();
  }
}

const valueOf = <T>(payloads: Payload[] | null | undefined): T => defaultPayloadConverter.fromPayload<T>(payloads![0]!);
const msOf = (e: Event) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);

interface LimiterUpdate {
  /** Workflow time when it was applied: the start of the workflow task that ran it. */
  at: number;
  batch: LimiterBatch;
  admissions: Admission[];
}

/** The limiter's exchanges in the order it applied them, each with its batch and its answers. */
function updatesOf(events: Event[]): LimiterUpdate[] {
  const answers = new Map<string, Admission[]>();
  for (const e of events) {
    const done = e.workflowExecutionUpdateCompletedEventAttributes;
    if (done?.outcome?.success) answers.set(done.meta!.updateId!, valueOf<Admission[]>(done.outcome.success.payloads));
  }
  const updates: LimiterUpdate[] = [];
  let taskStarted = 0;
  for (const e of events) {
    if (e.workflowTaskStartedEventAttributes) taskStarted = msOf(e);
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    if (!accepted) continue;
    const admissions = answers.get(accepted.meta!.updateId!) ?? [];
    updates.push({ at: taskStarted, batch: valueOf<LimiterBatch>(accepted.input!.args!.payloads), admissions });
  }
  return updates;
}

test(
  `a 429 with Retry-After holds every call of ${WORKERS} worker processes to the provider for that long`,
  { timeout: 240_000 },
  async () => {
    openai.randomFaults({ throttled: 0.2, failing: 0, retryAfter: String(RETRY_AFTER_MS / 1000) });
    const retry = { maxAttempts: 20, initialIntervalMs: 100, maxIntervalMs: 1000 };
    const ids = await Promise.all(
      Array.from({ length: JOBS }, async (_, i) => {
        const body = {
          type: 'inference',
          task: 'chat',
          pool: 'remote',
          input: { messages: [{ role: 'user', content: `retry-after ${i} ${randomUUID()}` }] },
          retry,
        };
        const res = await stack.call('POST', '/v1/jobs', { body });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        return res.body.id as string;
      }),
    );
    const jobs = await Promise.all(ids.map((id) => stack.waitForJob(id, ['succeeded', 'failed', 'cancelled', 'timed_out'])));
    openai.randomFaults({ throttled: 0, failing: 0, retryAfter: '1' });
    assert.deepEqual(
      jobs.map((j) => j.status),
      ids.map(() => 'succeeded'),
      JSON.stringify(jobs.find((j) => j.status !== 'succeeded')?.lastFailure),
    );

    const calls = openai.requests.filter((r) => r.path === '/v1/chat/completions');
    const throttled = calls.filter((r) => r.status === 429);
    assert.ok(throttled.length >= 3, `${throttled.length} of ${calls.length} calls throttled`);

    // Every call's outcome reaches the limiter (a success's usage rides along within moments).
    const settledCalls = (updates: LimiterUpdate[]) => updates.flatMap((u) => u.batch.settle).filter((s) => s.outcome !== 'abandoned');
    const updates = await eventually('every call to be settled with the limiter', async () => {
      const read = updatesOf(await limiterHistory());
      return settledCalls(read).length >= calls.length ? read : undefined;
    });
    const settled = updates.flatMap((u) => u.batch.settle);
    const granted = updates.flatMap((u) => u.admissions).filter((a) => a.granted);
    const givenBack = settled.filter((s) => s.outcome === 'abandoned');

    // Every 429 was reported with its Retry-After, and every call the provider saw was granted by the limiter.
    assert.equal(settled.filter((s) => s.outcome === 'throttled' && s.retryAfterMs === RETRY_AFTER_MS).length, throttled.length);
    assert.equal(granted.length - givenBack.length, calls.length, `${granted.length} grants, ${givenBack.length} given back`);

    // No grant while a Retry-After the limiter had heard of was running: a batch's outcomes apply before its admissions.
    let heldUntil = 0;
    const grantedWhileHeld: { at: number; heldForMs: number }[] = [];
    for (const u of updates) {
      for (const s of u.batch.settle)
        if (s.retryAfterMs !== undefined && s.outcome !== 'ok') heldUntil = Math.max(heldUntil, u.at + s.retryAfterMs);
      for (const a of u.admissions) if (a.granted && u.at < heldUntil) grantedWhileHeld.push({ at: u.at, heldForMs: heldUntil - u.at });
    }

    // What the provider saw (the measure of the report that asked for this): calls within a second of a 429 —
    // given the two counts above, each was granted before the limiter heard of that 429.
    const sinceLast429 = (c: (typeof calls)[number]) =>
      Math.min(...throttled.map((t) => c.receivedAt - t.receivedAt).filter((ms) => ms > 0 && ms < RETRY_AFTER_MS));
    const soonAfter = calls.map(sinceLast429).filter((ms) => ms !== Infinity);
    console.log(
      `${calls.length} calls for ${JOBS} jobs, ${throttled.length} answered 429 Retry-After: 1; ${updates.length} limiter updates, ` +
        `${granted.length} grants (${givenBack.length} given back); granted while a Retry-After ran: ${grantedWhileHeld.length}; ` +
        `calls within a second of a 429 by the provider's clock, all in flight when it was reported: ${soonAfter.length}` +
        (soonAfter.length ? ` (at most ${Math.max(...soonAfter)} ms after it)` : ''),
    );
    assert.deepEqual(grantedWhileHeld, [], 'calls sooner than a Retry-After the fleet was told');

    // The attempts the jobs spent are the provider's 429s: waiting for a Retry-After costs none.
    assert.equal(
      jobs.reduce((n, j) => n + (j.attempts as number) - 1, 0),
      throttled.length,
    );
  },
);

/**
 * The pool circuit breaker end to end: two real worker processes of an OpenAI-compatible pool, and the
 * fake provider answering every call `429 Retry-After: 3` for a while. Each Retry-After holds the whole
 * pool; once three throttled answers have come the breaker opens, the pool sends one probe per open
 * period, resumes when a probe succeeds, and every job succeeds. The outage lasts
 * until the breaker has opened and failed its probes, not for a set time, so a busy machine sees the same.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually, sleep } from '../../testkit/wait';
import type { LimiterState } from '../../src/inference/limiter-state';
import { limiterWorkflowId } from '../../src/temporal/task-queues';
import { limiterStateQuery } from '../../src/inference/limiter-contract';

const SLOTS = 4;
const RETRY_AFTER_S = 3;
/** The breaker's defaults: this many throttled answers within WINDOW_MS open it. */
const FAILURE_THRESHOLD = 3;
const WINDOW_MS = 10_000;
/** Probes that fail before the outage ends: each opens the breaker again. */
const FAILED_PROBES = 2;

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  // The breaker's defaults: 3 throttled answers within 10 s open it; one probe.
  stack = await new Stack({
    pools: { remote: { provider: 'openai', baseUrl: openai.url, model: 'fake-model', concurrency: SLOTS } },
  }).start();
  await stack.worker(['--pool', 'remote']);
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

const chat = (content: string) => ({ type: 'inference', task: 'chat', pool: 'remote', input: { messages: [{ role: 'user', content }] } });

async function submit(n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const { status, body } = await stack.call('POST', '/v1/jobs', { body: chat(`breaker job ${i} ${randomUUID()}`) });
      assert.equal(status, 202, JSON.stringify(body));
      return body.id as string;
    }),
  );
}

/**
 * Records the limiter's state every 200 ms until stopped: a log, and what the checks read. None of them needs a sample
 * at a given moment: the breaker opens for seconds at a time, and the test holds it half-open until it has been seen so.
 */
function watchLimiter(): { seen: { at: number; state: LimiterState['breaker'] }[]; stop(): Promise<void> } {
  const seen: { at: number; state: LimiterState['breaker'] }[] = [];
  let running = true;
  const loop = (async () => {
    const handle = (await stack.temporal()).workflow.getHandle(limiterWorkflowId(stack.prefix, 'remote'));
    while (running) {
      seen.push({ at: Date.now(), state: (await handle.query(limiterStateQuery)).breaker });
      await sleep(200);
    }
  })();
  return { seen, stop: () => ((running = false), loop) };
}

test(
  `a burst of 429s through ${FAILED_PROBES} failed probes: the pool backs off, probes, resumes, and every job succeeds`,
  { timeout: 120_000 },
  async () => {
    // One job first, so the limiter workflow exists and the pool is in its steady state.
    const [warm] = await submit(1);
    await stack.waitForJob(warm!, ['succeeded']);
    const watcher = watchLimiter();

    const throttled = { status: 429, retryAfter: String(RETRY_AFTER_S) };
    const outageStart = Date.now();
    openai.failFor(Infinity, throttled);
    const ids = await submit(24);
    // A job held back says so: it is running, and waiting for the breaker rather than calling the provider.
    const held = await eventually('a job to show it waits for the breaker', async () => {
      for (const id of ids) {
        const job = (await stack.call('GET', `/v1/jobs/${id}`)).body;
        if (/breaker/.test(job.waitingFor ?? '')) return job;
      }
      return undefined;
    });
    assert.equal(held.status, 'running');
    await eventually(`the breaker to open, then again after ${FAILED_PROBES} failed probes`, () =>
      (watcher.seen.at(-1)?.state.opened ?? 0) >= 1 + FAILED_PROBES ? true : undefined,
    );
    // The outage ends (failing for no more time). The probe that follows is answered only once the breaker has been
    // seen half-open, waiting for it.
    const release = openai.hold();
    openai.failFor(0, throttled);
    const outageEnd = Date.now();
    await eventually('the breaker to be seen half-open after the outage', () =>
      watcher.seen.some((s) => s.at > outageEnd && s.state.state === 'half-open') ? true : undefined,
    );
    release();
    const jobs = await Promise.all(ids.map((id) => stack.waitForJob(id, ['succeeded', 'failed', 'timed_out'])));
    await watcher.stop();

    const calls = openai.requests.filter((r) => r.receivedAt >= outageStart).sort((a, b) => a.receivedAt - b.receivedAt);
    const during = calls.filter((r) => r.receivedAt < outageEnd);
    const timeline = calls.map((r) => `${((r.receivedAt - outageStart) / 1000).toFixed(2)}s:${r.status}`).join(' ');
    console.log(`provider calls from the start of the outage: ${timeline}`);
    const phases = watcher.seen.map((s, i, all) =>
      i > 0 && all[i - 1]!.state.state === s.state.state ? '' : `${((s.at - outageStart) / 1000).toFixed(1)}s ${s.state.state}`,
    );
    console.log(`breaker: ${phases.filter(Boolean).join(' → ')}`);

    // Every job succeeded, and the only attempts spent were on calls the provider itself throttled:
    // waiting for the breaker cost none.
    assert.deepEqual(
      jobs.map((j) => j.status),
      ids.map(() => 'succeeded'),
      JSON.stringify(jobs.find((j) => j.status !== 'succeeded')),
    );
    const failedAttempts = jobs.reduce((n, j) => n + (j.attempts as number) - 1, 0);
    assert.equal(
      failedAttempts,
      calls.filter((r) => r.status === 429).length,
      `attempts per job: ${jobs.map((j) => j.attempts).join(',')}`,
    );

    // What the provider saw while it was throttling:
    assert.ok(
      during.every((r) => r.status === 429),
      'every call during the outage was answered 429',
    );
    //  1. the calls came in groups: those already admitted when the limiter heard of a group's first 429, then nothing
    //     for its Retry-After — each group began at least the Retry-After after the one before began;
    const groups: (typeof during)[] = [];
    for (const call of during) {
      const last = groups.at(-1);
      if (last && call.receivedAt - last.at(-1)!.receivedAt < 2000) last.push(call);
      else groups.push([call]);
    }
    for (const [i, group] of groups.entries()) {
      if (i === 0) continue;
      const gap = group[0]!.receivedAt - groups[i - 1]![0]!.receivedAt;
      assert.ok(gap >= RETRY_AFTER_S * 1000 - 100, `group ${i + 1} came ${gap} ms after the group before it began`);
    }
    //  2. until the breaker opened (FAILURE_THRESHOLD throttled answers within its window) a group could hold any calls
    //     already admitted; after that, each group was a single probe.
    const opening = groups.findIndex((g, i) => {
      const end = g.at(-1)!.receivedAt;
      return (
        groups
          .slice(0, i + 1)
          .flat()
          .filter((r) => r.receivedAt > end - WINDOW_MS).length >= FAILURE_THRESHOLD
      );
    });
    assert.ok(opening >= 0, `the breaker opened: ${groups.map((g) => g.length).join(', ')} calls per group`);
    const probes = groups.slice(opening + 1);
    assert.deepEqual(
      probes.map((g) => g.length),
      probes.map(() => 1),
      'one probe at a time once the breaker was open',
    );
    const burst = groups.slice(0, opening + 1).flat();
    const mostGroups = Math.floor((outageEnd - outageStart) / (RETRY_AFTER_S * 1000 - 100)) + 1;
    assert.ok(groups.length <= mostGroups, `${groups.length} groups during the outage`);

    // After the outage the next call is a single probe, then the pool resumes.
    const afterOutage = calls.filter((r) => r.receivedAt >= outageEnd);
    assert.ok(afterOutage.every((r) => r.status === 200));
    assert.ok(afterOutage.length >= ids.length - burst.length, `${afterOutage.length} calls after the outage`);
    const states = new Set(watcher.seen.map((s) => s.state.state));
    assert.ok(states.has('open') && states.has('half-open'), `the limiter was seen ${[...states].join(', ')}`);
    const last = watcher.seen.at(-1)!.state;
    assert.equal(last.state, 'closed');
    assert.ok(last.opened >= 1 + probes.length, `opened ${last.opened} times: once, and again after each failed probe`);
  },
);

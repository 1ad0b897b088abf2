/**
 * The pool circuit breaker end to end: two real worker processes of an OpenAI-compatible pool, and the
 * fake provider answering every call `429 Retry-After: 3` for a while. The pool stops calling, sends
 * one probe per open period, resumes when a probe succeeds, and every job succeeds. The outage lasts
 * until the breaker has opened and failed its probes, not for a set time, so a busy machine sees the same.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually, sleep } from '../../testkit/wait';
import { LEASE_MS, type LimiterState } from '../../src/inference/limiter-state';
import { limiterWorkflowId } from '../../src/temporal/task-queues';
import { limiterStateQuery } from '../../src/inference/limiter-contract';

const SLOTS = 4;
const RETRY_AFTER_S = 3;
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
    //  1. until the breaker opened (3 throttled answers reported) the pool called as usual: one burst, which
    //     ended no later than one lease (LEASE_MS) after the limiter was first seen open;
    const burstEnd = during.findIndex((r, i) => i > 0 && r.receivedAt - during[i - 1]!.receivedAt >= 2000);
    const burst = burstEnd === -1 ? during : during.slice(0, burstEnd);
    const seenOpen = watcher.seen.find((s) => s.state.state === 'open')!.at;
    assert.ok(burst.length >= 3, `${burst.length} calls before the breaker opened`);
    assert.ok(
      burst.at(-1)!.receivedAt <= seenOpen + LEASE_MS,
      `the last call before the probes came ${burst.at(-1)!.receivedAt - seenOpen} ms after the breaker was seen open`,
    );
    //  2. then nothing but probes: one at a time, each at least the Retry-After after the one before.
    const probes = during.slice(burst.length);
    for (const [i, probe] of probes.entries()) {
      const previous = (i === 0 ? burst.at(-1)! : probes[i - 1]!).receivedAt;
      assert.ok(
        probe.receivedAt - previous >= RETRY_AFTER_S * 1000 - 100,
        `probe ${i + 1} came ${probe.receivedAt - previous} ms after the call before it`,
      );
    }
    assert.ok(probes.length <= Math.ceil((outageEnd - outageStart) / (RETRY_AFTER_S * 1000)), `${probes.length} probes during the outage`);

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

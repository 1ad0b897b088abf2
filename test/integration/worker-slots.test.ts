/**
 * A pool whose workers size their slots with Temporal's resource-based tuner: the worker starts with it
 * (a tuner and a fixed slot count cannot both be given), runs calls side by side from its minimum slots,
 * and never more than the pool's concurrency.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Stack } from '../../testkit/stack';

const CONCURRENCY = 3;
let stack: Stack;

before(async () => {
  stack = await new Stack({
    pools: {
      tuned: {
        provider: 'synthetic',
        concurrency: CONCURRENCY,
        latencyMs: 1500,
        slots: { tuner: 'resource-based', minimumSlots: CONCURRENCY, targetCpuUsage: 0.9, targetMemoryUsage: 0.9 },
      },
    },
  }).start();
});
after(async () => stack?.stop());

test('a resource-based pool runs its minimum slots at once and no more than its concurrency', { timeout: 60_000 }, async () => {
  const ids: string[] = [];
  for (let i = 0; i < CONCURRENCY + 1; i++) {
    const { status, body } = await stack.call('POST', '/v1/jobs', {
      body: { type: 'inference', task: 'sentiment', pool: 'tuned', input: { text: `job ${i}` } },
    });
    assert.equal(status, 202);
    ids.push(body.id);
  }
  const jobs = await Promise.all(ids.map((id) => stack.waitForJob(id, ['succeeded', 'failed', 'timed_out'], 30_000)));
  assert.deepEqual(
    jobs.map((j) => j.status),
    ids.map(() => 'succeeded'),
  );
  // Each call takes 1.5 s: with 3 slots, the first three start together and the fourth waits for a free one.
  const starts = jobs.map((j) => Date.parse(j.startedAt)).sort((a, b) => a - b);
  assert.ok(
    starts[CONCURRENCY - 1]! - starts[0]! < 1000,
    `the first ${CONCURRENCY} started together: ${starts.map((s) => s - starts[0]!).join(',')}`,
  );
  assert.ok(starts[CONCURRENCY]! - starts[0]! >= 1400, `the last waited for a slot: ${starts.map((s) => s - starts[0]!).join(',')}`);
});

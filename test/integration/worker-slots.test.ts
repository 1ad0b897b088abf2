/**
 * A pool whose workers size their slots with Temporal's resource-based tuner: the worker starts with it
 * (a tuner and a fixed slot count cannot both be given), runs calls side by side from its minimum slots,
 * and never more than the pool's concurrency.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { poolTaskQueue } from '../../src/temporal/task-queues';
import { pauseQueue, resumeQueue } from '../../testkit/dispatch';
import { activityBacklog } from '../../testkit/jobs';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const CONCURRENCY = 3;
const LATENCY_MS = 1500;
let stack: Stack;
let queue: string;

before(async () => {
  stack = await new Stack({
    pools: {
      tuned: {
        provider: 'synthetic',
        concurrency: CONCURRENCY,
        latencyMs: LATENCY_MS,
        slots: { tuner: 'resource-based', minimumSlots: CONCURRENCY, targetCpuUsage: 0.9, targetMemoryUsage: 0.9 },
      },
    },
  }).start();
  queue = poolTaskQueue(stack.prefix, 'tuned');
});
after(async () => {
  if (queue) await resumeQueue(await stack.temporal(), queue).catch(() => undefined);
  await stack?.stop();
});

test('a resource-based pool runs its minimum slots at once and no more than its concurrency', { timeout: 60_000 }, async () => {
  // All the calls wait in the queue first, so the worker has every one to take at once, however slowly they came.
  const temporal = await stack.temporal();
  await pauseQueue(temporal, queue);
  const ids: string[] = [];
  try {
    for (let i = 0; i < CONCURRENCY + 1; i++) {
      const { status, body } = await stack.call('POST', '/v1/jobs', {
        body: { type: 'inference', task: 'sentiment', pool: 'tuned', input: { text: `job ${i}` } },
      });
      assert.equal(status, 202);
      ids.push(body.id);
    }
    await eventually(`${ids.length} calls queued`, async () => ((await activityBacklog(temporal, queue)) >= ids.length ? true : undefined));
  } finally {
    await resumeQueue(temporal, queue);
  }
  const jobs = await Promise.all(ids.map((id) => stack.waitForJob(id, ['succeeded', 'failed', 'timed_out'])));
  assert.deepEqual(
    jobs.map((j) => j.status),
    ids.map(() => 'succeeded'),
  );
  // Each call takes 1.5 s: with 3 slots, the first three run side by side (the third starts before the first can have
  // ended) and the fourth waits for a free one.
  const starts = jobs.map((j) => Date.parse(j.startedAt)).sort((a, b) => a - b);
  assert.ok(
    starts[CONCURRENCY - 1]! - starts[0]! < LATENCY_MS,
    `the first ${CONCURRENCY} started together: ${starts.map((s) => s - starts[0]!).join(',')}`,
  );
  assert.ok(
    starts[CONCURRENCY]! - starts[0]! >= LATENCY_MS - 100,
    `the last waited for a slot: ${starts.map((s) => s - starts[0]!).join(',')}`,
  );
});

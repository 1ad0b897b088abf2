/**
 * Queue timeout end to end: a job whose inference is not started within `timeouts.maxQueueMs` ends
 * `timed_out`, saying it waited too long in the queue. The pool is paused (its activity task queue's
 * rate limit set to 0 through the Temporal client), so no worker can start it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { poolTaskQueue } from '../../src/temporal/task-queues';
import { pauseQueue, resumeQueue } from '../../testkit/dispatch';
import { sentimentJob, Stack } from '../../testkit/stack';

let stack: Stack;
let queue: string;

before(async () => {
  stack = await new Stack().start();
  queue = poolTaskQueue(stack.prefix, 'local');
});
after(async () => {
  await resumeQueue(await stack.temporal(), queue).catch(() => undefined);
  await stack?.stop();
});

const withMaxQueue = (maxQueueMs: number) => ({ ...sentimentJob(), timeouts: { maxQueueMs } });

test('a job not started within maxQueueMs in a paused pool ends timed_out with JobQueueTimeout', async () => {
  const temporal = await stack.temporal();
  await pauseQueue(temporal, queue);
  try {
    const { status, body } = await stack.call('POST', '/v1/jobs', { body: withMaxQueue(2000) });
    assert.equal(status, 202);
    const job = await stack.waitForJob(body.id, ['timed_out', 'failed', 'succeeded']);
    assert.equal(job.status, 'timed_out');
    assert.equal(job.lastFailure.type, 'JobQueueTimeout');
    assert.match(job.lastFailure.message, /waited more than its maxQueueMs of 2000 ms in the queue of pool local/);
    assert.equal(job.attempts, 0);
    assert.equal(job.startedAt, null);
    assert.equal(job.result, null);
    // It ended at its queue limit, long before its deadline.
    const waitedMs = Date.parse(job.finishedAt) - Date.parse(job.createdAt);
    assert.ok(waitedMs >= 2000 && waitedMs < 60_000, `ended after ${waitedMs} ms`);
  } finally {
    await resumeQueue(temporal, queue);
  }
});

test('a job that starts within maxQueueMs is unaffected by it', async () => {
  const { body } = await stack.call('POST', '/v1/jobs', { body: withMaxQueue(2000) });
  const job = await stack.waitForJob(body.id, ['succeeded', 'failed', 'timed_out']);
  assert.equal(job.status, 'succeeded');
  assert.equal(job.lastFailure, null);
  assert.equal(job.result.output.label, 'positive');
});

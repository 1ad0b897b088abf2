/**
 * Dynamic batching end to end: real worker and API processes, an OpenAI-compatible pool with batching
 * on, the fake OpenAI server's request log as the witness. Concurrent embed jobs reach the provider as
 * batches, every job gets its own vector back, and a poisoned input fails only its own job.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { fakeVector, POISON, startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';

const JOBS = 50;
const BATCH = { maxSize: 16, maxWaitMs: 500 };

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  // Assigned before it starts, so `after` stops whatever did start if start-up fails half-way.
  stack = new Stack({
    pools: { embeddings: { provider: 'openai', baseUrl: openai.url, model: 'fake-model', concurrency: BATCH.maxSize, batch: BATCH } },
  });
  await stack.start();
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

test(
  `${JOBS} concurrent embed jobs reach the provider in batches; a poisoned item fails only its own job`,
  { timeout: 120_000 },
  async (t) => {
    const tag = randomUUID();
    const poisoned = 7;
    const texts = Array.from({ length: JOBS }, (_, i) => `item ${i} of run ${tag}${i === poisoned ? ` ${POISON}` : ''}`);
    const ids = await Promise.all(
      texts.map(async (text) => {
        const { status, body } = await stack.call('POST', '/v1/jobs', {
          body: { type: 'inference', task: 'embed', pool: 'embeddings', input: { text } },
        });
        assert.equal(status, 202, JSON.stringify(body));
        return body.id as string;
      }),
    );

    const jobs = [];
    for (const id of ids) jobs.push(await stack.waitForJob(id, ['succeeded', 'failed', 'timed_out', 'cancelled']));

    const batchSizes = openai
      .requestsMentioning(tag)
      .map((r) => (r.body as { input: unknown }).input)
      .map((input) => (Array.isArray(input) ? input.length : 1));
    t.diagnostic(`inputs per embeddings request: ${batchSizes.join(', ')}`);
    assert.ok(Math.max(...batchSizes) > 1, `the provider received batches larger than 1: ${batchSizes.join(', ')}`);

    jobs.forEach((job, i) => {
      if (i === poisoned) {
        assert.equal(job.status, 'failed');
        assert.equal(job.lastFailure.type, 'ProviderRejected');
        assert.match(job.lastFailure.message, new RegExp(POISON));
        assert.equal(job.attempts, 1, 'a rejection is not retried');
      } else {
        assert.equal(job.status, 'succeeded', `job ${i}: ${JSON.stringify(job.lastFailure)}`);
        assert.deepEqual(job.result.output.embedding, fakeVector(texts[i]!), `job ${i} got its own vector`);
      }
    });
  },
);

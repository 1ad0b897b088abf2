import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { loadConfig, poolSchema } from '../../src/config';
import { INFERENCE_TASKS, type CallContext } from '../../src/inference/provider';
import { createProvider, providerTasks } from '../../src/inference/providers';
import { createSyntheticProvider, syntheticCostMs, type SyntheticPool } from '../../src/inference/synthetic';

const pool = (over: Record<string, unknown> = {}) => poolSchema.parse({ provider: 'synthetic', ...over }) as SyntheticPool;

function ctx(signal = new AbortController().signal): CallContext & { beats: number } {
  const c = { signal, beats: 0, heartbeat: () => void c.beats++ };
  return c;
}

test('config defaults: 100 ms, no jitter, no batch cost; unknown fields are rejected', () => {
  const { provider, latencyMs, jitterMs, callCost, batch } = pool();
  assert.deepEqual(
    { provider, latencyMs, jitterMs, callCost, batch },
    {
      provider: 'synthetic',
      latencyMs: 100,
      jitterMs: 0,
      callCost: { fixedMs: 0, perItemMs: 0 },
      batch: { maxSize: 1, maxWaitMs: 10 },
    },
  );
  assert.throws(() => poolSchema.parse({ provider: 'synthetic', latency: 5 }));
  assert.throws(() => poolSchema.parse({ provider: 'synthetic', latencyMs: -1 }));
});

test('cost: latency + jitter share + fixed batch cost + per-item cost', () => {
  const p = pool({ latencyMs: 50, jitterMs: 20, callCost: { fixedMs: 7, perItemMs: 3 } });
  assert.equal(syntheticCostMs(p, 1, 0), 60);
  assert.equal(syntheticCostMs(p, 4, 0.5), 50 + 10 + 7 + 12);
  assert.equal(syntheticCostMs(pool({ latencyMs: 0 }), 1, 0.9), 0);
});

test('does every task, chat included, with a small fixed output after a real wait', async () => {
  const provider = createProvider(pool({ latencyMs: 30 }));
  assert.deepEqual([...providerTasks(pool())], [...INFERENCE_TASKS]);
  const started = performance.now();
  const sentiment = await provider.infer({ task: 'sentiment', text: 'x' }, ctx());
  assert.ok(performance.now() - started >= 29, 'waited the configured latency');
  assert.deepEqual(sentiment, { task: 'sentiment', model: 'synthetic', output: { synthetic: true, latencyMs: 30 } });
  const chat = await provider.infer({ task: 'chat', messages: [{ role: 'user', content: 'hi' }] }, ctx());
  const output = chat.output as { message: { role: string; content: string }; synthetic: boolean };
  assert.equal(output.message.role, 'assistant');
  assert.equal(output.synthetic, true);
});

test('jitter draws from the injected random source', async () => {
  const provider = createSyntheticProvider(pool({ latencyMs: 0, jitterMs: 10 }), () => 0.5);
  const result = await provider.infer({ task: 'embed', text: 'x' }, ctx());
  assert.deepEqual(result.output, { synthetic: true, latencyMs: 5 });
});

test('long waits heartbeat; an abort ends the wait at once with the signal reason', async (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  t.after(() => mock.timers.reset());
  const provider = createSyntheticProvider(pool({ latencyMs: 60_000 }));
  const abort = new AbortController();
  const c = ctx(abort.signal);
  const call = provider.infer({ task: 'summarize', text: 'x' }, c);
  mock.timers.tick(3500);
  assert.equal(c.beats, 3);
  const reason = new Error('cancelled by Temporal');
  abort.abort(reason);
  await assert.rejects(call, (err) => err === reason);
  mock.timers.tick(60_000);
  assert.equal(c.beats, 3, 'no heartbeats after the call ended');
});

test('an already aborted call does not wait', async () => {
  const abort = new AbortController();
  abort.abort(new Error('gone'));
  await assert.rejects(
    createSyntheticProvider(pool({ latencyMs: 60_000 })).infer({ task: 'keywords', text: 'x' }, ctx(abort.signal)),
    /gone/,
  );
});

test('a batch is one call: it costs syntheticCostMs for its size, and each output says the batch size', async () => {
  const p = pool({ latencyMs: 0, callCost: { fixedMs: 20, perItemMs: 5 } });
  const provider = createSyntheticProvider(p);
  assert.deepEqual(provider.batchTasks, INFERENCE_TASKS);
  const started = performance.now();
  const results = await provider.inferBatch!(
    [
      { task: 'embed', text: 'a' },
      { task: 'chat', messages: [{ role: 'user', content: 'b' }] },
      { task: 'embed', text: 'c' },
    ],
    ctx(),
  );
  assert.ok(performance.now() - started >= 34, 'waited the cost of one call of three items');
  assert.equal(results.length, 3);
  assert.deepEqual(results[0], {
    task: 'embed',
    model: 'synthetic',
    output: { synthetic: true, latencyMs: syntheticCostMs(p, 3, 0), batchSize: 3 },
  });
  assert.equal((results[1] as { output: { message: { role: string } } }).output.message.role, 'assistant');
});

test('callCost.concurrency: the device serves that many calls at once and queues the rest in order', async (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  t.after(() => mock.timers.reset());
  const provider = createSyntheticProvider(pool({ latencyMs: 0, callCost: { fixedMs: 100, perItemMs: 0, concurrency: 1 } }));
  const done: string[] = [];
  const calls = ['first', 'second'].map((text) => provider.infer({ task: 'embed', text }, ctx()).then(() => done.push(text)));
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  mock.timers.tick(100);
  await settle();
  assert.deepEqual(done, ['first']);
  mock.timers.tick(100);
  await Promise.all(calls);
  assert.deepEqual(done, ['first', 'second']);
  // Without a limit, no call waits for another.
  const free = createSyntheticProvider(pool({ latencyMs: 0, callCost: { fixedMs: 100, perItemMs: 0 } }));
  const both = Promise.all(['a', 'b'].map((text) => free.infer({ task: 'embed', text }, ctx())));
  mock.timers.tick(100);
  await both;
});

test('a pool with batch settings batches concurrent calls; batch.maxSize above concurrency is a config error', async () => {
  const provider = createProvider(pool({ latencyMs: 0, concurrency: 4, batch: { maxSize: 4, maxWaitMs: 1000 } }));
  const results = await Promise.all(['a', 'b', 'c', 'd'].map((text) => provider.infer({ task: 'sentiment', text }, ctx())));
  assert.deepEqual(
    results.map((r) => (r.output as { batchSize: number }).batchSize),
    [4, 4, 4, 4],
  );
  const env = (p: object) => ({ SWITCHYARD_POOLS: JSON.stringify({ gpu: { provider: 'synthetic', ...p } }) });
  assert.throws(
    () => loadConfig(env({ concurrency: 8, batch: { maxSize: 16 } })),
    /pool "gpu" has batch.maxSize 16 above its concurrency 8/,
  );
  assert.equal(loadConfig(env({ concurrency: 16, batch: { maxSize: 16 } })).pools.gpu?.batch.maxSize, 16);
});

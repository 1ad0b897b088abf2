import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { poolSchema } from '../../src/config';
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
  assert.deepEqual({ provider, latencyMs, jitterMs, callCost, batch }, {
    provider: 'synthetic',
    latencyMs: 100,
    jitterMs: 0,
    callCost: { fixedMs: 0, perItemMs: 0 },
    batch: { maxSize: 1, maxWaitMs: 10 },
  });
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
  await assert.rejects(createSyntheticProvider(pool({ latencyMs: 60_000 })).infer({ task: 'keywords', text: 'x' }, ctx(abort.signal)), /gone/);
});

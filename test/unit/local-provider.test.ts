import assert from 'node:assert/strict';
import { poolSchema } from '../../src/config';
import { test } from 'node:test';
import { createLocalProvider } from '../../src/inference/local';
import { type CallContext, type InferenceTask, ProviderError } from '../../src/inference/provider';
import { providerTasks } from '../../src/inference/providers';

const provider = createLocalProvider();

function ctx(signal = new AbortController().signal): CallContext & { beats: number } {
  const c = { signal, beats: 0, heartbeat: () => void c.beats++ };
  return c;
}

async function run(task: InferenceTask, text: string): Promise<Record<string, unknown>> {
  const c = ctx();
  const result = await provider.infer({ task, text }, c);
  assert.equal(result.task, task);
  assert.equal(result.model, 'wink-eng-lite-web-model');
  assert.equal(result.usage, undefined);
  assert.ok(c.beats >= 1, 'heartbeat called');
  return result.output as Record<string, unknown>;
}

const POSITIVE = 'I love this product. The battery is excellent and the screen is beautiful. Support was friendly and helpful.';
const NEGATIVE = 'The service was terrible. I hate waiting and the food was awful.';
const CONTACT = 'Please contact alice@example.com before 15 June 2025 about the invoice. The office opens at 9am.';
const COFFEE =
  'Coffee is a popular drink. Coffee beans grow on coffee plants in tropical countries. Many people drink coffee every morning. ' +
  'Tea is another popular drink. Some countries prefer tea over coffee. The weather was nice yesterday.';

test('sentiment labels positive and negative text, with per-sentence scores', async () => {
  const pos = await run('sentiment', POSITIVE);
  assert.equal(pos.label, 'positive');
  assert.ok(typeof pos.score === 'number' && pos.score > 0 && pos.score <= 1);
  assert.equal(Math.round(pos.score * 1000) / 1000, pos.score, 'rounded to 3 places');
  const sentences = pos.sentences as { text: string; score: number }[];
  assert.deepEqual(
    sentences.map((s) => s.text),
    ['I love this product.', 'The battery is excellent and the screen is beautiful.', 'Support was friendly and helpful.'],
  );
  const neg = await run('sentiment', NEGATIVE);
  assert.equal(neg.label, 'negative');
  assert.ok((neg.score as number) < 0);
  assert.equal((await run('sentiment', 'The meeting is at noon in room four.')).label, 'neutral');
});

test('entities finds the date and the email', async () => {
  const { entities } = (await run('entities', CONTACT)) as { entities: { value: string; type: string }[] };
  assert.ok(
    entities.some((e) => e.type === 'EMAIL' && e.value === 'alice@example.com'),
    JSON.stringify(entities),
  );
  assert.ok(
    entities.some((e) => e.type === 'DATE' && e.value === '15 June 2025'),
    JSON.stringify(entities),
  );
  // Plain objects, so they serialise and compare like any JSON.
  assert.ok(entities.every((e) => Object.getPrototypeOf(e) === Object.prototype));
});

test('keywords are lemmatised content words ranked by count then alphabetically', async () => {
  const { keywords } = (await run('keywords', COFFEE)) as { keywords: { term: string; count: number }[] };
  assert.ok(keywords.length <= 10);
  assert.deepEqual(keywords[0], { term: 'coffee', count: 5 });
  assert.ok(
    keywords.some((k) => k.term === 'country' && k.count === 2),
    'lemmatised: countries → country',
  );
  assert.ok(!keywords.some((k) => ['is', 'the', 'a', '.'].includes(k.term)), 'no stop words or punctuation');
  for (let i = 1; i < keywords.length; i++) {
    const [a, b] = [keywords[i - 1]!, keywords[i]!];
    assert.ok(a.count > b.count || (a.count === b.count && a.term < b.term), `order at ${i}`);
  }
});

test('summarize picks ⌈n/3⌉ input sentences and keeps document order', async () => {
  const out = await run('summarize', COFFEE);
  assert.equal(out.sentenceCount, 2); // 6 sentences → 2
  const summary = out.summary as string;
  const sentences = COFFEE.split(/(?<=\.) /);
  const picked = sentences.filter((s) => summary.includes(s));
  assert.equal(picked.length, 2);
  assert.equal(picked.join(' '), summary, 'made only of input sentences, in document order');
  const one = await run('summarize', 'Just one sentence here.');
  assert.deepEqual(one, { summary: 'Just one sentence here.', sentenceCount: 1 });
});

test('embed gives a deterministic 256-dim unit vector that differs between texts', async () => {
  const a = (await run('embed', POSITIVE)) as { embedding: number[]; dimensions: number };
  assert.equal(a.dimensions, 256);
  assert.equal(a.embedding.length, 256);
  assert.ok(Math.abs(Math.hypot(...a.embedding) - 1) < 1e-9, 'unit norm');
  const again = (await run('embed', POSITIVE)) as { embedding: number[] };
  assert.deepEqual(again.embedding, a.embedding);
  const b = (await run('embed', NEGATIVE)) as { embedding: number[] };
  assert.notDeepEqual(b.embedding, a.embedding);
  const onlyStopWords = (await run('embed', 'the and of')) as { embedding: number[] };
  assert.ok(Math.abs(Math.hypot(...onlyStopWords.embedding) - 1) < 1e-9, 'still a unit vector');
});

test('missing or blank text is invalid_input', async () => {
  for (const text of [undefined, '', '   \n']) {
    await assert.rejects(provider.infer({ task: 'sentiment', text }, ctx()), (err: unknown) => {
      assert.ok(err instanceof ProviderError);
      assert.equal(err.kind, 'invalid_input');
      assert.equal(err.retryable, false);
      return true;
    });
  }
});

test('chat is not a local task, and is refused', async () => {
  assert.ok(!provider.tasks.includes('chat'));
  assert.deepEqual(providerTasks(poolSchema.parse({ provider: 'local' })), provider.tasks);
  await assert.rejects(
    provider.infer({ task: 'chat', messages: [{ role: 'user', content: 'hi' }] }, ctx()),
    (err: unknown) => err instanceof ProviderError && err.kind === 'invalid_input',
  );
});

test('an already-aborted signal stops the call before any work', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(provider.infer({ task: 'sentiment', text: POSITIVE }, ctx(ac.signal)), { name: 'AbortError' });
});

test('a batch runs in one go with the same outputs as single calls; an invalid item fails alone', async () => {
  assert.deepEqual(provider.batchTasks, provider.tasks);
  const requests = [
    { task: 'sentiment' as const, text: POSITIVE },
    { task: 'embed' as const, text: '   ' },
    { task: 'keywords' as const, text: COFFEE },
    { task: 'chat' as const, messages: [{ role: 'user' as const, content: 'hi' }] },
  ];
  const c = ctx();
  const outcomes = await provider.inferBatch!(requests, c);
  assert.equal(outcomes.length, 4);
  assert.deepEqual(outcomes[0], await provider.infer(requests[0]!, ctx()));
  assert.deepEqual(outcomes[2], await provider.infer(requests[2]!, ctx()));
  for (const refused of [outcomes[1], outcomes[3]])
    assert.ok(
      refused instanceof ProviderError && refused.kind === 'invalid_input',
      refused instanceof Error ? String(refused) : JSON.stringify(refused),
    );
  assert.ok(c.beats >= 2, 'heartbeats between items');
});

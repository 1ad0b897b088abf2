import assert from 'node:assert/strict';
import { poolSchema } from '../../src/config';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createOpenAIProvider, type OpenAIPool, parseRetryAfter } from '../../src/inference/openai';
import { type CallContext, type InferenceRequest, type InferenceResult, ProviderError } from '../../src/inference/provider';
import { providerTasks } from '../../src/inference/providers';
import { type FakeOpenAI, fakeVector, POISON, startFakeOpenAI } from '../../testkit/fake-openai';
import { eventually } from '../../testkit/wait';

let fake: FakeOpenAI;
before(async () => {
  fake = await startFakeOpenAI();
});
after(() => fake.close());
beforeEach(() => {
  fake.script([]);
  fake.requests.length = 0;
});

function pool(over: Partial<OpenAIPool> = {}): OpenAIPool {
  const settings = poolSchema.parse({ provider: 'openai', concurrency: 1, baseUrl: fake.url, model: 'gpt-test', requestTimeoutMs: 5000 });
  return { ...(settings as OpenAIPool), ...over };
}

function ctx(signal = new AbortController().signal): CallContext & { beats: number } {
  const c = { signal, beats: 0, heartbeat: () => void c.beats++ };
  return c;
}

const chatRequest: InferenceRequest = { task: 'chat', messages: [{ role: 'user', content: 'hello there world' }] };

/** Asserts a rejection with a ProviderError and hands it back for further checks. */
async function providerError(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProviderError, `expected ProviderError, got ${String(err)}`);
  return err;
}

test('chat: reply, finish reason, usage and the bearer token', async () => {
  const provider = createOpenAIProvider(pool({ apiKey: 'sk-test-123' }));
  const result = await provider.infer({ ...chatRequest, maxTokens: 50, temperature: 0.2 }, ctx());
  assert.deepEqual(result, {
    task: 'chat',
    model: 'gpt-test',
    output: { message: { role: 'assistant', content: 'echo: hello there world' }, finishReason: 'stop' },
    usage: { promptTokens: 3, completionTokens: 4, totalTokens: 7 },
  });
  const [req] = fake.requests;
  assert.equal(req?.path, '/v1/chat/completions');
  assert.equal(req?.headers.authorization, 'Bearer sk-test-123');
  assert.deepEqual(req?.body, { model: 'gpt-test', messages: chatRequest.messages, max_tokens: 50, temperature: 0.2 });
});

test('no api key → no Authorization header; a trailing slash on baseUrl is fine', async () => {
  await createOpenAIProvider(pool({ baseUrl: `${fake.url}/` })).infer(chatRequest, ctx());
  assert.equal(fake.requests[0]?.path, '/v1/chat/completions');
  assert.equal(fake.requests[0]?.headers.authorization, undefined);
});

test('embed uses the embedding model and returns the vector', async () => {
  const provider = createOpenAIProvider(pool({ embeddingModel: 'embed-test' }));
  const result = await provider.infer({ task: 'embed', text: 'some text to embed' }, ctx());
  const output = result.output as { embedding: number[]; dimensions: number };
  assert.equal(output.dimensions, 8);
  assert.equal(output.embedding.length, 8);
  assert.equal(result.model, 'embed-test');
  assert.deepEqual(result.usage, { promptTokens: 4, completionTokens: 0, totalTokens: 4 });
  assert.deepEqual(fake.requests[0]?.body, { model: 'embed-test', input: 'some text to embed' });
  const again = await provider.infer({ task: 'embed', text: 'some text to embed' }, ctx());
  assert.deepEqual(again.output, output, 'deterministic');
});

test('summarize sends a system prompt plus the text and returns { summary }', async () => {
  const result = await createOpenAIProvider(pool()).infer({ task: 'summarize', text: 'Long text.' }, ctx());
  assert.deepEqual(result.output, { summary: 'echo: Long text.' });
  const body = fake.requests[0]?.body as { messages: { role: string; content: string }[] };
  assert.equal(body.messages[0]?.role, 'system');
  assert.deepEqual(body.messages[1], { role: 'user', content: 'Long text.' });
});

test('429 with Retry-After: 2 → rate_limited, retry after 2000 ms', async () => {
  fake.script([{ status: 429, retryAfter: '2' }]);
  const err = await providerError(createOpenAIProvider(pool()).infer(chatRequest, ctx()));
  assert.equal(err.kind, 'rate_limited');
  assert.equal(err.retryable, true);
  assert.deepEqual(err.options, { status: 429, retryAfterMs: 2000 });
});

test('Retry-After as an HTTP date, or absent', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
});

test('500 → unavailable (retryable); 408 and 409 too', async () => {
  for (const status of [500, 503, 408, 409]) {
    fake.script([{ status }]);
    const err = await providerError(createOpenAIProvider(pool()).infer(chatRequest, ctx()));
    assert.equal(err.kind, 'unavailable', `status ${status}`);
    assert.equal(err.retryable, true);
    assert.equal(err.options.status, status);
  }
});

test('503 with Retry-After: 1 → unavailable, retry after 1000 ms', async () => {
  fake.script([{ status: 503, retryAfter: '1' }]);
  const err = await providerError(createOpenAIProvider(pool()).infer(chatRequest, ctx()));
  assert.equal(err.kind, 'unavailable');
  assert.deepEqual(err.options, { status: 503, retryAfterMs: 1000 });
});

test("400 → rejected (not retryable) carrying the provider's message", async () => {
  fake.script([{ status: 400, body: { error: { message: 'max_tokens is too large', type: 'invalid_request_error' } } }]);
  const err = await providerError(createOpenAIProvider(pool()).infer(chatRequest, ctx()));
  assert.equal(err.kind, 'rejected');
  assert.equal(err.retryable, false);
  assert.match(err.message, /400/);
  assert.match(err.message, /max_tokens is too large/);
});

test('a non-JSON error body is quoted, trimmed to 500 characters', async () => {
  fake.script([{ status: 403, body: `  <html>${'x'.repeat(2000)}</html>` }]);
  const err = await providerError(createOpenAIProvider(pool()).infer(chatRequest, ctx()));
  assert.equal(err.kind, 'rejected');
  assert.match(err.message, /403: <html>x+$/);
  assert.ok(err.message.length < 600);
});

test('a 200 with malformed JSON or missing fields → unavailable', async () => {
  fake.script([
    { status: 200, body: 'not json' },
    { status: 200, body: { choices: [] } },
  ]);
  const provider = createOpenAIProvider(pool());
  const bad = await providerError(provider.infer(chatRequest, ctx()));
  assert.equal(bad.kind, 'unavailable');
  assert.match(bad.message, /malformed JSON/);
  const missing = await providerError(provider.infer(chatRequest, ctx()));
  assert.equal(missing.kind, 'unavailable');
  assert.match(missing.message, /malformed chat completion response/);
});

test('nothing listening → unavailable', async () => {
  const closed = await startFakeOpenAI();
  await closed.close();
  const err = await providerError(createOpenAIProvider(pool({ baseUrl: closed.url })).infer(chatRequest, ctx()));
  assert.equal(err.kind, 'unavailable');
});

test('an answer slower than requestTimeoutMs → timeout', async () => {
  fake.script([{ delayMs: 60_000 }]);
  const err = await providerError(createOpenAIProvider(pool({ requestTimeoutMs: 300 })).infer(chatRequest, ctx()));
  assert.equal(err.kind, 'timeout');
  assert.equal(err.retryable, true);
  assert.equal(fake.requests.length, 1);
  assert.equal(fake.requests[0]!.status, undefined, 'gave up at the timeout, not at the answer: the server had not answered yet');
});

test('aborting ctx.signal during a hang rejects promptly with the abort, not a ProviderError', async () => {
  fake.script([{ hang: true }]);
  const ac = new AbortController();
  const call = createOpenAIProvider(pool({ requestTimeoutMs: 60_000 }))
    .infer(chatRequest, ctx(ac.signal))
    .then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
  await eventually('the request to hang at the server', () => fake.requests[0]);
  const abortedAt = Date.now();
  ac.abort();
  const err = await call;
  assert.ok(!(err instanceof ProviderError));
  assert.equal((err as Error).name, 'AbortError');
  assert.ok(Date.now() - abortedAt < 1000, `took ${Date.now() - abortedAt} ms after the abort`);
});

test('heartbeats keep coming while a slow call is in flight', async () => {
  const provider = createOpenAIProvider(pool());
  /** A call whose answer is held back until it has heartbeaten `beats` times: one at the start, then one a second. */
  const slowCall = async (c: ReturnType<typeof ctx>, beats: number) => {
    const release = fake.hold();
    const call = provider.infer(chatRequest, c);
    await eventually(`${beats} heartbeats while the call is in flight`, () => (c.beats >= beats ? true : undefined));
    release();
    return call;
  };
  const c = ctx();
  await slowCall(c, 3);
  const beatsAtEnd = c.beats;
  // Another call, held until it has beaten three times, is in flight for two whole heartbeat intervals after the first
  // ended: an interval the first had left running would have beaten meanwhile.
  await slowCall(ctx(), 3);
  assert.equal(c.beats, beatsAtEnd, 'the interval is cleared after the call');
});

test('invalid input and unsupported tasks are refused before any request', async () => {
  const provider = createOpenAIProvider(pool());
  for (const request of [
    { task: 'chat', messages: [] },
    { task: 'embed', text: ' ' },
    { task: 'summarize' },
    { task: 'sentiment', text: 'good' },
  ] satisfies InferenceRequest[]) {
    assert.equal((await providerError(provider.infer(request, ctx()))).kind, 'invalid_input');
  }
  assert.equal(fake.requests.length, 0);
  assert.deepEqual([...providerTasks(pool())].sort(), ['chat', 'embed', 'summarize']);
});

describe('embeddings in batches', () => {
  const embeds = (...texts: string[]): InferenceRequest[] => texts.map((text) => ({ task: 'embed', text }));
  const vectorOf = (outcome: unknown) => ((outcome as InferenceResult).output as { embedding: number[] }).embedding;

  test('one call with an array input; each item gets its own vector and its share of the usage', async () => {
    const provider = createOpenAIProvider(pool({ embeddingModel: 'embed-test' }));
    assert.deepEqual(provider.batchTasks, ['embed']);
    const texts = ['one two', 'three four five six', 'seven'];
    const outcomes = await provider.inferBatch!(embeds(...texts), ctx());
    assert.equal(fake.requests.length, 1);
    assert.deepEqual(fake.requests[0]?.body, { model: 'embed-test', input: texts });
    assert.deepEqual(outcomes.map(vectorOf), texts.map(fakeVector));
    const usage = outcomes.map((o) => (o as InferenceResult).usage!);
    assert.equal(
      usage.reduce((n, u) => n + u.totalTokens, 0),
      7,
      'the shares add up to what the provider reported',
    );
    assert.ok(usage[1]!.promptTokens > usage[2]!.promptTokens, 'longer inputs carry more of it');
  });

  test('vectors are matched by index, not by position in the answer', async () => {
    const reversing: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      const body = (await res.json()) as { data: unknown[] };
      return Response.json({ ...body, data: [...body.data].reverse() }, { status: res.status });
    };
    const outcomes = await createOpenAIProvider(pool(), reversing).inferBatch!(embeds('alpha', 'beta', 'gamma'), ctx());
    assert.deepEqual(outcomes.map(vectorOf), ['alpha', 'beta', 'gamma'].map(fakeVector));
  });

  test('a batch the provider refuses as a whole (4xx) is retried one by one, so only the poisoned item fails', async () => {
    const outcomes = await createOpenAIProvider(pool()).inferBatch!(embeds('fine', `bad ${POISON}`, 'also fine'), ctx());
    assert.deepEqual(vectorOf(outcomes[0]), fakeVector('fine'));
    assert.deepEqual(vectorOf(outcomes[2]), fakeVector('also fine'));
    const refused = outcomes[1];
    assert.ok(
      refused instanceof ProviderError && refused.kind === 'rejected' && refused.options.status === 400,
      refused instanceof Error ? String(refused) : JSON.stringify(refused),
    );
    assert.match(refused.message, new RegExp(POISON));
    const [batch, ...alone] = fake.requests.map((r) => (r.body as { input: unknown }).input);
    assert.deepEqual(batch, ['fine', `bad ${POISON}`, 'also fine']);
    assert.deepEqual(alone.sort(), ['also fine', `bad ${POISON}`, 'fine'], 'then each input alone');
  });

  test('throttling or an outage of the batch call is every item’s failure: no per-item retries', async () => {
    fake.script([{ status: 429, retryAfter: '3' }]);
    await assert.rejects(
      createOpenAIProvider(pool()).inferBatch!(embeds('a', 'b'), ctx()),
      (err) => err instanceof ProviderError && err.kind === 'rate_limited' && err.options.retryAfterMs === 3000,
    );
    assert.equal(fake.requests.length, 1);
  });

  test('an item without text fails alone, without being sent', async () => {
    const outcomes = await createOpenAIProvider(pool()).inferBatch!(
      [...embeds('real text', '  '), { task: 'chat', messages: [{ role: 'user', content: 'x' }] }],
      ctx(),
    );
    assert.deepEqual(vectorOf(outcomes[0]), fakeVector('real text'));
    for (const refused of outcomes.slice(1))
      assert.ok(
        refused instanceof ProviderError && refused.kind === 'invalid_input',
        refused instanceof Error ? String(refused) : JSON.stringify(refused),
      );
    assert.deepEqual(
      fake.requests.map((r) => r.body),
      [{ model: 'gpt-test', input: 'real text' }],
    );
  });
});

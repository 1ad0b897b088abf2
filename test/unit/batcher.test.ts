import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { withBatching } from '../../src/inference/batcher';
import {
  type CallContext,
  type InferenceProvider,
  type InferenceRequest,
  type InferenceResult,
  ProviderError,
} from '../../src/inference/provider';

/** One inferBatch call the test answers by hand. */
interface SentBatch {
  requests: InferenceRequest[];
  ctx: CallContext;
  answer(outcomes: (InferenceResult | ProviderError)[]): void;
  fail(err: unknown): void;
}

/** A provider that batches `embed` and `sentiment`, records every call and lets the test answer it. */
function fakeProvider() {
  const batches: SentBatch[] = [];
  const singles: InferenceRequest[] = [];
  const provider: InferenceProvider = {
    kind: 'fake',
    tasks: ['embed', 'sentiment', 'chat'],
    batchTasks: ['embed', 'sentiment'],
    async infer(request) {
      singles.push(request);
      return resultFor(request);
    },
    inferBatch: (requests, ctx) => new Promise((answer, fail) => batches.push({ requests, ctx, answer, fail })),
  };
  return { provider, batches, singles };
}

const resultFor = (request: InferenceRequest): InferenceResult => ({
  task: request.task,
  model: request.model ?? 'default',
  output: request.text,
});
const answerAll = (batch: SentBatch) => batch.answer(batch.requests.map(resultFor));

function ctx(signal = new AbortController().signal): CallContext & { beats: number } {
  const c = { signal, beats: 0, heartbeat: () => void c.beats++ };
  return c;
}

/** A call with its own cancellation and heartbeat count. */
function call(provider: InferenceProvider, text: string, over: Partial<InferenceRequest> = {}) {
  const abort = new AbortController();
  const c = ctx(abort.signal);
  const promise = provider.infer({ task: 'embed', text, ...over }, c);
  promise.catch(() => undefined); // inspected by the tests; never an unhandled rejection
  return { promise, abort, ctx: c };
}

/** Whether a promise has settled, once pending callbacks and microtasks have run. */
function state(promise: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending'))),
  ]);
}

function mockTimers(t: { after(fn: () => void): void }) {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  t.after(() => mock.timers.reset());
}

test('off: batch size 1, or a provider without inferBatch, is the provider itself', () => {
  const { provider } = fakeProvider();
  assert.equal(withBatching(provider, { maxSize: 1, maxWaitMs: 10 }), provider);
  const single: InferenceProvider = { kind: 'single', tasks: ['embed'], infer: (request, c) => provider.infer(request, c) };
  assert.equal(withBatching(single, { maxSize: 8, maxWaitMs: 10 }), single);
});

test('calls group by task and model; a full batch goes at once, the others after maxWaitMs; other tasks go straight through', async (t) => {
  mockTimers(t);
  const fake = fakeProvider();
  const batching = withBatching(fake.provider, { maxSize: 3, maxWaitMs: 1000 });
  const a = ['a1', 'a2', 'a3'].map((text) => call(batching, text, { model: 'a' }));
  const b = call(batching, 'b1', { model: 'b' });
  const s = call(batching, 's1', { task: 'sentiment', model: 'a' });
  const chat = await batching.infer({ task: 'chat', messages: [{ role: 'user', content: 'hi' }] }, ctx());

  assert.equal(fake.batches.length, 1, 'the full batch was sent without waiting');
  assert.deepEqual(
    fake.batches[0]!.requests.map((r) => r.text),
    ['a1', 'a2', 'a3'],
  );
  assert.equal(chat.task, 'chat');
  assert.deepEqual(
    fake.singles.map((r) => r.task),
    ['chat'],
  );

  mock.timers.tick(999);
  assert.equal(fake.batches.length, 1);
  mock.timers.tick(1);
  assert.deepEqual(
    fake.batches.slice(1).map((x) => x.requests.map((r) => `${r.task}:${r.text}`)),
    [['embed:b1'], ['sentiment:s1']],
  );

  for (const batch of fake.batches) answerAll(batch);
  assert.deepEqual(
    await Promise.all(a.map((c) => c.promise)),
    ['a1', 'a2', 'a3'].map((text) => ({ task: 'embed', model: 'a', output: text })),
  );
  assert.equal((await b.promise).output, 'b1');
  assert.equal((await s.promise).output, 's1');

  // The next call starts a new batch.
  call(batching, 'a4', { model: 'a' });
  mock.timers.tick(1000);
  assert.deepEqual(
    fake.batches[3]?.requests.map((r) => r.text),
    ['a4'],
  );
});

test('an item whose result is an error fails only its own call; a failed batch fails every call', async (t) => {
  mockTimers(t);
  const fake = fakeProvider();
  const batching = withBatching(fake.provider, { maxSize: 3, maxWaitMs: 50 });
  const [ok1, bad, ok2] = ['one', 'two', 'three'].map((text) => call(batching, text));
  const refused = new ProviderError('input 2 refused', 'rejected', { status: 400 });
  fake.batches[0]!.answer([resultFor({ task: 'embed', text: 'one' }), refused, resultFor({ task: 'embed', text: 'three' })]);
  assert.equal((await ok1!.promise).output, 'one');
  await assert.rejects(bad!.promise, (err) => err === refused);
  assert.equal((await ok2!.promise).output, 'three');

  const unavailable = new ProviderError('HTTP 503', 'unavailable', { status: 503 });
  const both = ['x', 'y'].map((text) => call(batching, text));
  mock.timers.tick(50);
  fake.batches[1]!.fail(unavailable);
  for (const c of both) await assert.rejects(c.promise, (err) => err === unavailable);

  // A provider that answers fewer results than requests fails the unanswered ones, not silently.
  const short = ['p', 'q'].map((text) => call(batching, text));
  mock.timers.tick(50);
  fake.batches[2]!.answer([resultFor({ task: 'embed', text: 'p' })]);
  assert.equal((await short[0]!.promise).output, 'p');
  await assert.rejects(short[1]!.promise, (err) => err instanceof ProviderError && err.kind === 'unavailable');
});

test('a call cancelled before its batch is sent leaves it at once; a batch everyone left is never sent', async (t) => {
  mockTimers(t);
  const fake = fakeProvider();
  const batching = withBatching(fake.provider, { maxSize: 3, maxWaitMs: 100 });
  const [first, second] = ['first', 'second'].map((text) => call(batching, text));
  const reason = new Error('cancelled by Temporal');
  second!.abort.abort(reason);
  await assert.rejects(second!.promise, (err) => err === reason);
  // The freed place is taken by the next call: the batch fills with first, third, fourth.
  const [third, fourth] = ['third', 'fourth'].map((text) => call(batching, text));
  assert.deepEqual(
    fake.batches[0]?.requests.map((r) => r.text),
    ['first', 'third', 'fourth'],
  );
  answerAll(fake.batches[0]);
  assert.deepEqual(await Promise.all([first!, third!, fourth!].map(async (c) => (await c.promise).output)), ['first', 'third', 'fourth']);

  const lonely = call(batching, 'lonely');
  lonely.abort.abort(reason);
  await assert.rejects(lonely.promise, (err) => err === reason);
  mock.timers.tick(1000);
  assert.equal(fake.batches.length, 1, 'an empty batch is never sent');

  const gone = new AbortController();
  gone.abort(reason);
  await assert.rejects(batching.infer({ task: 'embed', text: 'late' }, ctx(gone.signal)), (err) => err === reason);
  mock.timers.tick(1000);
  assert.equal(fake.batches.length, 1, 'an already cancelled call never joins a batch');
});

test('a call cancelled while its batch is in flight fails at once; the others still get their results', async (t) => {
  mockTimers(t);
  const fake = fakeProvider();
  const batching = withBatching(fake.provider, { maxSize: 3, maxWaitMs: 100 });
  const calls = ['a', 'b', 'c'].map((text) => call(batching, text));
  const sent = fake.batches[0]!;
  const reason = new Error('job cancelled');
  calls[1]!.abort.abort(reason);
  await assert.rejects(calls[1]!.promise, (err) => err === reason);
  assert.equal(await state(calls[0]!.promise), 'pending');
  assert.equal(sent.ctx.signal.aborted, false, 'the provider call goes on for the others');
  answerAll(sent);
  assert.equal((await calls[0]!.promise).output, 'a');
  assert.equal((await calls[2]!.promise).output, 'c');

  // Once every call of a sent batch is cancelled, nobody wants the answer: the provider call is aborted.
  const pair = ['d', 'e'].map((text) => call(batching, text));
  mock.timers.tick(100);
  const flying = fake.batches[1]!;
  pair[0]!.abort.abort(reason);
  assert.equal(flying.ctx.signal.aborted, false);
  pair[1]!.abort.abort(reason);
  assert.equal(flying.ctx.signal.aborted, true);
  for (const c of pair) await assert.rejects(c.promise, (err) => err === reason);
});

test('each call heartbeats for its own activity while it waits and while its batch runs, and stops once settled', async (t) => {
  mockTimers(t);
  const fake = fakeProvider();
  const batching = withBatching(fake.provider, { maxSize: 10, maxWaitMs: 5000 });
  const [a, b] = ['a', 'b'].map((text) => call(batching, text));
  assert.deepEqual([a!.ctx.beats, b!.ctx.beats], [1, 1], 'a heartbeat on joining');
  mock.timers.tick(3000);
  assert.deepEqual([a!.ctx.beats, b!.ctx.beats], [4, 4], 'waiting for company longer than a heartbeat timeout is fine');
  mock.timers.tick(2000);
  const sent = fake.batches[0]!;
  const before = [a!.ctx.beats, b!.ctx.beats];
  sent.ctx.heartbeat(); // the provider's own heartbeat, e.g. between items of CPU-bound work
  assert.deepEqual(
    [a!.ctx.beats, b!.ctx.beats],
    before.map((n) => n + 1),
  );

  b!.abort.abort(new Error('gone'));
  await assert.rejects(b!.promise);
  answerAll(sent);
  await a!.promise;
  const after = [a!.ctx.beats, b!.ctx.beats];
  mock.timers.tick(10_000);
  sent.ctx.heartbeat();
  assert.deepEqual([a!.ctx.beats, b!.ctx.beats], after, 'no heartbeats for calls that have ended');
});

test('a heartbeat that throws (activity already gone) does not escape a timer', async (t) => {
  mockTimers(t);
  const fake = fakeProvider();
  const batching = withBatching(fake.provider, { maxSize: 10, maxWaitMs: 5000 });
  const throwing: CallContext = {
    signal: new AbortController().signal,
    heartbeat: () => {
      throw new Error('activity context is gone');
    },
  };
  const pending = batching.infer({ task: 'embed', text: 'x' }, throwing);
  mock.timers.tick(5000);
  fake.batches[0]!.ctx.heartbeat();
  answerAll(fake.batches[0]!);
  assert.equal((await pending).output, 'x');
});

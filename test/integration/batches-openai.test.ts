/**
 * An OpenAI batch file, unchanged, on a pool whose provider speaks the OpenAI protocol (the fake OpenAI server,
 * real worker and API processes): chat and embeddings lines in one file, the first calls answered 429 with
 * Retry-After, one poisoned line the provider refuses. Every other line succeeds; the output and errors files
 * take OpenAI's batch output line shape, in input order; the same file uploaded first and named by
 * `inputFileId` gives the same answers.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { fakeVector, POISON, startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack, TENANTS } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const LINES = 12;
/** The line the provider refuses: an embeddings line, so the call it was batched into (if any) is refused whole. */
const POISONED = 7;
/** The first calls the provider throttles: as many as open the pool's breaker (its default threshold). */
const THROTTLED = 3;
const CHAT_MODEL = 'gpt-4o-mini';
const EMBEDDING_MODEL = 'text-embedding-3-small';

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  stack = await new Stack({
    pools: {
      // Embeddings are batched natively: concurrent items go to the provider in one call.
      remote: { provider: 'openai', concurrency: 4, baseUrl: openai.url, model: 'fake-model', batch: { maxSize: 4, maxWaitMs: 20 } },
    },
    // Several groups, two at once: input order holds across groups.
    env: { SWITCHYARD_BATCH_GROUP_SIZE: '4', SWITCHYARD_BATCH_MAX_PARALLEL_GROUPS: '2' },
  }).start();
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

const run = randomUUID().slice(0, 8);
const customId = (i: number) => `request-${String(i).padStart(2, '0')}`;
/** Each line's text names it and this run, so the provider's log tells its calls apart. */
const textOf = (i: number) => `${customId(i)} of run ${run}${i === POISONED ? ` ${POISON}` : ''}`;
const isChat = (i: number) => i % 2 === 0;

/** An OpenAI batch file as OpenAI's own documentation writes one: chat and embeddings lines, both URLs. */
const file = `${Array.from({ length: LINES }, (_, i) =>
  JSON.stringify(
    isChat(i)
      ? {
          custom_id: customId(i),
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            model: CHAT_MODEL,
            messages: [
              { role: 'system', content: 'Answer briefly.' },
              { role: 'user', content: textOf(i) },
            ],
          },
        }
      : { custom_id: customId(i), method: 'POST', url: '/v1/embeddings', body: { model: EMBEDDING_MODEL, input: textOf(i) } },
  ),
).join('\n')}\n`;

async function waitForBatch(id: string): Promise<any> {
  return eventually(`batch ${id} to end`, async () => {
    const { body } = await stack.call('GET', `/v1/batches/${id}`);
    return ['completed', 'failed', 'expired', 'cancelled'].includes(body.status) ? body : undefined;
  });
}

/** The batch's output or errors file as sent: JSON Lines. */
async function fileText(id: string, which: 'output' | 'errors'): Promise<string> {
  const res = await fetch(`${stack.apiUrl}/v1/batches/${id}/${which}`, { headers: { authorization: `Bearer ${TENANTS.acme.key}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  return text;
}

const linesOf = (text: string): any[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as unknown);

/** A line's answer as OpenAI's batch output gives it: id, custom_id, a 200 response whose body is the endpoint's, error null. */
function assertAnswered(line: any, i: number): void {
  assert.deepEqual(Object.keys(line).sort(), ['custom_id', 'error', 'id', 'response'], JSON.stringify(line));
  assert.equal(line.custom_id, customId(i));
  assert.match(line.id, /^batch_req_[0-9a-f]{32}$/);
  assert.equal(line.error, null);
  assert.equal(line.response.status_code, 200);
  assert.match(line.response.request_id, /^req_[0-9a-f]+$/);
  const { body } = line.response;
  if (isChat(i)) {
    assert.equal(body.object, 'chat.completion');
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(typeof body.created, 'number');
    assert.equal(body.model, CHAT_MODEL);
    assert.equal(body.choices.length, 1);
    assert.deepEqual(body.choices[0], {
      index: 0,
      message: { role: 'assistant', content: `echo: ${textOf(i)}` },
      logprobs: null,
      finish_reason: 'stop',
    });
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    assert.ok(body.usage.completion_tokens > 0, JSON.stringify(body.usage));
  } else {
    assert.equal(body.object, 'list');
    assert.equal(body.model, EMBEDDING_MODEL);
    assert.deepEqual(body.data, [{ object: 'embedding', index: 0, embedding: fakeVector(textOf(i)) }]);
    assert.ok(body.usage.prompt_tokens > 0 && body.usage.total_tokens === body.usage.prompt_tokens, JSON.stringify(body.usage));
  }
}

/** The poisoned line as OpenAI's errors file gives a request the endpoint refused: the response with its status and error body. */
function assertRefused(line: any): void {
  assert.deepEqual(Object.keys(line).sort(), ['custom_id', 'error', 'id', 'response'], JSON.stringify(line));
  assert.equal(line.custom_id, customId(POISONED));
  assert.match(line.id, /^batch_req_[0-9a-f]{32}$/);
  assert.equal(line.error, null);
  assert.equal(line.response.status_code, 400);
  assert.match(line.response.request_id, /^req_[0-9a-f]+$/);
  const { error } = line.response.body;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.match(error.message, new RegExp(POISON));
  assert.equal(error.type, 'ProviderRejected');
}

const answered = Array.from({ length: LINES }, (_, i) => i).filter((i) => i !== POISONED);

/** Submits the file (as the body, or uploaded first), waits for its end and checks the batch and both files; returns its output lines. */
async function runFile(how: 'body' | 'inputFileId'): Promise<any[]> {
  let submitted;
  if (how === 'body') {
    submitted = await stack.call('POST', '/v1/batches?pool=remote', {
      rawBody: Buffer.from(file),
      headers: { 'content-type': 'application/jsonl' },
    });
  } else {
    const uploaded = await stack.upload(file, 'text/plain', { query: '?filename=openai-batch.jsonl' });
    assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
    submitted = await stack.call('POST', '/v1/batches', { body: { inputFileId: uploaded.body.id, pool: 'remote' } });
  }
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  assert.equal(submitted.body.format, 'openai');

  const batch = await waitForBatch(submitted.body.id);
  assert.equal(batch.status, 'completed', JSON.stringify(batch));
  assert.deepEqual(batch.requestCounts, { total: LINES, completed: LINES - 1, failed: 1 });

  const outputText = await fileText(batch.id, 'output');
  assert.equal(await fileText(batch.id, 'output'), outputText, 'every download of the output is the same');
  const output = linesOf(outputText);
  assert.deepEqual(
    output.map((l) => l.custom_id),
    answered.map(customId),
    'every line but the poisoned one answered, in input order',
  );
  output.forEach((line, at) => assertAnswered(line, answered[at]!));
  assert.equal(new Set(output.map((l) => l.id)).size, output.length, 'a request id per line');

  const errors = linesOf(await fileText(batch.id, 'errors'));
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assertRefused(errors[0]);
  return output;
}

test('chat and embeddings lines through 429s and a poisoned line: OpenAI output and error lines, in input order', async () => {
  openai.script(Array.from({ length: THROTTLED }, () => ({ status: 429, retryAfter: '1' })));
  await runFile('body');

  // The throttled calls were made again, and answered.
  const throttled = openai.requests.filter((r) => r.status === 429 && JSON.stringify(r.body).includes(run));
  assert.equal(throttled.length, THROTTLED, 'the scripted 429s were answered');
  for (const call of throttled) {
    for (const i of answered.filter((n) => JSON.stringify(call.body).includes(textOf(n)))) {
      const later = openai.requestsMentioning(textOf(i)).filter((r) => r.receivedAt >= call.receivedAt && r.status === 200);
      assert.ok(later.length > 0, `${customId(i)} was called again after its 429, and answered`);
    }
  }
  // The refusal is final: every call with the poisoned text was refused, and its item was not retried. It
  // was sent at most twice: in a batched call the provider refused whole, then alone.
  const poisoned = openai.requestsMentioning(textOf(POISONED));
  const batched = openai.requests.filter((r) => Array.isArray((r.body as { input?: unknown } | undefined)?.input)).length;
  console.log(
    `${openai.requests.length} provider calls: ${batched} of them embeddings of several lines; the poisoned line sent ${poisoned.length}×`,
  );
  assert.ok(poisoned.length >= 1 && poisoned.length <= 2, `${poisoned.length} calls for the poisoned line`);
  assert.ok(poisoned.every((r) => r.status === 400));
  // The other lines: each answered once, and called again only after a 429.
  for (const i of answered) {
    const calls = openai.requestsMentioning(textOf(i));
    assert.equal(calls.filter((r) => r.status === 200).length, 1, `${customId(i)}: ${calls.map((r) => r.status).join(', ')}`);
  }
});

test('the same file uploaded first and named by inputFileId gives the same answers', async () => {
  openai.script([]);
  const fromBody = await runFile('body');
  const fromUpload = await runFile('inputFileId');
  // The ids are the batch's own; the answers are the same.
  const answers = (lines: any[]) =>
    lines.map(({ custom_id, response }) => {
      const { id: _id, created: _created, ...body } = response.body;
      return { custom_id, status: response.status_code, body };
    });
  assert.deepEqual(answers(fromUpload), answers(fromBody));
});

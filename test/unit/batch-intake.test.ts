/**
 * A batch file's intake against the real file blob store: every line checked before anything is kept, each
 * refusal naming its line and leaving nothing behind, the valid items split into group files in order, and
 * OpenAI batch lines mapped onto the pool's tasks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Request, Response } from 'express';
import { errorHandler } from '../../src/api/error-problems';
import { createBlobStore } from '../../src/blobs';
import { batchScope, type BatchItem, groupItemsKey } from '../../src/batches/contract';
import { BatchFileRejectedError } from '../../src/batches/errors';
import { intakeBatch, type IntakeOptions } from '../../src/batches/intake';
import { CUSTOM_ID_MAX_CHARS } from '../../src/batches/lines';
import { INFERENCE_TASKS } from '../../src/inference/provider';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-batch-intake-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const blobs = createBlobStore({ kind: 'file', dir, keys: [] });
let batches = 0;
const freshScope = () => batchScope('acme', `batch-${++batches}`);

const OPTIONS: IntakeOptions = { tasks: INFERENCE_TASKS, maxLines: 1000, maxBytes: 1024 * 1024, groupSize: 500 };
const OPENAI_TASKS = ['chat', 'embed', 'summarize'] as const;

/** `text` as an upload arrives: in small pieces, cut anywhere, inside a line or a multi-byte character too. */
async function* upload(text: string, piece = 7): AsyncIterable<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += piece) yield bytes.subarray(at, at + piece);
}
const jsonl = (...lines: unknown[]) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
const sentiment = (id: string, text = `Line ${id} is great.`) => ({ custom_id: id, task: 'sentiment', input: { text } });
const chat = (id: string, body: Record<string, unknown> = {}) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi.' }], ...body },
});
const embedding = (id: string, input: unknown = 'Embed me.') => ({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { input } });

async function groupItems(scope: string, groups: number): Promise<BatchItem[][]> {
  const read = async (i: number) =>
    (await blobs.get(groupItemsKey(scope, i)))
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as BatchItem);
  return Promise.all(Array.from({ length: groups }, (_, i) => read(i)));
}

/** The refusal of `file`, after checking it left nothing in the store. */
async function refusal(file: string | AsyncIterable<Uint8Array>, opts: Partial<IntakeOptions> = {}): Promise<BatchFileRejectedError> {
  const scope = freshScope();
  let refused: unknown;
  await intakeBatch(blobs, scope, typeof file === 'string' ? upload(file) : file, { ...OPTIONS, ...opts }).catch((err: unknown) => {
    refused = err;
  });
  assert.ok(refused instanceof BatchFileRejectedError, `refused with ${String(refused)}`);
  assert.deepEqual(await blobs.list(scope), [], 'nothing of a refused file is kept');
  return refused;
}

/** The one error of a file with one bad line. */
async function onlyError(file: string, opts: Partial<IntakeOptions> = {}) {
  const { errors, errorCount } = await refusal(file, opts);
  assert.equal(errorCount, 1, JSON.stringify(errors));
  return errors[0]!;
}

describe('batch intake', () => {
  it('reads CRLF lines, skips blank ones, takes a last line without a newline, and numbers items as the file does', async () => {
    const scope = freshScope();
    const file = [
      JSON.stringify(sentiment('a', 'Café ☕ is lovely.')),
      '',
      JSON.stringify({ custom_id: 'b', task: 'chat', input: { messages: [{ role: 'user', content: 'Hello?' }] }, maxTokens: 20 }),
      '   ',
      JSON.stringify({ custom_id: 'c', task: 'embed', input: { text: 'vector' }, model: 'm1', temperature: 0 }),
    ].join('\r\n');
    const got = await intakeBatch(blobs, scope, upload(`\uFEFF${file}`, 3), OPTIONS);
    assert.equal(got.format, 'switchyard');
    assert.deepEqual({ items: got.items, groups: got.groups }, { items: 3, groups: 1 });
    assert.equal(got.bytes, Buffer.byteLength(`\uFEFF${file}`));
    assert.equal(got.input.key, `${scope}/${got.input.sha256}`);
    assert.deepEqual(await groupItems(scope, 1), [
      [
        { line: 1, customId: 'a', request: { task: 'sentiment', text: 'Café ☕ is lovely.' } },
        { line: 3, customId: 'b', request: { task: 'chat', messages: [{ role: 'user', content: 'Hello?' }], maxTokens: 20 } },
        { line: 5, customId: 'c', request: { task: 'embed', text: 'vector', model: 'm1', temperature: 0 } },
      ],
    ]);
    assert.deepEqual((await blobs.list(scope)).sort(), [got.input.key, groupItemsKey(scope, 0)].sort());
  });

  it('splits 1,234 items into groups of 500, 500 and 234, in order', async () => {
    const scope = freshScope();
    const lines = Array.from({ length: 1234 }, (_, i) => sentiment(`item-${i}`));
    const got = await intakeBatch(blobs, scope, upload(jsonl(...lines), 4096), { ...OPTIONS, maxLines: 2000 });
    assert.deepEqual({ items: got.items, groups: got.groups }, { items: 1234, groups: 3 });
    const groups = await groupItems(scope, 3);
    assert.deepEqual(
      groups.map((g) => g.length),
      [500, 500, 234],
    );
    assert.deepEqual(
      groups.flat().map((item) => [item.line, item.customId]),
      lines.map((_, i) => [i + 1, `item-${i}`]),
    );
  });

  it('maps OpenAI chat lines: text parts joined, developer as system, max_completion_tokens, harmless fields ignored', async () => {
    const scope = freshScope();
    const file = jsonl(
      chat('c1', { max_tokens: 50, temperature: 0.2 }),
      chat('c2', {
        messages: [
          { role: 'developer', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'First part.' },
              { type: 'text', text: 'Second part.' },
            ],
          },
          { role: 'assistant', content: 'Sure.' },
        ],
        max_completion_tokens: 7,
        n: 1,
        stream: false,
        top_p: 1,
        user: 'u-1',
        metadata: { team: 'a' },
        response_format: { type: 'text' },
      }),
    );
    const got = await intakeBatch(blobs, scope, upload(file), { ...OPTIONS, tasks: OPENAI_TASKS });
    assert.equal(got.format, 'openai');
    const url = '/v1/chat/completions' as const;
    assert.deepEqual(await groupItems(scope, 1), [
      [
        {
          line: 1,
          customId: 'c1',
          request: { task: 'chat', messages: [{ role: 'user', content: 'Hi.' }], model: 'gpt-4o-mini', maxTokens: 50, temperature: 0.2 },
          openai: { url },
        },
        {
          line: 2,
          customId: 'c2',
          request: {
            task: 'chat',
            messages: [
              { role: 'system', content: 'Be brief.' },
              { role: 'user', content: 'First part.\nSecond part.' },
              { role: 'assistant', content: 'Sure.' },
            ],
            model: 'gpt-4o-mini',
            maxTokens: 7,
          },
          openai: { url },
        },
      ],
    ]);
  });

  it('maps OpenAI embeddings lines, one input each, to the embed task', async () => {
    const scope = freshScope();
    const file = jsonl(embedding('e1'), {
      ...embedding('e2', ['Only one.']),
      body: { input: ['Only one.'], model: 'emb-1', encoding_format: 'float' },
    });
    const got = await intakeBatch(blobs, scope, upload(file), { ...OPTIONS, tasks: OPENAI_TASKS });
    const url = '/v1/embeddings' as const;
    assert.deepEqual(got.format, 'openai');
    assert.deepEqual(await groupItems(scope, 1), [
      [
        { line: 1, customId: 'e1', request: { task: 'embed', text: 'Embed me.' }, openai: { url } },
        { line: 2, customId: 'e2', request: { task: 'embed', text: 'Only one.', model: 'emb-1' }, openai: { url } },
      ],
    ]);
  });

  describe('refuses a file with a bad line, naming the line, and keeps nothing', () => {
    const ok = sentiment('ok');
    const cases: { name: string; file: string; opts?: Partial<IntakeOptions>; line: number; message: RegExp }[] = [
      { name: 'bad JSON', file: jsonl(ok, '{"custom_id": "x", "task": '), line: 2, message: /^not valid JSON: / },
      { name: 'not an object', file: jsonl(ok, '', '[1, 2]'), line: 3, message: /one JSON object/ },
      { name: 'an unknown task', file: jsonl(ok, { ...sentiment('t'), task: 'translate' }), line: 2, message: /^task: Invalid option/ },
      {
        name: 'a task the pool does not do',
        file: jsonl({ custom_id: 'k', task: 'keywords', input: { text: 'x' } }),
        opts: { tasks: OPENAI_TASKS },
        line: 1,
        message: /^task: the pool does not do keywords; it does chat, embed, summarize$/,
      },
      {
        name: 'text for the chat task',
        file: jsonl(ok, { ...sentiment('c'), task: 'chat' }),
        line: 2,
        message: /^input: the chat task takes input.messages/,
      },
      {
        name: 'a chat message of an unknown role',
        file: jsonl({ custom_id: 'm', task: 'chat', input: { messages: [{ role: 'tool', content: 'x' }] } }),
        line: 1,
        message: /^input.messages.0.role: Invalid option: expected one of "system"\|"user"\|"assistant"$/,
      },
      {
        name: 'no input',
        file: jsonl({ custom_id: 'n', task: 'keywords' }),
        line: 1,
        message: /^input: Invalid input: expected object, received undefined$/,
      },
      { name: 'an unknown field', file: jsonl(ok, { ...sentiment('f'), colour: 'blue' }), line: 2, message: /Unrecognized key: "colour"/ },
      {
        name: 'a missing custom_id',
        file: jsonl(ok, { task: 'sentiment', input: { text: 'x' } }),
        line: 2,
        message: /^custom_id: required$/,
      },
      { name: 'an empty custom_id', file: jsonl(sentiment('')), line: 1, message: /^custom_id: must not be empty$/ },
      {
        name: 'a custom_id over 512 characters',
        file: jsonl(sentiment('x'.repeat(CUSTOM_ID_MAX_CHARS)), sentiment('y'.repeat(CUSTOM_ID_MAX_CHARS + 1))),
        line: 2,
        message: /^custom_id: at most 512 characters$/,
      },
      {
        name: 'a duplicate custom_id',
        file: jsonl(sentiment('a'), '', sentiment('b'), sentiment('a')),
        line: 4,
        message: /^custom_id "a" is already used on line 1$/,
      },
      {
        name: 'mixed formats',
        file: jsonl('', ok, chat('c')),
        line: 3,
        message: /^a line in OpenAI batch format, but line 2 is in Switchyard format; one format per file$/,
      },
      {
        name: 'an unknown URL',
        file: jsonl(chat('a'), { ...chat('b'), url: '/v1/completions' }),
        line: 2,
        message: /^url: must be \/v1\/chat\/completions or \/v1\/embeddings$/,
      },
      {
        name: 'a method other than POST',
        file: jsonl({ ...chat('a'), method: 'GET' }),
        line: 1,
        message: /^method: must be "POST"$/,
      },
      {
        name: 'an OpenAI endpoint the pool does not do',
        file: jsonl(embedding('a')),
        opts: { tasks: ['sentiment', 'chat'] },
        line: 1,
        message: /^url: the pool does not do embed; it does sentiment, chat$/,
      },
      { name: 'n over 1', file: jsonl(chat('a', { n: 3 })), line: 1, message: /^body.n: one completion per line: only 1 is supported$/ },
      { name: 'stream: true', file: jsonl(chat('a', { stream: true })), line: 1, message: /^body.stream: batch results are not streamed/ },
      {
        name: 'tools and stop',
        file: jsonl(chat('a', { tools: [], stop: ['\n'] })),
        line: 1,
        message: /^body: not supported in a batch: tools, stop$/,
      },
      {
        name: 'max_tokens with max_completion_tokens',
        file: jsonl(chat('a', { max_tokens: 5, max_completion_tokens: 5 })),
        line: 1,
        message: /^body.max_completion_tokens: give max_tokens or max_completion_tokens, not both$/,
      },
      {
        name: 'an image part',
        file: jsonl(chat('a', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] })),
        line: 1,
        message: /^body.messages.0.content: a string, or an array of .*images, audio and files are not supported$/,
      },
      {
        name: 'several embedding inputs',
        file: jsonl(embedding('a', ['one', 'two'])),
        line: 1,
        message: /^body.input: one string \(or an array of one\): one input per line/,
      },
      {
        name: 'more lines than the limit',
        file: jsonl(sentiment('1'), '', sentiment('2'), sentiment('3'), '', sentiment('4')),
        opts: { maxLines: 3 },
        line: 6,
        message: /^the file has more than 3 lines \(SWITCHYARD_BATCH_MAX_LINES\)/,
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const error = await onlyError(c.file, c.opts);
        assert.equal(error.line, c.line);
        assert.match(error.message, c.message);
      });
    }

    it('a file over the byte limit, with an error of the file as a whole (no line)', async () => {
      const big = jsonl(...Array.from({ length: 100 }, (_, i) => sentiment(`b${i}`)));
      const refused = await refusal(big, { maxBytes: 1024 });
      assert.deepEqual(refused.errors, [{ message: 'the file is over the limit of 1024 bytes (SWITCHYARD_BATCH_MAX_BYTES)' }]);
      assert.equal(refused.errorCount, 1);
    });

    it('an empty file, or one of blank lines only', async () => {
      for (const file of ['', '\n\r\n  \n']) {
        const refused = await refusal(file);
        assert.deepEqual(refused.errors, [{ message: 'the file has no lines; send one JSON request per line' }]);
      }
    });
  });

  it('lists the first 20 errors, counts them all, and keeps checking past the line limit', async () => {
    const file = jsonl(...Array.from({ length: 40 }, (_, i) => (i % 2 ? sentiment(`s${i}`) : `{bad ${i}`)));
    const refused = await refusal(file);
    assert.equal(refused.errorCount, 20);
    assert.equal(refused.lines, 40);
    assert.deepEqual(
      refused.errors.map((e) => e.line),
      Array.from({ length: 20 }, (_, i) => 2 * i + 1),
    );
    const fewer = await refusal(file, { maxErrors: 5, maxLines: 30 });
    assert.equal(fewer.errors.length, 5);
    assert.equal(fewer.errorCount, 21, 'twenty bad lines and one over the limit');
    assert.ok(fewer.errors.every((e) => e.line !== undefined && e.line <= 9));
  });

  it('answers a refusal with 400 invalid-batch-file, its errors and their count', () => {
    const refused = new BatchFileRejectedError([{ line: 2, message: 'not valid JSON: oops' }], 3, 10);
    const sent: { status?: number; body?: Record<string, unknown> } = {};
    const res = {
      headersSent: false,
      set: () => res,
      status: (status: number) => ((sent.status = status), res),
      type: () => res,
      json: (body: Record<string, unknown>) => ((sent.body = body), res),
    };
    errorHandler(() => assert.fail('a refusal is no unhandled error'))(refused, {} as Request, res as unknown as Response, () => undefined);
    assert.equal(sent.status, 400);
    assert.deepEqual(sent.body, {
      type: '/problems/invalid-batch-file',
      code: 'invalid-batch-file',
      title: 'The batch file is not valid',
      status: 400,
      detail: 'The batch file has 3 errors; the first: line 2: not valid JSON: oops',
      errors: [{ line: 2, message: 'not valid JSON: oops' }],
      errorCount: 3,
    });
  });

  it('validates and splits 20,000 lines as they stream, without the file whole', async () => {
    const scope = freshScope();
    const count = 20_000;
    async function* generated(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < count; i += 500) {
        yield Buffer.from(
          jsonl(...Array.from({ length: 500 }, (_, j) => sentiment(`gen-${i + j}`, `Sentence number ${i + j} reads well.`))),
        );
      }
    }
    const started = Date.now();
    const got = await intakeBatch(blobs, scope, generated(), { ...OPTIONS, maxLines: 50_000, maxBytes: 200 * 1024 * 1024 });
    const tookMs = Date.now() - started;
    assert.deepEqual({ items: got.items, groups: got.groups }, { items: count, groups: 40 });
    const last = await groupItems(scope, 40).then((groups) => groups[39]!);
    assert.deepEqual(last.at(-1), {
      line: count,
      customId: `gen-${count - 1}`,
      request: { task: 'sentiment', text: `Sentence number ${count - 1} reads well.` },
    });
    // Generous for a busy 2-core machine; it takes well under a second on an idle one.
    assert.ok(tookMs < 30_000, `took ${tookMs} ms`);
  });
});

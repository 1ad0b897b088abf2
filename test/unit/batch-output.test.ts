/**
 * A batch's output and errors files, made from result parts in the real file blob store as group activities
 * leave them: input order across groups and parts, groups without results yet left out, and each line in
 * Switchyard's shape or exactly in OpenAI's batch output shape.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createBlobStore } from '../../src/blobs';
import {
  BATCH_ITEM_FAILURES,
  batchScope,
  type BatchItemResult,
  type GroupProgress,
  groupManifestKey,
  groupPartKey,
} from '../../src/batches/contract';
import { batchResultLines } from '../../src/batches/output';
import type { InferenceResult } from '../../src/inference/provider';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-batch-output-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const blobs = createBlobStore({ kind: 'file', dir, keys: [] });
let batches = 0;

const CREATED_AT = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const usage = { promptTokens: 12, completionTokens: 5, totalTokens: 17 };
const chatResult = (content: string): InferenceResult => ({
  task: 'chat',
  model: 'gpt-4o-mini-2024-07-18',
  output: { message: { role: 'assistant', content }, finishReason: 'length' },
  usage,
});
const embedResult: InferenceResult = {
  task: 'embed',
  model: 'text-embedding-3-small',
  output: { embedding: [0.25, -0.5, 1], dimensions: 3 },
  usage: { promptTokens: 4, completionTokens: 0, totalTokens: 4 },
};
const ok = (line: number, result: InferenceResult, attempts = 1): BatchItemResult => ({
  line,
  customId: `id-${line}`,
  ok: true,
  result,
  attempts,
});
const failed = (line: number, error: { type: string; message: string; status?: number }, attempts = 3): BatchItemResult => ({
  line,
  customId: `id-${line}`,
  ok: false,
  error,
  attempts,
});

/** Writes a group's results as its activity does: parts of consecutive items, then the manifest that lists them. */
async function writeGroup(scope: string, index: number, parts: BatchItemResult[][]): Promise<void> {
  const keys: string[] = [];
  let from = 0;
  for (const part of parts) {
    const key = groupPartKey(scope, index, from, 'a1');
    await blobs.putAt(key, part.map((r) => `${JSON.stringify(r)}\n`).join(''));
    keys.push(key);
    from += part.length;
  }
  const all = parts.flat();
  const progress: GroupProgress = {
    done: all.length,
    completed: all.filter((r) => r.ok).length,
    failed: all.filter((r) => !r.ok).length,
    parts: keys,
  };
  await blobs.putAt(groupManifestKey(scope, index), JSON.stringify(progress));
}

async function linesOf(...args: Parameters<typeof batchResultLines>): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  for await (const line of batchResultLines(...args)) {
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one JSON line each');
    lines.push(JSON.parse(line) as Record<string, unknown>);
  }
  return lines;
}

describe('batch output files', () => {
  const timeout = { type: 'ProviderTimeout', message: 'no answer within 60000 ms' };
  const rejected = { type: 'ProviderRejected', message: 'provider answered HTTP 400: context too long', status: 400 };

  it('Switchyard format: output and errors in input order across groups and parts; a group without results yet has none', async () => {
    const scope = batchScope('acme', `batch-${++batches}`);
    await writeGroup(scope, 0, [[ok(1, chatResult('one')), failed(2, timeout)], [ok(4, chatResult('two'), 2)]]);
    // Group 1 has not run yet: no manifest.
    await writeGroup(scope, 2, [[failed(9, rejected)], [ok(10, embedResult), ok(11, chatResult('three'))]]);

    assert.deepEqual(await linesOf(blobs, scope, 3, 'output', 'switchyard', 'batch-x'), [
      { custom_id: 'id-1', result: { model: 'gpt-4o-mini-2024-07-18', output: chatResult('one').output, usage }, attempts: 1 },
      { custom_id: 'id-4', result: { model: 'gpt-4o-mini-2024-07-18', output: chatResult('two').output, usage }, attempts: 2 },
      {
        custom_id: 'id-10',
        result: { model: 'text-embedding-3-small', output: embedResult.output, usage: embedResult.usage },
        attempts: 1,
      },
      { custom_id: 'id-11', result: { model: 'gpt-4o-mini-2024-07-18', output: chatResult('three').output, usage }, attempts: 1 },
    ]);
    assert.deepEqual(await linesOf(blobs, scope, 3, 'errors', 'switchyard', 'batch-x'), [
      { custom_id: 'id-2', error: timeout, attempts: 3 },
      { custom_id: 'id-9', error: rejected, attempts: 3 },
    ]);
    assert.deepEqual(await linesOf(blobs, batchScope('acme', 'batch-none'), 4, 'output', 'switchyard', 'batch-none'), []);
  });

  it('OpenAI format: chat completions and embeddings bodies exactly in OpenAI batch output shape', async () => {
    const scope = batchScope('acme', `batch-${++batches}`);
    await writeGroup(scope, 0, [[ok(1, chatResult('Bonjour.'))], [ok(2, embedResult)]]);
    const [chat, embedding] = await linesOf(blobs, scope, 1, 'output', 'openai', 'batch-A', CREATED_AT);

    assert.match(String(chat!.id), /^batch_req_[0-9a-f]{32}$/);
    const response = chat!.response as { request_id: string; body: { id: string } };
    assert.match(response.request_id, /^req_[0-9a-f]{32}$/);
    assert.match(response.body.id, /^chatcmpl-[0-9a-f]{29}$/);
    assert.deepEqual(chat, {
      id: chat!.id,
      custom_id: 'id-1',
      response: {
        status_code: 200,
        request_id: response.request_id,
        body: {
          id: response.body.id,
          object: 'chat.completion',
          created: Math.floor(CREATED_AT / 1000),
          model: 'gpt-4o-mini-2024-07-18',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Bonjour.' }, logprobs: null, finish_reason: 'length' }],
          usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
        },
      },
      error: null,
    });
    assert.deepEqual(embedding, {
      id: embedding!.id,
      custom_id: 'id-2',
      response: {
        status_code: 200,
        request_id: (embedding!.response as { request_id: string }).request_id,
        body: {
          object: 'list',
          data: [{ object: 'embedding', index: 0, embedding: [0.25, -0.5, 1] }],
          model: 'text-embedding-3-small',
          usage: { prompt_tokens: 4, total_tokens: 4 },
        },
      },
      error: null,
    });

    // The same file every time it is read; another batch's lines have ids of their own.
    assert.deepEqual(await linesOf(blobs, scope, 1, 'output', 'openai', 'batch-A', CREATED_AT), [chat, embedding]);
    const other = await linesOf(blobs, scope, 1, 'output', 'openai', 'batch-B', CREATED_AT);
    assert.notEqual(other[0]!.id, chat.id);
    assert.notEqual(chat.id, embedding.id);
  });

  it('OpenAI format: a provider HTTP error is a response with an error body; an item with no response has an error code', async () => {
    const scope = batchScope('acme', `batch-${++batches}`);
    const expired = { type: BATCH_ITEM_FAILURES.expired, message: 'the completion window ended before the item ran' };
    const cancelled = { type: BATCH_ITEM_FAILURES.cancelled, message: 'the batch was cancelled before the item ran' };
    const malformed = { type: 'ProviderUnavailable', message: 'malformed chat completion response from provider', status: 200 };
    await writeGroup(scope, 0, [[failed(1, rejected), ok(2, chatResult('fine'))]]);
    await writeGroup(scope, 1, [
      [failed(3, expired), failed(4, cancelled)],
      [failed(5, timeout), failed(6, malformed)],
    ]);

    const errors = await linesOf(blobs, scope, 2, 'errors', 'openai', 'batch-C');
    assert.deepEqual(
      errors.map(({ custom_id, response, error }) => ({
        custom_id,
        response: response && { ...response, request_id: 'req' },
        error,
      })),
      [
        {
          custom_id: 'id-1',
          response: {
            status_code: 400,
            request_id: 'req',
            body: { error: { message: rejected.message, type: 'ProviderRejected', param: null, code: null } },
          },
          error: null,
        },
        { custom_id: 'id-3', response: null, error: { code: 'batch_expired', message: expired.message } },
        { custom_id: 'id-4', response: null, error: { code: 'batch_cancelled', message: cancelled.message } },
        { custom_id: 'id-5', response: null, error: { code: 'provider_timeout', message: timeout.message } },
        { custom_id: 'id-6', response: null, error: { code: 'provider_unavailable', message: malformed.message } },
      ],
    );
    assert.ok(errors.every((e) => /^batch_req_[0-9a-f]{32}$/.test(String(e.id))));
    assert.deepEqual(
      (await linesOf(blobs, scope, 2, 'output', 'openai', 'batch-C')).map((l) => l.custom_id),
      ['id-2'],
    );
  });

  it('OpenAI format: usage the provider did not report is zeros, and created is stable without an acceptance time', async () => {
    const scope = batchScope('acme', `batch-${++batches}`);
    const { usage: _, ...noUsage } = chatResult('no usage');
    await writeGroup(scope, 0, [[ok(1, noUsage)]]);
    const [line] = await linesOf(blobs, scope, 1, 'output', 'openai', 'batch-D');
    const body = (line!.response as { body: { created: number; usage: unknown } }).body;
    assert.equal(body.created, 0);
    assert.deepEqual(body.usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  });

  it('streams many parts of many groups in order', async () => {
    const scope = batchScope('acme', `batch-${++batches}`);
    const groups = 5;
    for (let g = 0; g < groups; g++) {
      const items = Array.from({ length: 120 }, (_, i) => g * 120 + i + 1);
      const parts = [items.slice(0, 50), items.slice(50, 100), items.slice(100)];
      await writeGroup(
        scope,
        g,
        parts.map((p) => p.map((line) => (line % 7 === 0 ? failed(line, timeout) : ok(line, embedResult)))),
      );
    }
    const all = Array.from({ length: groups * 120 }, (_, i) => i + 1);
    const ids = async (which: 'output' | 'errors') =>
      (await linesOf(blobs, scope, groups, which, 'switchyard', 'batch-E')).map((l) => l.custom_id);
    assert.deepEqual(
      await ids('output'),
      all.filter((n) => n % 7 !== 0).map((n) => `id-${n}`),
    );
    assert.deepEqual(
      await ids('errors'),
      all.filter((n) => n % 7 === 0).map((n) => `id-${n}`),
    );
  });
});

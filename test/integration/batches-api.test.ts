/**
 * The batch API end to end on the real dev server, real worker processes and a real API process: files
 * sent as the body (both JSON Lines types) or uploaded first, their lifecycle to `completed` with output and
 * errors in input order, cancel mid-run, idempotency and quotas, every refusal, and the CLI.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { batchScope, batchWorkflowId, type BatchJobInput } from '../../src/batches/contract';
import { batchIdForIdempotencyKey } from '../../src/jobs/ids';
import { fetchHistoryDecoded } from '../../src/temporal/decoded';
import { decodePayload } from '../../src/temporal/proto';
import { verifyWebhook } from '../../src/net/webhook';
import { sentimentJob, Stack, TENANTS } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';
import { startWebhookReceiver, type WebhookReceiver } from '../../testkit/webhook-receiver';

const LIMITS = { lines: 40, bytes: 8192 };
const BIN = path.resolve(__dirname, '../../bin/switchyard');
const WEBHOOK_SECRET = 'batch-webhook-secret-0123456789';

let stack: Stack;
let receiver: WebhookReceiver;

before(async () => {
  receiver = await startWebhookReceiver();
  stack = new Stack({
    pools: {
      local: { provider: 'local', concurrency: 4 },
      // Slow enough to cancel mid-run: each item takes a second, two at once per group.
      slow: { provider: 'synthetic', concurrency: 2, latencyMs: 1000 },
      limited: { provider: 'local', concurrency: 3, rateLimit: { requestsPerSecond: 100 } },
    },
    env: {
      SWITCHYARD_BATCH_MAX_LINES: String(LIMITS.lines),
      SWITCHYARD_BATCH_MAX_BYTES: String(LIMITS.bytes),
      SWITCHYARD_BATCH_GROUP_SIZE: '4',
      SWITCHYARD_BATCH_MAX_PARALLEL_GROUPS: '2',
      SWITCHYARD_OUTBOUND_ALLOW: '127.0.0.1/32',
      SWITCHYARD_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
  });
  // globex may have one open job: a running batch is that one.
  stack.env.SWITCHYARD_TENANTS = JSON.stringify({ [stack.tenant('globex')]: { maxOpenJobs: 1 } });
  await stack.start();
});
after(async () => {
  await stack?.stop();
  await receiver?.close();
});

const sentimentLine = (customId: string, text: string) => JSON.stringify({ custom_id: customId, task: 'sentiment', input: { text } });
const jsonl = (lines: string[]) => `${lines.join('\n')}\n`;

/** `n` lines asking for sentiment: item-0 … item-(n-1). */
const sentimentFile = (n: number) => jsonl(Array.from({ length: n }, (_, i) => sentimentLine(`item-${i}`, `Item ${i} is wonderful.`)));

function submit(
  body: string | Uint8Array,
  opts: { query?: string; type?: string; as?: keyof typeof TENANTS | null; headers?: Record<string, string> } = {},
) {
  const headers = { 'content-type': opts.type ?? 'application/x-ndjson', ...opts.headers };
  return stack.call('POST', `/v1/batches${opts.query ?? ''}`, { as: opts.as, rawBody: Buffer.from(body), headers });
}

async function waitForBatch(id: string, statuses: string[], as: keyof typeof TENANTS = 'acme'): Promise<any> {
  return eventually(`batch ${id} to be ${statuses.join('|')}`, async () => {
    const { body } = await stack.call('GET', `/v1/batches/${id}`, { as });
    return statuses.includes(body.status) ? body : undefined;
  });
}

/** The batch's output or errors file, parsed. */
async function resultsOf(id: string, which: 'output' | 'errors'): Promise<any[]> {
  const res = await fetch(`${stack.apiUrl}/v1/batches/${id}/${which}`, { headers: { authorization: `Bearer ${TENANTS.acme.key}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as unknown);
}

/** Whether a workflow exists for the batch id (the lines a refused file names were never started). */
async function workflowExists(tenant: string, batchId: string): Promise<boolean> {
  const temporal = await stack.temporal();
  try {
    await temporal.workflow.getHandle(batchWorkflowId(tenant, batchId)).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

describe('a batch runs to its end', () => {
  test('a JSONL body (application/x-ndjson) completes with every item in output or errors, in input order', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => sentimentLine(`item-${i}`, i === 6 ? '   ' : `Item ${i} is wonderful.`));
    const submitted = await submit(jsonl(lines), { query: '?metadata[team]=nlp&metadata[run]=7' });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const { id } = submitted.body;
    assert.match(id, /^batch-[0-9A-Z]{26}$/);
    assert.equal(submitted.headers.get('location'), `/v1/batches/${id}`);
    assert.equal(submitted.body.object, 'batch');
    assert.equal(submitted.body.status, 'in_progress');
    assert.equal(submitted.body.format, 'switchyard');
    assert.equal(submitted.body.pool, 'local');
    assert.equal(submitted.body.completionWindow, '24h');
    assert.deepEqual(submitted.body.requestCounts, { total: 10, completed: 0, failed: 0 });
    assert.deepEqual(submitted.body.metadata, { team: 'nlp', run: '7' });
    assert.equal(Date.parse(submitted.body.expiresAt) - Date.parse(submitted.body.createdAt), 86_400_000);
    assert.ok(submitted.body.links.temporalUi.includes(`/workflows/${encodeURIComponent(`${stack.tenant()}/${id}`)}/`));

    const batch = await waitForBatch(id, ['completed', 'failed']);
    assert.equal(batch.status, 'completed', JSON.stringify(batch));
    assert.deepEqual(batch.requestCounts, { total: 10, completed: 9, failed: 1 });
    for (const at of ['createdAt', 'inProgressAt', 'finalizingAt', 'completedAt']) assert.ok(batch[at], `${at} is set`);
    assert.ok(batch.inProgressAt <= batch.finalizingAt && batch.finalizingAt <= batch.completedAt);
    assert.deepEqual([batch.failedAt, batch.expiredAt, batch.cancelledAt], [null, null, null]);

    const output = await resultsOf(id, 'output');
    assert.deepEqual(
      output.map((l) => l.custom_id),
      ['item-0', 'item-1', 'item-2', 'item-3', 'item-4', 'item-5', 'item-7', 'item-8', 'item-9'],
    );
    assert.equal(output[0].result.output.label, 'positive');
    const errors = await resultsOf(id, 'errors');
    assert.deepEqual(
      errors.map((l) => [l.custom_id, l.error.type]),
      [['item-6', 'InvalidInput']],
    );
  });

  test('application/jsonl with the settings in the query, and the file uploaded first and named in a JSON body', async () => {
    const file = sentimentFile(6);
    const inline = await submit(file, { type: 'application/jsonl', query: '?pool=slow&completionWindow=1h&priority=1' });
    assert.equal(inline.status, 202, JSON.stringify(inline.body));
    assert.deepEqual([inline.body.pool, inline.body.completionWindow, inline.body.priority], ['slow', '1h', 1]);

    const uploaded = await stack.upload(file, 'text/plain', { query: '?filename=requests.jsonl' });
    assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
    const named = await stack.call('POST', '/v1/batches', {
      body: { inputFileId: uploaded.body.id, metadata: { source: 'upload' }, priority: 2 },
    });
    assert.equal(named.status, 202, JSON.stringify(named.body));
    assert.deepEqual([named.body.pool, named.body.priority, named.body.metadata], ['local', 2, { source: 'upload' }]);

    for (const { id } of [inline.body, named.body]) {
      const batch = await waitForBatch(id, ['completed', 'failed']);
      assert.deepEqual([batch.status, batch.requestCounts], ['completed', { total: 6, completed: 6, failed: 0 }]);
      assert.deepEqual(
        (await resultsOf(id, 'output')).map((l) => l.custom_id),
        ['item-0', 'item-1', 'item-2', 'item-3', 'item-4', 'item-5'],
      );
      assert.deepEqual(await resultsOf(id, 'errors'), []);
    }
  });

  test('on a pool with requestsPerSecond every item is a group of its own, so the rate holds per item', async () => {
    const { body } = await submit(sentimentFile(5), { query: '?pool=limited' });
    const history = await fetchHistoryDecoded((await stack.temporal()).workflow.getHandle(batchWorkflowId(stack.tenant(), body.id)));
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = decodePayload<BatchJobInput>(started?.input?.payloads?.[0]);
    // As many one-item groups at once as the batch's groups (2) of the pool's concurrency (3) would run items.
    assert.deepEqual(
      { groupSize: input?.groupSize, groups: input?.groups, itemConcurrency: input?.itemConcurrency, parallel: input?.maxParallelGroups },
      { groupSize: 1, groups: 5, itemConcurrency: 1, parallel: 6 },
    );
    const batch = await waitForBatch(body.id, ['completed', 'failed']);
    assert.deepEqual([batch.status, batch.requestCounts], ['completed', { total: 5, completed: 5, failed: 0 }]);
  });

  test('the same Idempotency-Key and file is the same batch (200); another file under it is 409', async () => {
    const key = `batch-key-${Date.now()}`;
    const first = await submit(sentimentFile(3), { headers: { 'idempotency-key': key } });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal(first.body.id, batchIdForIdempotencyKey(stack.tenant(), key));
    const repeat = await submit(sentimentFile(3), { headers: { 'idempotency-key': key } });
    assert.equal(repeat.status, 200, JSON.stringify(repeat.body));
    assert.equal(repeat.body.id, first.body.id);
    const other = await submit(sentimentFile(4), { headers: { 'idempotency-key': key } });
    assert.equal(other.status, 409);
    assert.equal(other.body.code, 'idempotency-conflict');
    assert.equal(other.body.batchId, first.body.id);
  });
});

test('a webhook receiver that is down holds neither the status nor the files; the signed delivery comes once it is up', async () => {
  receiver.answerWith(503);
  const submitted = await submit(sentimentFile(3), { query: `?webhook=${encodeURIComponent(receiver.url)}` });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  const { id } = submitted.body;
  await eventually('a delivery refused', () => (receiver.received.some((r) => r.body?.batch?.id === id) ? true : undefined));
  // The workflow is still retrying its webhook, yet the batch reads ended and its output is served.
  const temporal = await stack.temporal();
  assert.equal((await temporal.workflow.getHandle(batchWorkflowId(stack.tenant(), id)).describe()).status.name, 'RUNNING');
  const batch = (await stack.call('GET', `/v1/batches/${id}`)).body;
  assert.equal(batch.status, 'completed', JSON.stringify(batch));
  assert.deepEqual(batch.requestCounts, { total: 3, completed: 3, failed: 0 });
  assert.deepEqual(
    (await resultsOf(id, 'output')).map((l) => l.custom_id),
    ['item-0', 'item-1', 'item-2'],
  );

  receiver.answerWith(200);
  const delivered = await eventually('the webhook delivered', () => receiver.delivered().find((r) => r.body?.batch?.id === id));
  assert.equal(verifyWebhook(WEBHOOK_SECRET, delivered.headers, delivered.raw), true);
  assert.deepEqual(delivered.body.batch, { id, status: 'completed', requestCounts: { total: 3, completed: 3, failed: 0 } });
  assert.equal(delivered.body.type, 'batch.completed');
});

describe('cancel, quotas and listing', () => {
  test('cancel mid-run: cancelling, then cancelled, every unrun item in errors; output is 409 until then', async () => {
    const n = LIMITS.lines;
    const { body } = await submit(sentimentFile(n), { query: '?pool=slow' });
    const running = await eventually('some items of the batch to be done', async () => {
      const batch = (await stack.call('GET', `/v1/batches/${body.id}`)).body;
      return batch.requestCounts.completed > 0 ? batch : undefined;
    });
    assert.equal(running.status, 'in_progress');
    const early = await stack.call('GET', `/v1/batches/${body.id}/output`);
    assert.equal(early.status, 409);
    assert.equal(early.body.code, 'batch-not-ended');

    const cancelled = await stack.call('POST', `/v1/batches/${body.id}/cancel`);
    assert.equal(cancelled.status, 202, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.status, 'cancelling');
    const batch = await waitForBatch(body.id, ['cancelled']);
    assert.ok(batch.cancelledAt);
    assert.equal(batch.requestCounts.completed + batch.requestCounts.failed, n);
    assert.ok(batch.requestCounts.failed > 0, JSON.stringify(batch.requestCounts));

    const output = await resultsOf(body.id, 'output');
    const errors = await resultsOf(body.id, 'errors');
    assert.equal(output.length, batch.requestCounts.completed);
    assert.ok(
      errors.every((l) => l.error.type === 'BatchCancelled'),
      JSON.stringify(errors[0]),
    );
    const ids = [...output, ...errors].map((l) => l.custom_id).sort();
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `item-${i}`).sort());

    const again = await stack.call('POST', `/v1/batches/${body.id}/cancel`);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'batch-not-cancellable');
  });

  test('a running batch is one open job of its tenant: at its quota of one, neither a job nor a batch is started', async () => {
    const { body } = await submit(sentimentFile(12), { query: '?pool=slow', as: 'globex' });
    assert.equal(body.status, 'in_progress', JSON.stringify(body));
    const job = await stack.call('POST', '/v1/jobs', { as: 'globex', body: sentimentJob() });
    assert.equal(job.status, 429, JSON.stringify(job.body));
    assert.equal(job.body.code, 'quota-exceeded');
    const batch = await submit(sentimentFile(2), { as: 'globex' });
    assert.equal(batch.status, 429);
    assert.equal((await stack.call('POST', `/v1/batches/${body.id}/cancel`, { as: 'globex' })).status, 202);
    await waitForBatch(body.id, ['cancelled'], 'globex');
  });

  test('GET /v1/batches lists the tenant’s batches newest first, a page at a time; GET /v1/jobs lists none of them', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(sentimentFile(2))).body.id);
    const newestFirst = [...ids].reverse();
    const listed = await eventually('the three batches to be listed', async () => {
      const { body } = await stack.call('GET', '/v1/batches?limit=3');
      const seen = body.items.map((b: any) => b.id);
      return newestFirst.every((id, i) => seen[i] === id) ? body : undefined;
    });
    assert.ok(listed.nextCursor);
    const next = await stack.call('GET', `/v1/batches?limit=3&cursor=${listed.nextCursor}`);
    assert.equal(next.status, 200);
    assert.ok(next.body.items.every((b: any) => !ids.includes(b.id)));
    assert.equal((await stack.call('GET', '/v1/batches?cursor=not-a-cursor')).body.code, 'invalid-cursor');

    const jobs = await stack.call('GET', '/v1/jobs?limit=100');
    assert.equal(jobs.status, 200);
    assert.ok(
      jobs.body.items.every((j: any) => !j.id.startsWith('batch-')),
      JSON.stringify(jobs.body.items.map((j: any) => j.id)),
    );
    const others = await stack.call('GET', '/v1/batches', { as: 'globex' });
    assert.ok(others.body.items.every((b: any) => !ids.includes(b.id)));
  });
});

describe('refusals: nothing is started', () => {
  /** A refused submit under an Idempotency-Key, whose batch id is known: no workflow, nothing in the blob store. */
  async function assertNothingStarted(key: string): Promise<void> {
    const id = batchIdForIdempotencyKey(stack.tenant(), key);
    assert.equal(await workflowExists(stack.tenant(), id), false);
    assert.deepEqual(await stack.blobs().list(batchScope(stack.tenant(), id)), []);
  }

  test('a bad line is 400 invalid-batch-file naming its line', async () => {
    const key = `malformed-${Date.now()}`;
    const file = jsonl([
      sentimentLine('a', 'Fine.'),
      '{"custom_id": "b", "task": ',
      sentimentLine('c', 'Fine.'),
      sentimentLine('a', 'Twice.'),
    ]);
    const answer = await submit(file, { headers: { 'idempotency-key': key } });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 'invalid-batch-file');
    assert.deepEqual(
      answer.body.errors.map((e: any) => e.line),
      [2, 4],
    );
    assert.match(answer.body.errors[0].message, /JSON/);
    await assertNothingStarted(key);
  });

  test('over the line limit, or over the byte limit as it streams, is 400 invalid-batch-file', async () => {
    const lines = `over-lines-${Date.now()}`;
    const tooMany = await submit(sentimentFile(LIMITS.lines + 1), { headers: { 'idempotency-key': lines } });
    assert.equal(tooMany.body.code, 'invalid-batch-file', JSON.stringify(tooMany.body));
    assert.match(tooMany.body.detail, /SWITCHYARD_BATCH_MAX_LINES/);
    await assertNothingStarted(lines);

    // Chunked, without a Content-Length: the limit is found while the file streams in.
    const bytes = `over-bytes-${Date.now()}`;
    const big = sentimentLine('big', 'x'.repeat(LIMITS.bytes));
    const res = await fetch(`${stack.apiUrl}/v1/batches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TENANTS.acme.key}`, 'content-type': 'application/x-ndjson', 'idempotency-key': bytes },
      body: new Blob([big]).stream(),
      duplex: 'half',
    });
    const problem = (await res.json()) as any;
    assert.equal(res.status, 400);
    assert.equal(problem.code, 'invalid-batch-file');
    assert.match(problem.detail, /SWITCHYARD_BATCH_MAX_BYTES/);
    await assertNothingStarted(bytes);
  });

  test('a Content-Length over the byte limit is 413 before a byte of the body is read', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${stack.apiUrl}/v1/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TENANTS.acme.key}`, 'content-type': 'application/x-ndjson', 'content-length': String(1e9) },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.flushHeaders(); // the body never comes: the answer must not wait for it
    });
    assert.equal(answer.status, 413);
    assert.equal(JSON.parse(answer.body).code, 'payload-too-large');
  });

  test('unknown pool, unknown query parameter, setting given twice, unknown document, and a line for a task the pool lacks', async () => {
    const file = sentimentFile(2);
    const pool = await submit(file, { query: '?pool=nope' });
    assert.equal(pool.status, 400);
    assert.equal(pool.body.errors[0].path, 'query.pool');
    const unknown = await submit(file, { query: '?foo=1' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.code, 'unknown-field');
    const twice = await stack.call('POST', '/v1/batches?pool=local', { body: { inputFileId: `doc-${'0'.repeat(32)}`, pool: 'slow' } });
    assert.equal(twice.status, 400);
    assert.equal(twice.body.errors[0].path, 'query.pool');
    const missing = await stack.call('POST', '/v1/batches', { body: { inputFileId: `doc-${'0'.repeat(32)}` } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, 'unknown-document');
    const chat = JSON.stringify({ custom_id: 'c', task: 'chat', input: { messages: [{ role: 'user', content: 'hi' }] } });
    const task = await submit(jsonl([chat]));
    assert.equal(task.status, 400);
    assert.equal(task.body.code, 'invalid-batch-file');
    assert.equal(task.body.errors[0].line, 1);
  });

  test('a wrong Content-Type is 415, no key is 401', async () => {
    const wrong = await submit(sentimentFile(1), { type: 'text/plain' });
    assert.equal(wrong.status, 415);
    assert.equal(wrong.body.code, 'unsupported-media-type');
    const anonymous = await submit(sentimentFile(1), { as: null });
    assert.equal(anonymous.status, 401);
    assert.equal((await stack.call('GET', '/v1/batches', { as: null })).status, 401);
  });

  test('an unknown batch, and another tenant’s, are 404 everywhere', async () => {
    const { body } = await submit(sentimentFile(1));
    await waitForBatch(body.id, ['completed']);
    for (const id of [body.id, 'batch-00000000000000000000000000', 'nope']) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['POST', '/cancel'],
        ['GET', '/output'],
        ['GET', '/errors'],
      ] as const) {
        const answer = await stack.call(method, `/v1/batches/${id}${suffix}`, { as: 'globex' });
        assert.equal(answer.status, 404, `${method} ${id}${suffix}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.code, 'not-found');
      }
    }
  });
});

test('the CLI submits a file and follows it to its end without a terminal: a progress line, then the batch', async () => {
  const file = path.join(stack.env.SWITCHYARD_DATA_DIR!, 'cli-batch.jsonl');
  writeFileSync(file, sentimentFile(8));
  const cli = spawn(BIN, ['batch', 'submit', file, '--wait', '--priority', '2'], {
    env: { ...stack.env, SWITCHYARD_API_URL: stack.apiUrl, SWITCHYARD_API_KEY: TENANTS.acme.key },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve));
  assert.equal(code, 0, stderr);
  const batch = JSON.parse(stdout);
  assert.deepEqual([batch.status, batch.priority, batch.requestCounts], ['completed', 2, { total: 8, completed: 8, failed: 0 }]);
  assert.match(stderr, new RegExp(`${batch.id}  completed  8/8 done · 0 failed`));

  const output = spawn(BIN, ['batch', 'output', batch.id], {
    env: { ...stack.env, SWITCHYARD_API_URL: stack.apiUrl, SWITCHYARD_API_KEY: TENANTS.acme.key },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let lines = '';
  output.stdout.on('data', (d: Buffer) => (lines += d.toString()));
  assert.equal(await new Promise((resolve) => output.once('exit', resolve)), 0);
  assert.deepEqual(
    lines
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id),
    Array.from({ length: 8 }, (_, i) => `item-${i}`),
  );
});

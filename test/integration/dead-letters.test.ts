/**
 * Dead letters and retries end to end: real worker and API processes, an OpenAI-compatible pool on the
 * fake OpenAI server scripted to reject calls. A failed job is listed with its failure type, retried
 * as a new run of the same job (same input), and the runs link to each other both ways; bulk retry by
 * filter; failure counts by type.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  stack = new Stack({
    pools: {
      // No breaker: these rejections are the job's own, and the pool needs no limiter for them.
      remote: { provider: 'openai', concurrency: 4, baseUrl: openai.url, model: 'fake-model', breaker: { enabled: false } },
      // No worker polls it: its jobs stay queued.
      idle: { provider: 'local', concurrency: 1 },
    },
  });
  await Promise.all([stack.worker(['--workflows']), stack.worker(['--pool', 'remote']), stack.startApi()]);
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});
beforeEach(() => openai.script([]));

const REJECTED = { status: 400, body: { error: { message: 'Invalid model parameters', type: 'invalid_request_error' } } };

/** A chat job on the remote pool whose message carries a unique tag; the fake server answers its first call with `faults`. */
async function submitChat(opts: { as?: 'acme' | 'globex'; headers?: Record<string, string> } = {}) {
  const tag = `dead-letter-${randomUUID()}`;
  const body = { type: 'inference', task: 'chat', pool: 'remote', input: { messages: [{ role: 'user', content: tag }] } };
  const answer = await stack.call('POST', '/v1/jobs', { body, ...opts });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  return { id: answer.body.id as string, tag, body };
}

/** Submits `n` chat jobs that the provider rejects, and waits for them to fail. */
async function failedChats(n: number, as: 'acme' | 'globex' = 'acme') {
  openai.script(Array.from({ length: n }, () => REJECTED));
  const jobs: Awaited<ReturnType<typeof submitChat>>[] = [];
  for (let i = 0; i < n; i++) jobs.push(await submitChat({ as }));
  for (const job of jobs) assert.equal((await stack.waitForJob(job.id, ['failed', 'succeeded'], undefined, as)).status, 'failed');
  return jobs;
}

/** Polls a listing until `check` accepts its items (lists are eventually consistent). */
const listUntil = (query: string, check: (items: any[]) => boolean, as: 'acme' | 'globex' = 'acme') =>
  eventually<any[]>(`GET /v1/jobs?${query} to show the expected jobs`, async () => {
    const { status, body } = await stack.call('GET', `/v1/jobs?${query}`, { as });
    assert.equal(status, 200, JSON.stringify(body));
    return check(body.items) ? body.items : undefined;
  });

describe('a failed job', () => {
  test('is listed under status=failed with its error type, retried as a new run of the same job, and succeeds; the runs link both ways', async () => {
    const { id, tag } = (await failedChats(1))[0]!;
    const failed = (await stack.call('GET', `/v1/jobs/${id}`)).body;
    assert.equal(failed.lastFailure.type, 'ProviderRejected');
    assert.match(failed.lastFailure.message, /Invalid model parameters/);
    assert.deepEqual(failed.run, { id: failed.run.id, number: 1, retryOf: null });

    // Dead letters: listed by status and by error type, not under another type.
    const listed = await listUntil('status=failed&errorType=ProviderRejected&pool=remote', (items) => items.some((j) => j.id === id));
    assert.equal(listed.find((j) => j.id === id).lastFailure.type, 'ProviderRejected');
    assert.ok(!(await stack.call('GET', '/v1/jobs?status=failed&errorType=InvalidInput')).body.items.some((j: any) => j.id === id));

    const retry = await stack.call('POST', failed.links.retry);
    assert.equal(retry.status, 202, JSON.stringify(retry.body));
    assert.equal(retry.headers.get('location'), `/v1/jobs/${id}`);
    assert.equal(retry.body.id, id, 'a retry is the same job');
    assert.ok(['queued', 'running', 'succeeded'].includes(retry.body.status), retry.body.status);
    assert.equal(retry.body.run.number, 2);
    assert.equal(retry.body.run.retryOf, failed.run.id);
    assert.notEqual(retry.body.run.id, failed.run.id);

    const done = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.lastFailure));
    assert.equal(done.result.output.message.content, `echo: ${tag}`);
    assert.deepEqual(done.run, retry.body.run);
    assert.notEqual(done.links.temporalUi, failed.links.temporalUi);
    // The same input: the provider got the same request twice.
    const calls = openai.requestsMentioning(tag);
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1]!.body, calls[0]!.body);

    // Both ways: the new run names the run it retries, the old one the run that retried it.
    const runs = (await stack.call('GET', done.links.runs)).body.items;
    assert.equal(runs.length, 2, JSON.stringify(runs));
    const [second, first] = runs;
    assert.deepEqual(
      { id: second.id, number: second.number, status: second.status, retryOf: second.retryOf, retriedBy: second.retriedBy },
      { id: done.run.id, number: 2, status: 'succeeded', retryOf: failed.run.id, retriedBy: null },
    );
    assert.deepEqual(
      { id: first.id, number: first.number, status: first.status, retryOf: first.retryOf, retriedBy: first.retriedBy },
      { id: failed.run.id, number: 1, status: 'failed', retryOf: null, retriedBy: done.run.id },
    );
    assert.equal(first.lastFailure.type, 'ProviderRejected');
    assert.equal(second.lastFailure, null);
    assert.equal(first.links.temporalUi, failed.links.temporalUi);
    assert.equal(second.links.temporalUi, done.links.temporalUi);

    // In Temporal: one workflow id, two runs, the new one started with the same input and search attributes.
    const temporal = await stack.temporal();
    const workflowId = `${stack.tenant()}/${id}`;
    const firstEvent = async (runId: string) => (await temporal.workflow.getHandle(workflowId, runId).fetchHistory()).events![0]!;
    const oldStart = await firstEvent(failed.run.id);
    const newStart = await firstEvent(done.run.id);
    const startOf = (e: typeof oldStart) => e.workflowExecutionStartedEventAttributes!;
    assert.deepEqual(startOf(newStart).input, startOf(oldStart).input);
    assert.deepEqual(startOf(newStart).searchAttributes, startOf(oldStart).searchAttributes);
    assert.deepEqual(startOf(newStart).priority, startOf(oldStart).priority);
    assert.deepEqual(newStart.userMetadata, oldStart.userMetadata);

    // No longer a dead letter, and not retryable once succeeded.
    await listUntil('status=failed&pool=remote', (items) => !items.some((j) => j.id === id));
    const again = await stack.call('POST', `/v1/jobs/${id}/retry`);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'job-not-retryable');
    assert.equal(again.body.job.status, 'succeeded');
  });

  test('a repeat of its Idempotency-Key after a retry answers with the current run', async () => {
    openai.script([REJECTED]);
    const key = `dead-letter-${randomUUID()}`;
    const { id, body } = await submitChat({ headers: { 'idempotency-key': key } });
    assert.equal((await stack.waitForJob(id, ['failed', 'succeeded'])).status, 'failed');
    const retried = await stack.call('POST', `/v1/jobs/${id}/retry`);
    assert.equal(retried.status, 202);
    await stack.waitForJob(id, ['succeeded']);

    const repeat = await stack.call('POST', '/v1/jobs', { body, headers: { 'idempotency-key': key } });
    assert.equal(repeat.status, 200, JSON.stringify(repeat.body));
    assert.equal(repeat.body.id, id);
    assert.equal(repeat.body.status, 'succeeded');
    assert.deepEqual(repeat.body.run, retried.body.run);
  });
});

describe('what cannot be retried', () => {
  test('a queued job is 409 job-not-retryable; once cancelled it can be retried, and the retry is queued again', async () => {
    const submitted = await stack.call('POST', '/v1/jobs', {
      body: { type: 'inference', task: 'sentiment', pool: 'idle', input: { text: 'Waiting.' } },
    });
    const { id } = submitted.body;
    const queued = await stack.call('POST', `/v1/jobs/${id}/retry`);
    assert.equal(queued.status, 409);
    assert.equal(queued.body.code, 'job-not-retryable');
    assert.equal(queued.body.job.status, 'queued');

    await stack.call('POST', `/v1/jobs/${id}/cancel`);
    const cancelled = await stack.waitForJob(id, ['cancelled']);
    const retried = await stack.call('POST', `/v1/jobs/${id}/retry`);
    assert.equal(retried.status, 202, JSON.stringify(retried.body));
    assert.equal(retried.body.status, 'queued');
    assert.equal(retried.body.run.retryOf, cancelled.run.id);
    // Two concurrent retries of a live run: both refused, the run stays one.
    const both = await Promise.all([1, 2].map(() => stack.call('POST', `/v1/jobs/${id}/retry`)));
    assert.deepEqual(
      both.map((a) => a.status),
      [409, 409],
    );
    await stack.call('POST', `/v1/jobs/${id}/cancel`);
    await stack.waitForJob(id, ['cancelled']);
  });

  test("another tenant's job is 404, as if it did not exist", async () => {
    const { id } = (await failedChats(1, 'globex'))[0]!;
    assert.equal((await stack.call('POST', `/v1/jobs/${id}/retry`)).status, 404);
    assert.equal((await stack.call('GET', `/v1/jobs/${id}/runs`)).status, 404);
    assert.equal((await stack.call('GET', `/v1/jobs/${id}`, { as: 'globex' })).body.status, 'failed');
  });
});

describe('bulk retry', () => {
  test('retries the jobs a filter selects, page by page; the same filter again skips them as already retried', async () => {
    const rejected = await failedChats(3);
    // Another failure type and another tenant's failure, which the filter must leave alone.
    const invalid = await stack.call('POST', '/v1/jobs', {
      body: { type: 'inference', task: 'sentiment', pool: 'remote', input: { text: 'No.' } },
    });
    assert.equal((await stack.waitForJob(invalid.body.id, ['failed'])).lastFailure.type, 'InvalidInput');
    const [other] = await failedChats(1, 'globex');
    const ids = new Set(rejected.map((j) => j.id));
    const filter = {
      status: 'failed',
      errorType: 'ProviderRejected',
      pool: 'remote',
      createdAfter: new Date(Date.now() - 120_000).toISOString(),
    };
    await listUntil(new URLSearchParams(filter).toString(), (items) => rejected.every((j) => items.some((i) => i.id === j.id)));

    // Page by page, two jobs at a time, until no cursor is left.
    const retried: string[] = [];
    let cursor: string | undefined;
    do {
      const { status, body } = await stack.call('POST', '/v1/jobs/retry', { body: { ...filter, limit: 2, ...(cursor ? { cursor } : {}) } });
      assert.equal(status, 200, JSON.stringify(body));
      assert.ok(body.retried.length <= 2);
      for (const r of body.retried) {
        assert.equal(r.run.number, 2);
        retried.push(r.id);
      }
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    // Jobs failed by earlier tests of this file match too; these three are among them, each once.
    assert.ok(
      [...ids].every((id) => retried.includes(id)),
      JSON.stringify(retried),
    );
    assert.equal(new Set(retried).size, retried.length);
    assert.ok(!retried.includes(invalid.body.id));
    for (const id of ids) assert.equal((await stack.waitForJob(id, ['succeeded', 'failed'])).status, 'succeeded');
    assert.equal((await stack.call('GET', `/v1/jobs/${other!.id}`, { as: 'globex' })).body.run.number, 1);

    // Their failed runs still match the filter; the jobs are skipped, with the reason.
    const again = await stack.call('POST', '/v1/jobs/retry', { body: { ...filter, limit: 100 } });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.retried, []);
    for (const id of ids) {
      const skip = again.body.skipped.find((s: any) => s.id === id);
      assert.ok(skip, `${id} not skipped: ${JSON.stringify(again.body.skipped)}`);
      assert.equal(skip.reason, 'already-retried');
      assert.equal(skip.status, 'succeeded');
      assert.equal(skip.run.number, 2);
    }
  });
});

describe('failure counts', () => {
  test("count the tenant's failed runs by type, by pool and since a time", async () => {
    await failedChats(1, 'globex');
    const counts = await eventually('failure counts that include the failures of this file', async () => {
      const { status, body } = await stack.call('GET', '/v1/failures');
      assert.equal(status, 200, JSON.stringify(body));
      return body.byType.ProviderRejected >= 5 && body.byType.InvalidInput >= 1 ? body : undefined;
    });
    assert.equal(counts.tenant, stack.tenant());
    const sum = Object.values(counts.byType as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.equal(counts.total, sum);
    assert.equal(counts.byType.other, 0);
    for (const type of ['ProviderRateLimited', 'JobDeadlineExceeded', 'JobQueueTimeout']) assert.equal(counts.byType[type], 0, type);

    const remote = (await stack.call('GET', '/v1/failures?pool=remote')).body;
    assert.equal(remote.pool, 'remote');
    assert.equal(remote.total, counts.total);
    assert.equal((await stack.call('GET', '/v1/failures?pool=idle')).body.total, 0);
    const later = new Date(Date.now() + 60_000).toISOString();
    assert.equal((await stack.call('GET', `/v1/failures?since=${encodeURIComponent(later)}`)).body.total, 0);

    // Tenant-scoped: globex's failures are its own.
    const globex = (await stack.call('GET', '/v1/failures', { as: 'globex' })).body;
    assert.equal(globex.tenant, stack.tenant('globex'));
    assert.ok(globex.byType.ProviderRejected >= 1 && globex.byType.ProviderRejected < counts.byType.ProviderRejected);
  });
});

describe('quotas', () => {
  test('a retry opens a job: at its quota a tenant gets 429, and bulk retry skips the job saying so', async () => {
    const { id } = (await failedChats(1, 'globex'))[0]!;
    // The API again, now with a quota of one open job for globex.
    await stack.stopApi();
    stack.env.SWITCHYARD_TENANTS = JSON.stringify({ [stack.tenant('globex')]: { maxOpenJobs: 1 } });
    await stack.startApi();
    const open = await stack.call('POST', '/v1/jobs', {
      as: 'globex',
      body: { type: 'inference', task: 'sentiment', pool: 'idle', input: { text: 'Holding the quota.' } },
    });
    assert.equal(open.status, 202, JSON.stringify(open.body));
    try {
      const refused = await stack.call('POST', `/v1/jobs/${id}/retry`, { as: 'globex' });
      assert.equal(refused.status, 429, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'quota-exceeded');
      assert.ok(refused.headers.get('retry-after'));
      assert.equal((await stack.call('GET', `/v1/jobs/${id}`, { as: 'globex' })).body.run.number, 1, 'nothing was started');

      await listUntil('status=failed', (items) => items.some((j) => j.id === id), 'globex');
      const bulk = await stack.call('POST', '/v1/jobs/retry', { as: 'globex', body: { status: 'failed', limit: 100 } });
      assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
      assert.deepEqual(bulk.body.retried, []);
      const skip = bulk.body.skipped.find((s: any) => s.id === id);
      assert.equal(skip?.reason, 'quota-exceeded', JSON.stringify(bulk.body.skipped));
    } finally {
      await stack.call('POST', `/v1/jobs/${open.body.id}/cancel`, { as: 'globex' });
    }
    // Once the open job has ended, the retry goes through.
    const retried = await eventually('the retry to be admitted', async () => {
      const answer = await stack.call('POST', `/v1/jobs/${id}/retry`, { as: 'globex' });
      return answer.status === 429 ? undefined : answer;
    });
    assert.equal(retried.status, 202, JSON.stringify(retried.body));
  });
});

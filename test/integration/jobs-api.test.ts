/** The job API end to end on the real dev server, real worker processes and a real API process. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { sentimentJob, Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

let stack: Stack;
let openai: FakeOpenAI;

before(async () => {
  openai = await startFakeOpenAI();
  stack = await new Stack({
    pools: {
      local: { provider: 'local', concurrency: 4 },
      remote: { provider: 'openai', concurrency: 4, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 },
    },
  }).start();
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

describe('submit and read', () => {
  test('a sentiment job succeeds with the local model’s real output', async () => {
    const submitted = await stack.call('POST', '/v1/jobs', { body: sentimentJob('I love this product. It is wonderful.') });
    assert.equal(submitted.status, 202);
    assert.match(submitted.body.id, /^job-[0-9A-Z]{26}$/);
    assert.equal(submitted.headers.get('location'), `/v1/jobs/${submitted.body.id}`);
    assert.equal(submitted.body.status, 'queued');
    assert.equal(submitted.body.tenant, stack.tenant('acme'));
    assert.ok(submitted.body.links.temporalUi.includes(`/namespaces/default/workflows/${stack.tenant('acme')}%2Fjob-`));

    const job = await stack.waitForJob(submitted.body.id, ['succeeded']);
    assert.equal(job.attempts, 1);
    assert.equal(job.lastFailure, null);
    assert.equal(job.result.model, 'wink-eng-lite-web-model');
    assert.equal(job.result.output.label, 'positive');
    assert.ok(job.result.output.score > 0);
    assert.equal(job.result.output.sentences.length, 2);
    assert.ok(Date.parse(job.createdAt) <= Date.parse(job.startedAt));
    assert.ok(Date.parse(job.startedAt) <= Date.parse(job.finishedAt));
  });

  test('every local task returns its own output shape', async () => {
    const text = 'Temporal runs the queue. Contact ops@example.com before 5 March 2027. The queue never loses jobs.';
    const outputs: Record<string, any> = {};
    for (const task of ['entities', 'keywords', 'summarize', 'embed']) {
      const { body } = await stack.call('POST', '/v1/jobs', { body: { type: 'inference', task, input: { text } } });
      outputs[task] = (await stack.waitForJob(body.id, ['succeeded'])).result.output;
    }
    assert.ok(outputs.entities.entities.some((e: any) => e.type === 'EMAIL' && e.value === 'ops@example.com'));
    assert.ok(outputs.keywords.keywords.some((k: any) => k.term === 'queue'));
    assert.ok(text.includes(outputs.summarize.summary.split(' ')[0]));
    assert.equal(outputs.embed.embedding.length, 256);
  });

  test('a chat job on an OpenAI-compatible pool records usage', async () => {
    const { body } = await stack.call('POST', '/v1/jobs', {
      body: { type: 'inference', task: 'chat', pool: 'remote', input: { messages: [{ role: 'user', content: 'hello there' }] } },
    });
    const job = await stack.waitForJob(body.id, ['succeeded']);
    assert.equal(job.result.output.message.content, 'echo: hello there');
    assert.ok(job.result.usage.totalTokens > 0);
  });

  test('list filters by status, type, pool and creation time, and pages with a cursor', async () => {
    const since = new Date().toISOString();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await stack.call('POST', '/v1/jobs', { body: sentimentJob(`Item ${i} is good.`) })).body.id);
    await Promise.all(ids.map((id) => stack.waitForJob(id, ['succeeded'])));

    // Visibility is eventually consistent: wait until all five are listed.
    const query = `/v1/jobs?status=succeeded&type=inference&pool=local&createdAfter=${encodeURIComponent(since)}`;
    await eventually('all five jobs to be listed', async () => {
      const { body } = await stack.call('GET', `${query}&limit=100`);
      return body.items.length >= 5 ? true : undefined;
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await stack.call('GET', `${query}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 2);
      for (const item of page.body.items) {
        assert.equal(item.status, 'succeeded');
        assert.equal(item.pool, 'local');
      }
      seen.push(...page.body.items.map((j: any) => j.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    assert.deepEqual([...seen].sort(), [...ids].sort());
    assert.ok(pages >= 3);

    const none = await stack.call('GET', `/v1/jobs?pool=remote&createdAfter=${encodeURIComponent(since)}`);
    assert.ok(none.body.items.every((j: any) => j.pool === 'remote'));
    const future = await stack.call('GET', `/v1/jobs?createdAfter=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    assert.deepEqual(future.body.items, []);
  });

  test('cancel reaches the running inference through its heartbeat, and the job ends cancelled', async () => {
    openai.script([{ hang: true }]);
    const { body } = await stack.call('POST', '/v1/jobs', {
      body: { type: 'inference', task: 'chat', pool: 'remote', input: { messages: [{ role: 'user', content: 'slow' }] } },
    });
    await stack.waitForJob(body.id, ['running']);
    const cancelled = await stack.call('POST', `/v1/jobs/${body.id}/cancel`);
    assert.equal(cancelled.status, 202);
    const job = await stack.waitForJob(body.id, ['cancelled']);
    assert.equal(job.result, null);

    const again = await stack.call('POST', `/v1/jobs/${body.id}/cancel`);
    assert.equal(again.status, 409);
    assert.equal(again.body.type, '/problems/job-not-cancellable');
  });
});

describe('idempotency', () => {
  test('the same key twice is one job: 202, then 200 with the same id', async () => {
    const headers = { 'idempotency-key': `same-${Date.now()}` };
    const first = await stack.call('POST', '/v1/jobs', { body: sentimentJob(), headers });
    const second = await stack.call('POST', '/v1/jobs', { body: sentimentJob(), headers });
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    await stack.waitForJob(first.body.id, ['succeeded']);
    const afterEnd = await stack.call('POST', '/v1/jobs', { body: sentimentJob(), headers });
    assert.equal(afterEnd.status, 200);
    assert.equal(afterEnd.body.id, first.body.id);
    assert.equal(afterEnd.body.status, 'succeeded');
  });

  test('20 concurrent duplicates start exactly one workflow', async () => {
    const headers = { 'idempotency-key': `burst-${Date.now()}` };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => stack.call('POST', '/v1/jobs', { body: sentimentJob('Concurrent.'), headers })),
    );
    const ids = new Set(answers.map((a) => a.body.id));
    assert.equal(ids.size, 1, JSON.stringify(answers.map((a) => [a.status, a.body.id ?? a.body.detail])));
    assert.equal(answers.filter((a) => a.status === 202).length, 1);
    assert.ok(answers.every((a) => a.status === 202 || a.status === 200));
    const [id] = [...ids];
    const temporal = await stack.temporal();
    const runs = [];
    for await (const run of temporal.workflow.list({ query: `WorkflowId = '${stack.tenant('acme')}/${id}'` })) runs.push(run);
    assert.equal(runs.length, 1);
  });

  test('the same key with a different body is a 409', async () => {
    const headers = { 'idempotency-key': `conflict-${Date.now()}` };
    await stack.call('POST', '/v1/jobs', { body: sentimentJob('one'), headers });
    const conflict = await stack.call('POST', '/v1/jobs', { body: sentimentJob('two'), headers });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.type, '/problems/idempotency-conflict');
  });

  test('keys are per tenant: another tenant’s key of the same name is its own job', async () => {
    const headers = { 'idempotency-key': `shared-name-${Date.now()}` };
    const a = await stack.call('POST', '/v1/jobs', { body: sentimentJob(), headers });
    const b = await stack.call('POST', '/v1/jobs', { body: sentimentJob('other'), headers, as: 'globex' });
    assert.equal(b.status, 202);
    assert.notEqual(a.body.id, b.body.id);
  });
});

describe('tenant isolation', () => {
  test('another tenant gets 404 for the job and never sees it in its list', async () => {
    const { body } = await stack.call('POST', '/v1/jobs', { body: sentimentJob() });
    await stack.waitForJob(body.id, ['succeeded']);
    assert.equal((await stack.call('GET', `/v1/jobs/${body.id}`, { as: 'globex' })).status, 404);
    assert.equal((await stack.call('POST', `/v1/jobs/${body.id}/cancel`, { as: 'globex' })).status, 404);
    const listed = await stack.call('GET', '/v1/jobs?limit=100', { as: 'globex' });
    assert.equal(listed.status, 200);
    assert.ok(listed.body.items.every((j: any) => j.tenant === stack.tenant('globex')));
    assert.ok(!listed.body.items.some((j: any) => j.id === body.id));
  });
});

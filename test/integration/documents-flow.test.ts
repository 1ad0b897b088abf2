/**
 * What happens to a document job on its way: a person's review (approve, reject, none in time),
 * cancellation mid-pipeline, a chunk that always fails under either failure policy, a signed webhook,
 * and documents fetched from URLs through the SSRF guard. Real processes on the real dev server; the
 * `remote` pool calls the fake OpenAI server, which refuses any request holding its POISON marker and
 * can be told to hang.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { jobScope } from '../../src/blobs/store';
import { verifyWebhook } from '../../src/net/webhook';
import { POISON, startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef';

let stack: Stack;
let openai: FakeOpenAI;
/** A loopback server for documents to fetch, redirects and webhooks; SWITCHYARD_OUTBOUND_ALLOW lets the workers reach it. */
let site: { url: string; close(): Promise<void>; webhooks: { headers: http.IncomingHttpHeaders; body: string }[] };

before(async () => {
  openai = await startFakeOpenAI();
  site = await startSite();
  stack = await new Stack({
    pools: {
      local: { provider: 'local', concurrency: 8 },
      remote: { provider: 'openai', concurrency: 8, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 },
    },
    env: { SWITCHYARD_OUTBOUND_ALLOW: '127.0.0.1/32', SWITCHYARD_WEBHOOK_SECRET: WEBHOOK_SECRET },
  }).start();
});
after(async () => {
  await stack?.stop();
  await openai?.close();
  await site?.close();
});

const RETRY = { maxAttempts: 3, initialIntervalMs: 100, maxIntervalMs: 500 };

/** Sentences about `n` numbered sections; `tag` makes the text (and so the document) unique to a test. */
const sections = (n: number, tag: string, poisonAt?: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      `Section ${i + 1} of ${tag} is about the river delta. ${i === poisonAt ? `${POISON} ` : ''}The survey team was happy with it.`,
  ).join('\n\n');

async function documentJob(text: string, fields: Record<string, unknown>): Promise<string> {
  const upload = await stack.upload(text, 'text/plain');
  assert.ok([200, 201].includes(upload.status), JSON.stringify(upload.body));
  const answer = await stack.call('POST', '/v1/jobs', {
    body: { type: 'document', source: { documentId: upload.body.id }, retry: RETRY, ...fields },
  });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  return answer.body.id;
}

const keysLeft = async (id: string) => {
  const scope = jobScope(stack.tenant('acme'), id);
  return (await stack.blobs().list(scope)).map((k) => k.slice(scope.length + 1)).sort();
};

describe('review', () => {
  test('approve: the job waits with its result readable, then publishes; a second decision is 409', async () => {
    const submitted = Date.now();
    const id = await documentJob(sections(3, `approve-${Date.now()}`), { tasks: ['keywords'], review: { timeoutMs: 120_000 } });
    const waiting = await stack.waitForJob(id, ['waiting', 'failed', 'succeeded']);
    assert.equal(waiting.status, 'waiting');
    assert.equal(waiting.progress.stage, 'review');
    assert.equal(waiting.progress.review.decision, null);
    // Due 120 s after the review opened, which was after the job was submitted and before it was seen waiting.
    const dueAt = Date.parse(waiting.progress.review.dueAt);
    assert.ok(dueAt >= submitted + 120_000 && dueAt <= Date.now() + 120_000, `due at ${waiting.progress.review.dueAt}`);
    assert.equal(waiting.links.review, `/v1/jobs/${id}/review`);
    const preview = await stack.call('GET', waiting.links.result);
    assert.equal(preview.status, 200, 'the reviewer reads the result before deciding');
    assert.ok(preview.body.keywords.top.length > 0);

    const decided = await stack.call('POST', waiting.links.review, {
      body: { decision: 'approve', reviewer: 'alice', comment: 'Looks right.' },
    });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    assert.notEqual(decided.body.status, 'waiting');
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    assert.equal(job.result.review.decision, 'approve');
    assert.equal(job.result.review.reviewer, 'alice');
    assert.equal(job.result.review.comment, 'Looks right.');
    assert.equal(job.result.review.dueAt, null);

    const twice = await stack.call('POST', waiting.links.review, { body: { decision: 'reject', reviewer: 'mallory' } });
    assert.equal(twice.status, 409, JSON.stringify(twice.body));
    assert.equal(twice.body.code, 'review-not-open');
  });

  test('reject: the job fails ReviewRejected, and its result stays for reference', async () => {
    const id = await documentJob(sections(3, `reject-${Date.now()}`), { tasks: ['keywords', 'embed'], review: { timeoutMs: 120_000 } });
    await stack.waitForJob(id, ['waiting']);
    const decided = await stack.call('POST', `/v1/jobs/${id}/review`, {
      body: { decision: 'reject', reviewer: 'bob', comment: 'Wrong file.' },
    });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    const job = await stack.waitForJob(id, ['failed', 'succeeded']);
    assert.equal(job.status, 'failed');
    assert.equal(job.lastFailure.type, 'ReviewRejected');
    assert.match(job.lastFailure.message, /bob rejected the result: Wrong file\./);
    assert.equal((await stack.call('GET', `/v1/jobs/${id}/result`)).status, 200);
    assert.deepEqual(await keysLeft(id), ['embeddings.ndjson', 'result.json']);
  });

  test('no decision in time: onTimeout approve publishes; the default (fail) ends the job timed_out', async () => {
    const approved = await documentJob(sections(2, `timeout-approve-${Date.now()}`), {
      tasks: ['sentiment'],
      review: { timeoutMs: 1000, onTimeout: 'approve' },
    });
    const failing = await documentJob(sections(2, `timeout-fail-${Date.now()}`), { tasks: ['sentiment'], review: { timeoutMs: 1000 } });
    const a = await stack.waitForJob(approved, ['succeeded', 'failed', 'timed_out']);
    assert.equal(a.status, 'succeeded', JSON.stringify(a.lastFailure));
    assert.equal(a.result.review.reviewer, 'timeout');
    assert.equal(a.result.review.decision, 'approve');
    const f = await stack.waitForJob(failing, ['succeeded', 'failed', 'timed_out']);
    assert.equal(f.status, 'timed_out');
    assert.equal(f.lastFailure.type, 'ReviewTimedOut');
    assert.deepEqual(await keysLeft(failing), []);
  });

  test('a decision for a job with no open review is 409 review-not-open; for no job, 404', async () => {
    const inference = await stack.call('POST', '/v1/jobs', { body: { type: 'inference', task: 'sentiment', input: { text: 'Fine.' } } });
    const unreviewed = await documentJob(sections(1, `unreviewed-${Date.now()}`), { tasks: ['sentiment'] });
    for (const id of [inference.body.id, unreviewed]) {
      const answer = await stack.call('POST', `/v1/jobs/${id}/review`, { body: { decision: 'approve', reviewer: 'carol' } });
      assert.equal(answer.status, 409, JSON.stringify(answer.body));
      assert.equal(answer.body.code, 'review-not-open');
    }
    const unknown = await stack.call('POST', '/v1/jobs/job-01ARZ3NDEKTSV4RRFFQ69G5FAV/review', {
      body: { decision: 'approve', reviewer: 'carol' },
    });
    assert.equal(unknown.status, 404);
  });
});

describe('cancel and failures', () => {
  test('cancel mid-pipeline: the chunk calls in flight stop, the job ends cancelled, and its data is gone', async () => {
    const tag = `cancel-${Date.now()}`;
    openai.script(Array.from({ length: 20 }, () => ({ hang: true as const })));
    try {
      const id = await documentJob(sections(10, tag), {
        pool: 'remote',
        tasks: ['prompt'],
        prompt: 'Summarise.',
        chunking: { targetChars: 200 },
        maxParallel: 3,
      });
      await eventually('three chunk calls in flight', () => (openai.requestsMentioning(tag).length >= 3 ? true : undefined));
      const running = (await stack.call('GET', `/v1/jobs/${id}`)).body;
      assert.equal(running.status, 'running');
      assert.equal(running.progress.stage, 'analysing');
      assert.equal(running.progress.chunksDone, 0);
      assert.equal((await stack.call('POST', `/v1/jobs/${id}/cancel`)).status, 202);
      const job = await stack.waitForJob(id, ['cancelled', 'failed', 'succeeded']);
      assert.equal(job.status, 'cancelled');
      assert.deepEqual(await keysLeft(id), []);

      const history = await (await stack.temporal()).workflow.getHandle(`${stack.tenant('acme')}/${id}`).fetchHistory();
      const events = history.events ?? [];
      const chunkCalls = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'analyseChunk').length;
      assert.equal(chunkCalls, 3, 'no chunk was started after the first three');
      // Acknowledged (ActivityTaskCanceled), not only requested: the data is deleted once no chunk can write any more.
      assert.equal(
        events.filter((e) => e.activityTaskCanceledEventAttributes).length,
        3,
        'the three chunk activities stopped before the cleanup',
      );
      assert.equal(openai.requestsMentioning(tag).length, 3, 'no call was sent again');
    } finally {
      openai.script([]);
    }
  });

  test('a chunk the provider always refuses: continue finishes without it, failFast fails the job naming it', async () => {
    const tag = `poison-${Date.now()}`;
    const text = sections(6, tag, 3);
    const fields = { pool: 'remote', tasks: ['prompt'], prompt: 'Repeat the text.', chunking: { targetChars: 200 }, maxParallel: 2 };
    const tolerant = await documentJob(text, { ...fields, failurePolicy: 'continue' });
    const strict = await documentJob(text, { ...fields, failurePolicy: 'failFast' });

    const t = await stack.waitForJob(tolerant, ['succeeded', 'failed']);
    assert.equal(t.status, 'succeeded', JSON.stringify(t.lastFailure));
    assert.equal(t.result.failedChunks.length, 1);
    assert.equal(t.result.chunksDone, t.result.chunksTotal - 1);
    assert.equal(t.progress.chunksFailed, 1);
    const result = (await stack.call('GET', t.links.result)).body;
    assert.deepEqual(result.chunks.failedIndexes, t.result.failedChunks);
    assert.equal(result.prompt.outputs.length, t.result.chunksTotal - 1);
    assert.ok(result.prompt.outputs.every((o: any) => !o.content.includes(POISON)));
    assert.ok(!result.prompt.outputs.some((o: any) => o.index === t.result.failedChunks[0]));

    const s = await stack.waitForJob(strict, ['succeeded', 'failed']);
    assert.equal(s.status, 'failed');
    assert.equal(s.lastFailure.type, 'ChunkFailed');
    assert.match(s.lastFailure.message, new RegExp(`chunk ${t.result.failedChunks[0]} of ${t.result.chunksTotal} failed: .*${POISON}`));
    assert.deepEqual(await keysLeft(strict), []);
  });
});

describe('webhooks', () => {
  test('the completion event arrives signed; a receiver that fails once gets it again with the same id', async () => {
    site.webhooks.length = 0;
    const id = await documentJob(sections(2, `webhook-${Date.now()}`), {
      tasks: ['sentiment'],
      webhook: { url: `${site.url}/hooks/flaky` },
    });
    const job = await stack.waitForJob(id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    assert.deepEqual(job.result.webhook, { url: `${site.url}/hooks/flaky`, status: 200, attempts: 2 });
    const deliveries = site.webhooks.filter((w) => JSON.parse(w.body).jobId === id);
    assert.equal(deliveries.length, 2);
    assert.equal(deliveries[0]!.headers['webhook-id'], deliveries[1]!.headers['webhook-id']);
    for (const { headers, body } of deliveries) assert.equal(verifyWebhook(WEBHOOK_SECRET, headers, body), true);
    assert.throws(() => verifyWebhook('another-secret-0123456789', deliveries[1]!.headers, deliveries[1]!.body), /no signature matches/);
    const event = JSON.parse(deliveries[1]!.body);
    assert.equal(event.type, 'document.completed');
    assert.equal(event.tenant, stack.tenant('acme'));
    assert.deepEqual(event.result, { sha256: job.result.sha256, size: job.result.size });
  });
});

describe('documents from URLs', () => {
  const submitUrl = (url: string) =>
    stack.call('POST', '/v1/jobs', { body: { type: 'document', source: { url }, tasks: ['keywords'], retry: RETRY } });

  test('a URL the guard allows is fetched and analysed', async () => {
    const answer = await submitUrl(`${site.url}/report.txt`);
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const job = await stack.waitForJob(answer.body.id, ['succeeded', 'failed']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    const terms = (await stack.call('GET', job.links.result)).body.keywords.top.map((k: any) => k.term);
    assert.ok(terms.includes('albatross'), terms.join(', '));
  });

  test('a redirect to a private address fails the job UrlRefused, naming the address', async () => {
    const answer = await submitUrl(`${site.url}/redirect-private`);
    assert.equal(answer.status, 202, 'the first URL is allowed: only the redirect is not');
    const job = await stack.waitForJob(answer.body.id, ['succeeded', 'failed']);
    assert.equal(job.status, 'failed');
    assert.equal(job.lastFailure.type, 'UrlRefused');
    assert.match(job.lastFailure.message, /10\.0\.0\.1 is a private address/);
    assert.deepEqual(await keysLeft(answer.body.id), []);
  });

  test('outside the allowed range, loopback is still refused up front', async () => {
    const answer = await submitUrl('http://127.0.0.2/report.txt');
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 'url-refused');
    assert.match(answer.body.detail, /127\.0\.0\.2 is a loopback address/);
  });
});

/** The loopback site: a text document, a redirect to a private address, and webhook receivers. */
async function startSite(): Promise<typeof site> {
  const webhooks: (typeof site)['webhooks'] = [];
  let flaky = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/report.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('The albatross crossed the ocean. The albatross rested on the cliffs. Sailors watched the albatross.');
      }
      if (req.url === '/redirect-private') {
        res.writeHead(302, { location: 'http://10.0.0.1/internal/report.txt' });
        return res.end();
      }
      if (req.url === '/hooks/flaky' && req.method === 'POST') {
        webhooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(flaky++ % 2 === 0 ? 503 : 200);
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    webhooks,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

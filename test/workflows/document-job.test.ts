/**
 * The document pipeline workflow on Temporal's time-skipping test server, with the real workflow bundle.
 * Two jobs run on the real activities (local model, a blob store in a temp folder, a URL and a webhook
 * receiver on a local HTTP server); the rest use stub activities that record what they saw (Temporal's
 * testing model): the sliding window and progress, both failure policies, review decisions and a
 * 72-hour review timer, cancellation, the deadline, a run continued from a cursor and one continued as
 * new at the server's suggestion, webhook retries. Ends with a replay of a recorded history.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ActivityFailure, CancelledFailure, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { createActivities, type InferenceActivities } from '../../activities';
import { createPipelineActivities, type PipelineActivities } from '../../activities/pipeline';
import { FileBlobStore } from '../../src/blobs/file-store';
import { documentScope, jobScope, type BlobRef } from '../../src/blobs/store';
import type { DocumentResult } from '../../src/documents/aggregate';
import { createLocalProvider } from '../../src/inference/local';
import {
  DOCUMENT_FAILURES,
  REVIEW_NOT_OPEN,
  type DocumentCursor,
  type DocumentJobInput,
  type DocumentProgress,
  type ReviewRequest,
} from '../../src/documents/contract';
import { DEADLINE_EXCEEDED } from '../../src/jobs/job';
import { verifyWebhook } from '../../src/net/webhook';
import { documentProgressQuery, reviewUpdate } from '../../src/documents/contract';
import { documentJob } from '../../workflows';
import { startTimeSkipping } from '../../testkit/time-skipping';
import { eventually } from '../../testkit/wait';

const PREFIX = `doc-${randomUUID().slice(0, 8)}`;
const QUEUES = {
  workflows: `${PREFIX}-workflows`,
  stubPipeline: `${PREFIX}-stub-pipeline`,
  stubPool: `${PREFIX}-stub-pool`,
  pool: `${PREFIX}-local`,
};
const HOUR = 3_600_000;
const WEBHOOK_SECRET = 'a-test-webhook-secret';
let env: TestWorkflowEnvironment;
let workers: Worker[];
let running: Promise<void>[];
let blobDir: string;
let blobs: FileBlobStore;
let bundle: { code: string };

/** What a stubbed job does and what its activities saw; found by the job's scope. */
interface StubJob {
  chunks: number;
  /** Runs in the chunk activity; the default answers at once. */
  analyse?: (index: number) => Promise<void>;
  /** Pipeline activities in the order they ran, and the arguments of some. */
  calls: string[];
  started: number[];
  analysed: number[];
  /** Chunk activities that saw their cancellation, and those that had when the job data was deleted. */
  cancelled: number[];
  cancelledBeforeCleanup?: number[];
  running: number;
  maxRunning: number;
  aggregated?: Parameters<PipelineActivities['aggregateDocument']>[0];
  /** Held by deleteTemporaryData until it resolves, to look at a job while it publishes. */
  publishGate?: Promise<void>;
  /** The webhook receiver's answer to every attempt; deliveries as the stub saw them. */
  webhookStatus?: number;
  webhooks: Array<{ id: string; attempt: number; event: unknown }>;
}
const stubJobs = new Map<string, StubJob>();
const jobOf = (scope: string): StubJob => stubJobs.get(scope) ?? assert.fail(`no stub job for ${scope}`);
const ref = (key: string): BlobRef => ({ key, sha256: '0'.repeat(64), size: 1 });

const stubPipeline: PipelineActivities = {
  async fetchDocument({ scope }) {
    jobOf(scope).calls.push('fetchDocument');
    return { blob: ref(`${scope}/source/x`), type: 'text' };
  },
  async extractText({ scope }) {
    jobOf(scope).calls.push('extractText');
    return { text: ref(`${scope}/text`), chars: 1000 };
  },
  async splitText({ scope }) {
    const job = jobOf(scope);
    job.calls.push('splitText');
    return { chunks: job.chunks, manifest: ref(`${scope}/chunks.json`) };
  },
  async collectSummaries({ scope }) {
    jobOf(scope).calls.push('collectSummaries');
    return ref(`${scope}/summaries.txt`);
  },
  async aggregateDocument(request) {
    const job = jobOf(request.scope);
    job.calls.push('aggregateDocument');
    job.aggregated = request;
    return { result: ref(`${request.scope}/result.json`), chunksAnalysed: job.analysed.length, chunksFailed: request.failedChunks.length };
  },
  async deleteTemporaryData({ scope }) {
    const job = jobOf(scope);
    job.calls.push('deleteTemporaryData');
    await job.publishGate;
    return 0;
  },
  async deleteJobData({ scope }) {
    const job = jobOf(scope);
    job.calls.push('deleteJobData');
    job.cancelledBeforeCleanup = [...job.cancelled];
    return 0;
  },
  async deliverWebhook({ tenant, id, event }) {
    const job = jobOf(jobScope(tenant, (event as { jobId: string }).jobId));
    const attempt = Context.current().info.attempt;
    job.webhooks.push({ id, attempt, event });
    const status = job.webhookStatus ?? 204;
    if (status >= 300)
      throw ApplicationFailure.create({
        type: DOCUMENT_FAILURES.webhookFailed,
        message: `answered ${status}`,
        details: [{ status, attempt }],
      });
    return { status, attempts: attempt };
  },
};

const stubPool: Pick<InferenceActivities, 'analyseChunk' | 'summarizeText'> = {
  async analyseChunk({ scope, index }) {
    const job = jobOf(scope);
    job.started.push(index);
    job.running++;
    job.maxRunning = Math.max(job.maxRunning, job.running);
    Context.current().cancellationSignal.addEventListener('abort', () => job.cancelled.push(index));
    try {
      await job.analyse?.(index);
      job.analysed.push(index);
      return { index, usage: null };
    } finally {
      job.running--;
    }
  },
  async summarizeText({ scope }) {
    return { summary: ref(`${scope}/summary.json`) };
  },
};

/** Heartbeats until cancelled (cancellation reaches an activity only through its heartbeats). */
async function hang(): Promise<never> {
  for (;;) {
    Context.current().heartbeat();
    await Context.current().sleep(50);
  }
}

before(async () => {
  env = await startTimeSkipping();
  blobDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-documents-'));
  blobs = new FileBlobStore(blobDir, []);
  const connection = env.nativeConnection;
  bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  // The test's own HTTP server is on loopback, which the guard refuses unless allowed.
  const outbound = { allow: ['127.0.0.0/8'], timeoutMs: 5000, maxBytes: 1_000_000, maxRedirects: 3 };
  workers = [
    // The real pipeline activities beside the workflows, as the workflow worker runs them.
    await Worker.create({
      connection,
      taskQueue: QUEUES.workflows,
      workflowBundle: bundle,
      activities: createPipelineActivities({
        blobs,
        outbound,
        webhookSecretOf: (tenant) => (tenant === 'acme' ? WEBHOOK_SECRET : undefined),
      }),
    }),
    await Worker.create({
      connection,
      taskQueue: QUEUES.pool,
      activities: createActivities({ provider: createLocalProvider(), blobs, concurrency: 8 }),
    }),
    await Worker.create({ connection, taskQueue: QUEUES.stubPipeline, activities: stubPipeline }),
    // Cancellation reaches an activity with its next heartbeat: let heartbeats through at once.
    await Worker.create({ connection, taskQueue: QUEUES.stubPool, activities: stubPool, maxHeartbeatThrottleInterval: 50 }),
  ];
  running = workers.map((w) => w.run());
});
after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await Promise.all(running ?? []);
  await env?.teardown();
  if (blobDir) rmSync(blobDir, { recursive: true, force: true });
});

function jobInput(overrides: Partial<DocumentJobInput> = {}): DocumentJobInput {
  const jobId = `job-${randomUUID()}`;
  return {
    jobId,
    tenant: 'acme',
    pool: 'stub',
    poolTaskQueue: QUEUES.stubPool,
    pipelineTaskQueue: QUEUES.stubPipeline,
    source: { url: 'https://example.com/report.html' },
    chunkChars: 1000,
    tasks: ['summarize', 'sentiment'],
    maxParallel: 4,
    failurePolicy: 'continue',
    retry: { maxAttempts: 2, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 },
    attemptTimeoutMs: 30_000,
    heartbeatTimeoutMs: 5_000,
    deadlineMs: HOUR,
    ...overrides,
  };
}

type Handle = WorkflowHandle<typeof documentJob>;

/** Starts a stubbed job: `chunks` chunks, each analysed by `analyse`. */
async function startStub(stub: Partial<StubJob> & { chunks: number }, overrides: Partial<DocumentJobInput> = {}, startOptions = {}) {
  const input = jobInput(overrides);
  const job: StubJob = { calls: [], started: [], analysed: [], cancelled: [], running: 0, maxRunning: 0, webhooks: [], ...stub };
  stubJobs.set(jobScope(input.tenant, input.jobId), job);
  const handle = await env.client.workflow.start(documentJob, {
    workflowId: input.jobId,
    taskQueue: QUEUES.workflows,
    args: [input],
    ...startOptions,
  });
  return { handle, job, input };
}

const outcomeOf = (handle: Handle) =>
  handle.result().then(
    (value) => ({ value, error: undefined }),
    (error: unknown) => ({ value: undefined, error }),
  );
/**
 * The outcome of a job whose chunk activities run in real time. Waiting on `result()` lets the test
 * server skip time, which would fire the heartbeat timeouts of activities that are still running; a
 * poll of the job's status does not.
 */
async function settledOutcome(handle: Handle) {
  await eventually('the job to end', async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true));
  return outcomeOf(handle);
}
const failureTypeOf = (error: unknown) =>
  error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure ? error.cause.type : undefined;
const progressOf = (handle: Handle): Promise<DocumentProgress> => handle.query(documentProgressQuery);
const inStage = (handle: Handle, stage: DocumentProgress['stage']) =>
  eventually(`stage ${stage}`, async () => ((await progressOf(handle)).stage === stage ? true : undefined));
const review = (handle: Handle, request: ReviewRequest) => handle.executeUpdate(reviewUpdate, { args: [request] });
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

test('a text document runs end to end on the real activities: chunks analysed by the local model, rolled up, temporary blobs gone', async () => {
  const good =
    'Acme Corp reported wonderful growth in 2025, and delighted investors praised the excellent results. Contact press@acme.example for more.';
  const bad =
    'Sadly, the old warehouse flooded twice. The losses were terrible and the damage was awful. Contact press@acme.example for more.';
  const text = Array.from({ length: 3 }, () => `${good}\n\n${bad}`).join('\n\n');
  const document = await blobs.putContent(documentScope('acme'), Buffer.from(text));
  const input = jobInput({
    pool: 'local',
    poolTaskQueue: QUEUES.pool,
    pipelineTaskQueue: QUEUES.workflows,
    source: { document: { id: `doc-${document.sha256.slice(0, 32)}`, blob: document, type: 'text' } },
    chunkChars: 200,
    tasks: ['summarize', 'entities', 'keywords', 'sentiment', 'embed'],
  });
  const handle = await env.client.workflow.start(documentJob, { workflowId: input.jobId, taskQueue: QUEUES.workflows, args: [input] });
  const outcome = await handle.result();

  assert.ok(outcome.chunksTotal > 1, `the document is split (${outcome.chunksTotal} chunks)`);
  assert.deepEqual(
    { done: outcome.chunksDone, failed: outcome.failedChunks, webhook: outcome.webhook },
    { done: outcome.chunksTotal, failed: [], webhook: null },
  );
  const result = JSON.parse((await blobs.get(outcome.result.key)).toString('utf8')) as DocumentResult;
  assert.deepEqual(result.chunks, { total: outcome.chunksTotal, analysed: outcome.chunksTotal, failed: 0, failedIndexes: [] });
  assert.ok(
    result.summary?.document && result.summary.chunks.length > result.summary.document.length,
    'a document summary made from the chunk summaries',
  );
  assert.ok(
    result.entities?.top.some((e) => e.value === 'press@acme.example' && e.count === 6),
    'entities counted over chunks',
  );
  assert.ok(result.keywords?.top.length, 'keywords');
  assert.ok(
    result.sentiment && result.sentiment.min.score < 0 && result.sentiment.max.score > 0,
    'the most negative and most positive chunk',
  );
  assert.deepEqual(result.embeddings && { count: result.embeddings.count, dimensions: result.embeddings.dimensions }, {
    count: outcome.chunksTotal,
    dimensions: 256,
  });
  const lines = (await blobs.get(result.embeddings!.key)).toString('utf8').trim().split('\n');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { index: number }).index),
    Array.from({ length: outcome.chunksTotal }, (_, i) => i),
  );

  const scope = jobScope(input.tenant, input.jobId);
  assert.deepEqual(
    await blobs.list(scope),
    [`${scope}/embeddings.ndjson`, `${scope}/result.json`],
    'only the result and the embeddings stay',
  );
  const progress = await progressOf(handle);
  assert.deepEqual(progress, {
    stage: 'done',
    chunksTotal: outcome.chunksTotal,
    chunksDone: outcome.chunksTotal,
    chunksFailed: 0,
    failedChunks: [],
    review: null,
  });
});

test('a URL is fetched through the guard and the signed webhook reaches its receiver (real activities); a link-local URL is refused', async () => {
  const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        '<html><body><nav>menu</nav><p>The harbour of Lisbon is busy. Ships arrive every morning.</p><p>The cranes unload containers all day.</p></body></html>',
      );
      return;
    }
    let body = '';
    req.on('data', (part: Buffer) => (body += part.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const input = jobInput({
      pool: 'local',
      poolTaskQueue: QUEUES.pool,
      pipelineTaskQueue: QUEUES.workflows,
      source: { url: `${base}/harbour.html` },
      tasks: ['keywords'],
      webhook: { url: `${base}/hook` },
    });
    const handle = await env.client.workflow.start(documentJob, { workflowId: input.jobId, taskQueue: QUEUES.workflows, args: [input] });
    const outcome = await handle.result();
    assert.deepEqual(outcome.webhook, { url: `${base}/hook`, status: 204, attempts: 1 });
    const result = JSON.parse((await blobs.get(outcome.result.key)).toString('utf8')) as DocumentResult;
    assert.ok(
      result.keywords?.top.some((k) => k.term === 'crane'),
      'the page text was analysed',
    );
    assert.equal(received.length, 1);
    assert.equal(verifyWebhook(WEBHOOK_SECRET, received[0]!.headers, received[0]!.body), true);
    assert.equal((JSON.parse(received[0]!.body) as { type: string }).type, 'document.completed');
    const scope = jobScope(input.tenant, input.jobId);
    assert.deepEqual(await blobs.list(scope), [`${scope}/result.json`], 'the fetched page is deleted with the other temporary blobs');

    const refused = jobInput({ pipelineTaskQueue: QUEUES.workflows, source: { url: 'http://169.254.169.254/latest/meta-data' } });
    const refusedHandle = await env.client.workflow.start(documentJob, {
      workflowId: refused.jobId,
      taskQueue: QUEUES.workflows,
      args: [refused],
    });
    const { error } = await outcomeOf(refusedHandle);
    assert.equal(failureTypeOf(error), undefined, 'the activity failure is the cause');
    assert.ok(
      error instanceof WorkflowFailedError && error.cause instanceof ActivityFailure && error.cause.cause instanceof ApplicationFailure,
    );
    assert.equal(error.cause.cause.type, DOCUMENT_FAILURES.urlRefused);
    assert.match(error.cause.cause.message, /169\.254\.169\.254 is a link-local address/);
  } finally {
    server.close();
  }
});

test('chunks run in a sliding window of maxParallel: the next starts when any one ends; progress counts them', async () => {
  const release = new Map<number, () => void>();
  const { handle, job } = await startStub(
    {
      chunks: 10,
      analyse: (index) => new Promise<void>((resolve) => release.set(index, resolve)),
    },
    { maxParallel: 3 },
  );
  await eventually('3 chunks running', () => (release.size === 3 ? true : undefined));
  assert.deepEqual(await progressOf(handle), {
    stage: 'analysing',
    chunksTotal: 10,
    chunksDone: 0,
    chunksFailed: 0,
    failedChunks: [],
    review: null,
  });

  release.get(1)!(); // not the first: a window, not batches of three
  await eventually('chunk 3 started', () => (release.has(3) ? true : undefined));
  assert.deepEqual(sorted([...release.keys()]), [0, 1, 2, 3]);
  assert.equal((await progressOf(handle)).chunksDone, 1);

  for (let next = 0; next < 10; next++) {
    await eventually(`chunk ${next} started`, () => release.get(next));
    release.get(next)!();
  }
  const outcome = await handle.result();
  assert.deepEqual(
    { total: outcome.chunksTotal, done: outcome.chunksDone, failed: outcome.failedChunks },
    { total: 10, done: 10, failed: [] },
  );
  assert.equal(job.maxRunning, 3);
  assert.deepEqual(job.calls, [
    'fetchDocument',
    'extractText',
    'splitText',
    'collectSummaries',
    'aggregateDocument',
    'deleteTemporaryData',
  ]);
});

test('failFast: a chunk failing after its retries cancels the chunks in flight and fails the job ChunkFailed; the job data is deleted', async () => {
  const { handle, job } = await startStub(
    {
      chunks: 20,
      analyse: async (index) => {
        if (index === 2) throw ApplicationFailure.retryable('the model fell over', 'ProviderUnavailable');
        if (index > 2) await hang();
      },
    },
    { failurePolicy: 'failFast', maxParallel: 5 },
  );
  const { error } = await settledOutcome(handle);
  assert.equal(failureTypeOf(error), DOCUMENT_FAILURES.chunkFailed);
  assert.match((error as WorkflowFailedError).cause!.message, /^chunk 2 of 20 failed: the model fell over$/);
  // Chunks 0 and 1 end at once, so 3…6 fill the window while chunk 2 is retried.
  assert.deepEqual(sorted(job.started), [0, 1, 2, 2, 3, 4, 5, 6], 'no chunk started after the failure');
  assert.deepEqual(sorted(job.cancelledBeforeCleanup ?? []), [3, 4, 5, 6], 'the chunks in flight were cancelled before the cleanup');
  assert.deepEqual(job.calls.slice(-2), ['splitText', 'deleteJobData']);
  const progress = await progressOf(handle);
  assert.deepEqual({ failed: progress.chunksFailed, indexes: progress.failedChunks }, { failed: 1, indexes: [2] });
});

test('continue: a chunk that always fails is recorded and the job succeeds without it', async () => {
  let attempts = 0;
  const { handle, job } = await startStub({
    chunks: 12,
    analyse: async (index) => {
      if (index !== 7) return;
      attempts++;
      throw ApplicationFailure.retryable('the model fell over', 'ProviderUnavailable');
    },
  });
  const outcome = await handle.result();
  assert.equal(attempts, 2, 'the chunk had its retries');
  assert.deepEqual({ done: outcome.chunksDone, failed: outcome.failedChunks }, { done: 11, failed: [7] });
  assert.deepEqual(job.aggregated?.failedChunks, [7]);
  assert.deepEqual(job.calls.at(-1), 'deleteTemporaryData');
});

test('review: refused before the review stage; approved once, a second decision refused; the job publishes', async () => {
  let release!: () => void;
  const { handle, job } = await startStub(
    { chunks: 2, analyse: (index) => (index === 0 ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve()) },
    { review: { timeoutMs: 72 * HOUR, onTimeout: 'fail' } },
  );
  await inStage(handle, 'analysing');
  await assert.rejects(review(handle, { decision: 'approve', reviewer: 'early' }), (err: unknown) =>
    refusedAsNotOpen(err, /not waiting for a review \(stage: analysing\)/),
  );
  release();
  await inStage(handle, 'review');
  const waiting = (await progressOf(handle)).review;
  assert.ok(waiting?.dueAt && waiting.decision === null, 'the review shows when it is due');

  const decided = await review(handle, { decision: 'approve', reviewer: 'ana', comment: 'fine' });
  assert.deepEqual(
    { decision: decided.decision, reviewer: decided.reviewer, comment: decided.comment },
    { decision: 'approve', reviewer: 'ana', comment: 'fine' },
  );
  await assert.rejects(review(handle, { decision: 'reject', reviewer: 'bob' }), (err: unknown) =>
    refusedAsNotOpen(err, /already reviewed|stage: publishing|stage: done/),
  );
  const outcome = await handle.result();
  assert.equal(outcome.review?.reviewer, 'ana');
  assert.equal(job.calls.at(-1), 'deleteTemporaryData');
});

test('review: two decisions at once: one is taken, the other refused', async () => {
  let open!: () => void;
  const { handle } = await startStub(
    { chunks: 1, publishGate: new Promise<void>((resolve) => (open = resolve)) },
    { review: { timeoutMs: HOUR, onTimeout: 'fail' } },
  );
  await inStage(handle, 'review');
  const answers = await Promise.allSettled([
    review(handle, { decision: 'approve', reviewer: 'ana' }),
    review(handle, { decision: 'reject', reviewer: 'bob' }),
  ]);
  assert.equal(answers.filter((a) => a.status === 'fulfilled').length, 1);
  const refused = answers.find((a) => a.status === 'rejected');
  // Refused as decided, or (when it comes in a later workflow task) as no longer in review.
  assert.ok(refused && refusedAsNotOpen(refused.reason, /already reviewed|stage: publishing/));
  open();
  await outcomeOf(handle);
});

test('review: a rejection fails the job ReviewRejected and keeps the result; only the temporary data is deleted', async () => {
  const { handle, job } = await startStub({ chunks: 3 }, { review: { timeoutMs: HOUR, onTimeout: 'fail' } });
  await inStage(handle, 'review');
  await review(handle, { decision: 'reject', reviewer: 'bob', comment: 'numbers look wrong' });
  const { error } = await outcomeOf(handle);
  assert.equal(failureTypeOf(error), DOCUMENT_FAILURES.reviewRejected);
  assert.match((error as WorkflowFailedError).cause!.message, /bob rejected the result: numbers look wrong/);
  assert.equal(job.calls.at(-1), 'deleteTemporaryData');
  assert.ok(!job.calls.includes('deleteJobData'));
});

for (const [onTimeout, expected] of [
  ['approve', 'succeeded'],
  ['reject', DOCUMENT_FAILURES.reviewRejected],
  ['fail', DOCUMENT_FAILURES.reviewTimedOut],
] as const) {
  test(`review: no decision within 72 hours and onTimeout ${onTimeout} → ${expected} (time skipped; the wait is not the deadline's)`, async () => {
    const started = Date.now();
    const { handle, job } = await startStub(
      { chunks: 2 },
      { review: { timeoutMs: 72 * HOUR, onTimeout }, deadlineMs: HOUR },
      { workflowExecutionTimeout: 80 * HOUR },
    );
    const { value, error } = await outcomeOf(handle);
    assert.ok(Date.now() - started < 20_000, '72 hours pass in seconds');
    if (expected === 'succeeded') {
      assert.deepEqual(
        { decision: value?.review?.decision, reviewer: value?.review?.reviewer },
        { decision: 'approve', reviewer: 'timeout' },
      );
      assert.equal(job.calls.at(-1), 'deleteTemporaryData');
    } else {
      assert.equal(failureTypeOf(error), expected);
      assert.equal(job.calls.at(-1), expected === DOCUMENT_FAILURES.reviewRejected ? 'deleteTemporaryData' : 'deleteJobData');
    }
  });
}

test('cancelled mid-analysis: chunks in flight see the cancellation, then the job data is deleted, and the job ends cancelled', async () => {
  const { handle, job } = await startStub({ chunks: 50, analyse: (index) => (index < 3 ? Promise.resolve() : hang()) }, { maxParallel: 4 });
  await eventually('4 chunks hanging', () => (job.running === 4 ? true : undefined));
  await handle.cancel();
  const { error } = await settledOutcome(handle);
  assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, 'cancelled, not failed');
  assert.equal((await handle.describe()).status.name, 'CANCELLED');
  assert.deepEqual(sorted(job.cancelledBeforeCleanup ?? []), [3, 4, 5, 6], 'every chunk in flight saw its cancellation before the cleanup');
  assert.equal(job.calls.at(-1), 'deleteJobData');
});

test('a job whose chunks are still being retried at its day-long deadline ends JobDeadlineExceeded and deletes its data (time skipped)', async () => {
  const started = Date.now();
  const { handle, job } = await startStub(
    { chunks: 1, analyse: () => Promise.reject(ApplicationFailure.retryable('provider down', 'ProviderUnavailable')) },
    { deadlineMs: 24 * HOUR, retry: { maxAttempts: 100, initialIntervalMs: HOUR, backoffCoefficient: 1, maxIntervalMs: HOUR } },
    { workflowExecutionTimeout: 25 * HOUR },
  );
  const { error } = await outcomeOf(handle);
  assert.equal(failureTypeOf(error), DEADLINE_EXCEEDED);
  assert.ok(job.started.length > 20, 'the chunks were retried hourly until the deadline');
  assert.equal(job.calls.at(-1), 'deleteJobData');
  assert.ok(Date.now() - started < 20_000, 'a day passes in seconds');
});

test('a run continued from a cursor analyses only the chunks after it and carries the counts', async () => {
  // The test server's clock runs ahead of the real one once time has been skipped.
  const acceptedAtMs = await env.currentTimeMs();
  const cursor: DocumentCursor = {
    split: { chunks: 10, manifest: ref('m') },
    nextChunk: 6,
    chunksDone: 5,
    failedChunks: [3],
    acceptedAtMs,
    reviewWaitMs: 0,
  };
  const { handle, job } = await startStub(
    { chunks: 10, analyse: async (index) => void (index === 8 && assert.fail('chunk 8 breaks')) },
    { cursor, retry: { maxAttempts: 1, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 } },
  );
  const outcome = await handle.result();
  assert.deepEqual(sorted(job.analysed), [6, 7, 9]);
  assert.deepEqual(
    { total: outcome.chunksTotal, done: outcome.chunksDone, failed: outcome.failedChunks },
    { total: 10, done: 8, failed: [3, 8] },
  );
  assert.deepEqual(
    job.calls,
    ['collectSummaries', 'aggregateDocument', 'deleteTemporaryData'],
    'no fetching, extraction or splitting again',
  );
  assert.deepEqual(job.aggregated?.failedChunks, [3, 8]);
});

test('1,500 chunks: the run continues as new when the server suggests it, each chunk analysed once, counts and failures carried', async () => {
  const { handle, job } = await startStub(
    { chunks: 1500, analyse: async (index) => void ((index === 5 || index === 1490) && assert.fail(`chunk ${index} breaks`)) },
    { maxParallel: 100, retry: { maxAttempts: 1, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 } },
  );
  const outcome = await handle.result();
  const firstRun = await env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe();
  assert.equal(firstRun.status.name, 'CONTINUED_AS_NEW');
  assert.ok(firstRun.historyLength < 5000, `the first run's history stayed short (${firstRun.historyLength} events)`);
  assert.deepEqual(
    sorted(job.started),
    Array.from({ length: 1500 }, (_, i) => i),
    'every chunk once, none again after the continue-as-new',
  );
  assert.deepEqual(
    { total: outcome.chunksTotal, done: outcome.chunksDone, failed: outcome.failedChunks },
    { total: 1500, done: 1498, failed: [5, 1490] },
  );
  assert.deepEqual(job.calls, [
    'fetchDocument',
    'extractText',
    'splitText',
    'collectSummaries',
    'aggregateDocument',
    'deleteTemporaryData',
  ]);
  const progress = await progressOf(handle);
  assert.deepEqual(
    { stage: progress.stage, done: progress.chunksDone, failed: progress.chunksFailed },
    { stage: 'done', done: 1498, failed: 2 },
  );
});

test('the webhook gets the completed event; a receiver that stays down is retried with backoff and the job still succeeds', async () => {
  const { handle, job, input } = await startStub({ chunks: 3 }, { webhook: { url: 'https://hooks.example/documents?token=x' } });
  const outcome = await handle.result();
  assert.deepEqual(outcome.webhook, { url: 'https://hooks.example/documents?token=x', status: 204, attempts: 1 });
  assert.deepEqual(
    job.webhooks.map((w) => [w.id, w.attempt]),
    [[`${input.jobId}.document.completed`, 1]],
  );
  assert.deepEqual(job.webhooks[0]!.event, {
    type: 'document.completed',
    jobId: input.jobId,
    tenant: 'acme',
    result: { sha256: '0'.repeat(64), size: 1 },
    chunks: { total: 3, done: 3, failed: 0, failedIndexes: [] },
    review: null,
  });

  const down = await startStub({ chunks: 1, webhookStatus: 503 }, { webhook: { url: 'https://hooks.example/down' } });
  const started = Date.now();
  const downOutcome = await down.handle.result();
  assert.ok(Date.now() - started < 20_000, 'the backoff passes in seconds');
  assert.deepEqual(downOutcome.webhook, { url: 'https://hooks.example/down', status: 503, attempts: 8 });
  assert.deepEqual(new Set(down.job.webhooks.map((w) => w.id)).size, 1, 'one webhook id over every attempt');
});

test('a recorded history replays without non-determinism', async () => {
  const { handle } = await startStub({ chunks: 3 });
  await handle.result();
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
});

function refusedAsNotOpen(err: unknown, message: RegExp): boolean {
  assert.ok(err instanceof WorkflowUpdateFailedError, `an update failure, not ${String(err)}`);
  assert.ok(err.cause instanceof ApplicationFailure);
  assert.equal(err.cause.type, REVIEW_NOT_OPEN);
  assert.match(err.cause.message, message);
  return true;
}

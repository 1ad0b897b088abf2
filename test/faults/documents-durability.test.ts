/**
 * A long document on a dev server of this file's own (a SQLite file, so it can be restarted): enough
 * chunks that the job continues as new, while a pool worker is killed with SIGKILL and the Temporal
 * server is stopped and started again mid-pipeline. The job still completes with every chunk counted
 * exactly once. Also: a job that continued as new and is retried starts again from the beginning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { pickFreePort, startDevServer, type DevServer, type DevServerOptions } from '../../src/local/dev-server';
import { fetchHistoryDecoded } from '../../src/temporal/decoded';
import { Stack, type ProcessHandle } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

/** Chunks of the long document: past the dev server's continue-as-new suggestion (about 4K events, ~1,000 chunks). */
const SECTIONS = 3000;

let dir: string;
let serverOptions: DevServerOptions;
let server: DevServer;
let stack: Stack;
let poolWorker: ProcessHandle;

before(async () => {
  assert.ok(process.env.TEMPORAL_CLI_PATH, 'TEMPORAL_CLI_PATH is not set: run the tests with `npm test`');
  dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-documents-'));
  serverOptions = {
    cliPath: process.env.TEMPORAL_CLI_PATH,
    port: await pickFreePort(),
    uiPort: null,
    dbFile: path.join(dir, 'temporal.sqlite'),
    namespace: 'default',
    logFile: path.join(dir, 'temporal.log'),
    log: () => {},
  };
  server = await startDevServer(serverOptions);
  stack = new Stack({
    pools: { local: { provider: 'local', concurrency: 32 } },
    env: { TEMPORAL_ADDRESS: server.address },
  });
  await Promise.all([stack.worker(['--workflows']), stack.startApi()]);
  poolWorker = await stack.worker(['--pool', 'local']);
});
after(async () => {
  await stack?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Two short sentences per section: with 200-character chunks, about two sections per chunk. */
const longDocument = (tag: string) =>
  Array.from({ length: SECTIONS }, (_, i) => `Part ${i + 1} of ${tag} went well and the team is happy. The numbers look good today.`).join(
    '\n',
  );

async function submitLong(tag: string): Promise<string> {
  const upload = await stack.upload(longDocument(tag), 'text/plain');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const answer = await stack.call('POST', '/v1/jobs', {
    body: {
      type: 'document',
      source: { documentId: upload.body.id },
      tasks: ['sentiment'],
      chunking: { targetChars: 200 },
      maxParallel: 64,
      retry: { maxAttempts: 10, initialIntervalMs: 200, maxIntervalMs: 1000 },
    },
  });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  return answer.body.id;
}

const progressOf = async (id: string) => (await stack.call('GET', `/v1/jobs/${id}`)).body;

/** The runs of a job's workflow in visibility, oldest first. */
async function runsOf(id: string) {
  const client = await stack.temporal();
  const runs = [];
  for await (const run of client.workflow.list({ query: `WorkflowId = '${stack.tenant('acme')}/${id}'` })) runs.push(run);
  return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

test(
  'a long document survives a killed pool worker and a restarted server, continues as new, and counts every chunk once',
  { timeout: 150_000 },
  async () => {
    const submitting = Date.now();
    const id = await submitLong(`durable-${Date.now()}`);
    const submitted = Date.now();

    await eventually('chunks to be analysed', async () => ((await progressOf(id)).progress?.chunksDone >= 100 ? true : undefined));
    poolWorker.kill('SIGKILL');
    await poolWorker.exited;
    poolWorker = await stack.worker(['--pool', 'local']);

    await eventually('more chunks to be analysed', async () => ((await progressOf(id)).progress?.chunksDone >= 400 ? true : undefined));
    await server.stop();
    server = await startDevServer(serverOptions);

    const job = await stack.waitForJob(id, ['succeeded', 'failed', 'cancelled', 'timed_out']);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
    const total = job.result.chunksTotal;
    assert.ok(total >= 1000, `only ${total} chunks`);
    assert.equal(job.result.chunksDone, total);
    assert.deepEqual(job.result.failedChunks, []);
    assert.deepEqual(job.progress, {
      stage: 'done',
      chunksTotal: total,
      chunksDone: total,
      chunksFailed: 0,
      failedChunks: [],
      review: null,
    });
    const result = (await stack.call('GET', job.links.result)).body;
    assert.deepEqual(result.chunks, { total, analysed: total, failed: 0, failedIndexes: [] });
    assert.equal(result.sentiment.chunks, total, 'every chunk rolled up once');

    // It continued as new, and still reads as one job and one run, created when it was submitted.
    const runs = await eventually('visibility to list the runs', async () => {
      const listed = await runsOf(id);
      return listed.length >= 2 && listed.at(-1)!.status.name === 'COMPLETED' ? listed : undefined;
    });
    assert.ok(
      runs.slice(0, -1).every((r) => r.status.name === 'CONTINUED_AS_NEW'),
      runs.map((r) => r.status.name).join(', '),
    );
    assert.equal(job.run.number, 1);
    const createdAt = Date.parse(job.createdAt);
    assert.ok(createdAt >= submitting && createdAt <= submitted, `created at ${job.createdAt}, while it was submitted`);
    const listedRuns = (await stack.call('GET', `/v1/jobs/${id}/runs`)).body.items;
    assert.equal(listedRuns.length, 1, JSON.stringify(listedRuns));
  },
);

test('a job that continued as new, cancelled and retried, starts again from the beginning', { timeout: 120_000 }, async () => {
  const id = await submitLong(`retried-${Date.now()}`);
  const client = await stack.temporal();
  const workflowId = `${stack.tenant('acme')}/${id}`;
  await eventually('the job to continue as new', async () => {
    const [first] = await runsOf(id);
    return first?.status.name === 'CONTINUED_AS_NEW' ? true : undefined;
  });
  assert.equal((await stack.call('POST', `/v1/jobs/${id}/cancel`)).status, 202);
  const cancelled = await stack.waitForJob(id, ['cancelled']);

  const retried = await stack.call('POST', `/v1/jobs/${id}/retry`);
  assert.equal(retried.status, 202, JSON.stringify(retried.body));
  assert.equal(retried.body.run.retryOf, cancelled.run.id);
  const history = await fetchHistoryDecoded(client.workflow.getHandle(workflowId, retried.body.run.id));
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const input = defaultPayloadConverter.fromPayload<{ cursor?: unknown; jobId: string }>(started!.input!.payloads![0]!);
  assert.equal(input.jobId, id);
  assert.equal(input.cursor, undefined, 'the retry starts from the document, not from where the cancelled run was');
  const progress = await eventually('the retry to report progress', async () => (await progressOf(id)).progress ?? undefined);
  assert.ok(progress.chunksTotal === null || progress.chunksDone < progress.chunksTotal);
  // Done with it: the retry need not run to the end.
  await stack.call('POST', `/v1/jobs/${id}/cancel`);
  await stack.waitForJob(id, ['cancelled']);
});

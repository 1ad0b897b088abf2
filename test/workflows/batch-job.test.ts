/**
 * The batch workflow on Temporal's time-skipping test server, with the real workflow bundle and the real
 * activities: the group activities on a pool worker (a fake provider in-process that answers, refuses,
 * throttles or hangs by item), finalization and the signed webhook beside the workflows, and the blob
 * store in a temp folder, the group files written here as the API writes them. Items run in order across
 * groups and parts within the pool's concurrency; item failures stay the item's; a group retried after a
 * failed write resumes after its last part; a day's completion window passes in seconds; a cancel keeps
 * what finished; runs continue as new; and the history stays under half an event per item.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createBatchFinalizeActivities } from '../../activities/batch-finalize';
import { createPipelineActivities } from '../../activities/pipeline';
import { FileBlobStore } from '../../src/blobs/file-store';
import {
  BATCH_FAILURES,
  BATCH_ITEM_FAILURES,
  BATCH_STATE_MEMO,
  batchScope,
  batchStateQuery,
  batchWorkflowId,
  groupItemsKey,
  groupManifestKey,
  type BatchItem,
  type BatchItemResult,
  type BatchJobInput,
  type BatchState,
  type GroupProgress,
} from '../../src/batches/contract';
import { asError } from '../../src/errors';
import {
  type CallContext,
  type InferenceProvider,
  type InferenceRequest,
  ProviderError,
  safeHeartbeat,
} from '../../src/inference/provider';
import { verifyWebhook } from '../../src/net/webhook';
import { decodePayload } from '../../src/temporal/proto';
import { batchJob } from '../../workflows';
import { startTimeSkipping } from '../../testkit/time-skipping';
import { eventually, sleep } from '../../testkit/wait';
import { startWebhookReceiver, type WebhookReceiver } from '../../testkit/webhook-receiver';

const PREFIX = `batch-${randomUUID().slice(0, 8)}`;
const QUEUES = { workflows: `${PREFIX}-workflows`, pool: `${PREFIX}-pool` };
const HOUR = 3_600_000;
/** The pool's concurrency: provider calls the pool worker makes at once for all its batch groups. */
const CONCURRENCY = 4;
const WEBHOOK_SECRET = 'a-test-webhook-secret';

/** A blob store that refuses reads and writes while `refuse` says so: the store being away. */
class RefusingStore extends FileBlobStore {
  refuse?: (op: 'read' | 'write', key: string) => boolean;
  override async putAt(key: string, body: Uint8Array | string) {
    if (this.refuse?.('write', key)) throw new Error(`the blob store refused to write ${key}`);
    return super.putAt(key, body);
  }
  override async get(key: string) {
    if (this.refuse?.('read', key)) throw new Error(`the blob store refused to read ${key}`);
    return super.get(key);
  }
}

/**
 * What the provider does for an item is the first word of its text: `ok` answers after a few ms,
 * `reject` is refused for good, `flaky` is throttled once (Retry-After 10 ms), `hang` waits (heartbeating)
 * until its call is aborted, `stubborn` too but then answers all the same (a call that was done when the
 * cancellation came). It counts the calls per text and the most running at once.
 */
const provider = {
  calls: new Map<string, number>(),
  running: 0,
  maxRunning: 0,
  hanging: 0,
  reset() {
    this.calls.clear();
    this.maxRunning = 0;
  },
};
const fakeProvider: InferenceProvider = {
  kind: 'fake',
  tasks: ['sentiment'],
  async infer(request: InferenceRequest, ctx: CallContext) {
    const text = request.text!;
    const call = (provider.calls.get(text) ?? 0) + 1;
    provider.calls.set(text, call);
    provider.running++;
    provider.maxRunning = Math.max(provider.maxRunning, provider.running);
    try {
      switch (text.split(' ')[0]) {
        case 'reject':
          throw new ProviderError('the model refused the input', 'rejected', { status: 400 });
        case 'flaky':
          if (call === 1) throw new ProviderError('slow down', 'rate_limited', { status: 429, retryAfterMs: 10 });
          break;
        case 'hang':
          await hangUntilAborted(ctx);
          break;
        case 'stubborn':
          await hangUntilAborted(ctx).catch(() => undefined);
          break;
        default:
          await sleep(2);
      }
      return { task: request.task, model: 'fake', output: { echo: text } };
    } finally {
      provider.running--;
    }
  },
};

async function hangUntilAborted(ctx: CallContext): Promise<never> {
  provider.hanging++;
  try {
    return await new Promise<never>((_, reject) => {
      const beat = setInterval(() => safeHeartbeat(ctx), 50);
      ctx.signal.throwIfAborted();
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearInterval(beat);
          reject(asError(ctx.signal.reason));
        },
        { once: true },
      );
    });
  } finally {
    provider.hanging--;
  }
}

let env: TestWorkflowEnvironment;
let workers: Worker[];
let running: Promise<void>[];
let blobDir: string;
/** The store as the workflow worker and the test see it. */
let blobs: FileBlobStore;
/** The same store as the pool worker sees it, which can be taken away. */
let poolBlobs: RefusingStore;
let bundle: { code: string };
let receiver: WebhookReceiver;

before(async () => {
  env = await startTimeSkipping();
  blobDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-batches-'));
  blobs = new FileBlobStore(blobDir, []);
  poolBlobs = new RefusingStore(blobDir, []);
  receiver = await startWebhookReceiver();
  bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  const connection = env.nativeConnection;
  // The test's webhook receiver is on loopback, which the guard refuses unless allowed.
  const outbound = { allow: ['127.0.0.0/8'], timeoutMs: 5000, maxBytes: 1_000_000, maxRedirects: 3 };
  workers = [
    await Worker.create({
      connection,
      taskQueue: QUEUES.workflows,
      workflowBundle: bundle,
      activities: {
        ...createPipelineActivities({ blobs, outbound, webhookSecretOf: () => WEBHOOK_SECRET }),
        ...createBatchFinalizeActivities({ blobs }),
      },
    }),
    // Cancellation reaches an activity with its next heartbeat: let heartbeats through at once.
    await Worker.create({
      connection,
      taskQueue: QUEUES.pool,
      activities: createActivities({ provider: fakeProvider, blobs: poolBlobs, concurrency: CONCURRENCY }),
      maxHeartbeatThrottleInterval: 50,
    }),
  ];
  running = workers.map((w) => w.run());
});
after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await Promise.all(running ?? []);
  await env?.teardown();
  await receiver?.close();
  if (blobDir) rmSync(blobDir, { recursive: true, force: true });
});

type Handle = WorkflowHandle<typeof batchJob>;

/** Writes the group files of a batch of items with these texts, as the API does, and starts its workflow. */
/** Writes the batch's group files (all but `missingGroup`, if given) and starts its workflow. */
async function startBatch(texts: string[], overrides: Partial<BatchJobInput> = {}, memo?: Record<string, unknown>, missingGroup?: number) {
  const groupSize = overrides.groupSize ?? 10;
  const input: BatchJobInput = {
    batchId: `batch_${randomUUID()}`,
    tenant: 'acme',
    pool: 'fake',
    taskQueue: QUEUES.pool,
    format: 'switchyard',
    items: texts.length,
    groups: Math.ceil(texts.length / groupSize),
    groupSize,
    itemConcurrency: 8,
    maxParallelGroups: 2,
    priority: 3,
    fairnessWeight: 1,
    retry: { maxAttempts: 3, initialIntervalMs: 10, backoffCoefficient: 2, maxIntervalMs: 100 },
    attemptTimeoutMs: 30_000,
    heartbeatTimeoutMs: 5_000,
    completionWindowMs: 24 * HOUR,
    // The test server's clock runs ahead of the real one once time has been skipped.
    createdAt: await env.currentTimeMs(),
    ...overrides,
  };
  const scope = batchScope(input.tenant, input.batchId);
  for (let group = 0; group < input.groups; group++) {
    const lines = texts.slice(group * groupSize, (group + 1) * groupSize).map((text, i) => {
      const n = group * groupSize + i;
      const item: BatchItem = { line: n + 1, customId: `item-${n}`, request: { task: 'sentiment', text } };
      return `${JSON.stringify(item)}\n`;
    });
    if (group !== missingGroup) await blobs.putAt(groupItemsKey(scope, group), lines.join(''));
  }
  const handle = await env.client.workflow.start(batchJob, {
    workflowId: batchWorkflowId(input.tenant, input.batchId),
    taskQueue: QUEUES.workflows,
    args: [input],
    memo,
  });
  return { handle, input, scope };
}

/**
 * The outcome once the batch has ended. Waiting on `result()` would let the test server skip time while
 * group activities run in real time, firing their heartbeat timeouts; a poll of the status does not.
 */
async function settled(handle: Handle) {
  await eventually('the batch to end', async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true));
  return handle.result();
}

/** Every item's result, group after group, part after part, as the output file will read them. */
async function resultsOf(scope: string, groups: number): Promise<BatchItemResult[]> {
  const results: BatchItemResult[] = [];
  for (let group = 0; group < groups; group++) {
    const manifest = await manifestOf(scope, group);
    const before = results.length;
    for (const part of manifest.parts) {
      const lines = (await blobs.get(part)).toString().split('\n').filter(Boolean);
      results.push(...lines.map((l) => JSON.parse(l) as BatchItemResult));
    }
    assert.equal(results.length - before, manifest.done, `the parts of group ${group} hold what its manifest counts`);
  }
  return results;
}

/** A result part of group 0 after its first. */
const isLaterPart = (scope: string, key: string) => key.startsWith(`${scope}/results/0/`) && !/\/(0\.a1\.jsonl|manifest\.json)$/.test(key);
const manifestOf = async (scope: string, group: number) =>
  JSON.parse((await blobs.get(groupManifestKey(scope, group))).toString()) as GroupProgress;
const memoState = async (handle: Handle) => (await handle.describe()).memo?.[BATCH_STATE_MEMO] as BatchState | undefined;
const texts = (n: number, text: (i: number) => string = (i) => `ok ${i}`) => Array.from({ length: n }, (_, i) => text(i));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const failureOf = (r: BatchItemResult | undefined) => (r && !r.ok ? r.error.type : undefined);

test('every item runs once, in order, across groups and parts, within the pool concurrency; the memo and the signed webhook say completed', async () => {
  provider.reset();
  const { handle, input, scope } = await startBatch(texts(700), { groupSize: 250, webhook: { url: receiver.url } });
  const outcome = await settled(handle);

  assert.equal(outcome.status, 'completed');
  assert.deepEqual(outcome.counts, { total: 700, completed: 700, failed: 0 });
  assert.ok(outcome.inProgressAt <= outcome.finalizingAt! && outcome.finalizingAt! <= outcome.endedAt);
  const results = await resultsOf(scope, input.groups);
  assert.deepEqual(
    results.map((r) => [r.line, r.customId, r.ok, r.attempts]),
    range(0, 700).map((i) => [i + 1, `item-${i}`, true, 1]),
  );
  const answered = results[42]!;
  assert.deepEqual(answered.ok && answered.result, { task: 'sentiment', model: 'fake', output: { echo: 'ok 42' } });
  assert.deepEqual([...provider.calls.values()], new Array(700).fill(1), 'one call per item');
  assert.ok((await manifestOf(scope, 0)).parts.length >= 3, 'a group of 250 writes a part at least every 100 items');
  assert.equal(provider.maxRunning, CONCURRENCY, 'two groups of 8 runners share the 4 calls the pool allows');

  assert.deepEqual(await memoState(handle), {
    status: 'finalizing',
    counts: { total: 700, completed: 700, failed: 0 },
    groupsDone: 3,
    inProgressAt: outcome.inProgressAt,
    finalizingAt: outcome.finalizingAt,
  });
  const delivered = receiver.delivered().filter((w) => w.body?.batch?.id === input.batchId);
  assert.equal(delivered.length, 1);
  assert.equal(verifyWebhook(WEBHOOK_SECRET, delivered[0]!.headers, delivered[0]!.raw), true);
  assert.deepEqual(delivered[0]!.body, {
    type: 'batch.completed',
    tenant: 'acme',
    batch: { id: input.batchId, status: 'completed', requestCounts: { total: 700, completed: 700, failed: 0 } },
  });
});

test('an item refused for good, one throttled once and one that outlasts its attempt timeout each keep to their own result', async () => {
  provider.reset();
  const items = texts(30, (i) => (i === 3 ? 'reject 3' : i === 12 ? 'flaky 12' : i === 21 ? 'hang 21' : `ok ${i}`));
  const { handle, input, scope } = await startBatch(items, {
    attemptTimeoutMs: 300,
    retry: { maxAttempts: 2, initialIntervalMs: 10, backoffCoefficient: 2, maxIntervalMs: 100 },
  });
  const outcome = await settled(handle);

  assert.equal(outcome.status, 'completed', 'a batch whose items failed is still completed');
  assert.deepEqual(outcome.counts, { total: 30, completed: 28, failed: 2 });
  const results = await resultsOf(scope, input.groups);
  assert.deepEqual(
    results.map((r) => r.line),
    range(1, 31),
  );
  assert.deepEqual(results[3], {
    line: 4,
    customId: 'item-3',
    ok: false,
    error: { type: 'ProviderRejected', message: 'the model refused the input', status: 400 },
    attempts: 1,
  });
  assert.deepEqual([results[12]!.ok, results[12]!.attempts], [true, 2], 'the throttled item succeeded on its second call');
  assert.deepEqual([failureOf(results[21]), results[21]!.attempts], ['ProviderTimeout', 2]);
  assert.ok(
    results.every((r, i) => [3, 12, 21].includes(i) || (r.ok && r.attempts === 1)),
    'the other items ran once each',
  );
  assert.deepEqual([provider.calls.get('reject 3'), provider.calls.get('flaky 12'), provider.calls.get('hang 21')], [1, 2, 2]);
  assert.equal(provider.hanging, 0, 'the timed-out calls were aborted');

  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId);
});

test('a group whose part write fails is retried from its last part: the items written before are not run again', async () => {
  provider.reset();
  const { handle, input, scope } = await startBatch(texts(250), { groupSize: 250, itemConcurrency: 4 });
  let refused = 0;
  // The first write of a part after the group's first one fails, once.
  poolBlobs.refuse = (op, key) => op === 'write' && isLaterPart(scope, key) && refused++ === 0;
  try {
    const outcome = await settled(handle);
    assert.deepEqual([outcome.status, outcome.counts], ['completed', { total: 250, completed: 250, failed: 0 }]);
  } finally {
    poolBlobs.refuse = undefined;
  }
  assert.equal(refused > 0, true, 'a part write failed');

  const results = await resultsOf(scope, input.groups);
  assert.deepEqual(
    results.map((r) => r.customId),
    range(0, 250).map((i) => `item-${i}`),
    'each item once, in order',
  );
  const firstPart = (await blobs.get(`${scope}/results/0/0.a1.jsonl`)).toString().split('\n').filter(Boolean).length;
  const callsOf = (i: number) => provider.calls.get(`ok ${i}`);
  assert.deepEqual(
    range(0, firstPart).filter((i) => callsOf(i) !== 1),
    [],
    `the ${firstPart} items of the first part ran once`,
  );
  assert.ok(
    range(firstPart, 250).some((i) => callsOf(i) === 2),
    'items finished but not written when the write failed ran again',
  );
});

test('a 24-hour completion window passes in seconds: finished items kept, the rest BatchExpired, the outcome expired', async () => {
  provider.reset();
  const { handle, input, scope } = await startBatch(texts(500), { groupSize: 250, maxParallelGroups: 1, itemConcurrency: 4 });
  // Group 0 writes its first part, then the pool's store goes away: its attempts fail and are retried, with
  // backoff, until the window ends (the test server skips time only between attempts); finalization, beside
  // the workflow, still reaches the store. Group 1 never starts.
  let away = false;
  poolBlobs.refuse = (op, key) => (away ||= op === 'write' && isLaterPart(scope, key)) && key.startsWith(`${scope}/`);
  const started = Date.now();
  let outcome;
  try {
    outcome = await handle.result();
  } finally {
    poolBlobs.refuse = undefined;
  }

  assert.ok(Date.now() - started < 60_000, `a day passes in seconds, not ${Date.now() - started} ms`);
  assert.equal(outcome.status, 'expired');
  const written = (await manifestOf(scope, 0)).parts.length;
  const kept = (await blobs.get(`${scope}/results/0/0.a1.jsonl`)).toString().split('\n').filter(Boolean).length;
  assert.deepEqual([written, outcome.counts], [2, { total: 500, completed: kept, failed: 500 - kept }]);
  assert.ok(outcome.finalizingAt! >= input.createdAt + 24 * HOUR, 'finalized after the window');
  const results = await resultsOf(scope, input.groups);
  assert.deepEqual(
    results.map((r) => r.ok),
    range(0, 500).map((i) => i < kept),
  );
  assert.deepEqual(results[kept], {
    line: kept + 1,
    customId: `item-${kept}`,
    ok: false,
    error: { type: BATCH_ITEM_FAILURES.expired, message: 'the batch expired before this item ran' },
    attempts: 0,
  });
  assert.ok(results.slice(kept).every((r) => failureOf(r) === BATCH_ITEM_FAILURES.expired));
  assert.equal((await memoState(handle))?.status, 'finalizing');
});

test('a batch accepted longer ago than its window ends expired at once, no item run', async () => {
  provider.reset();
  const { handle, input, scope } = await startBatch(texts(12), { createdAt: (await env.currentTimeMs()) - 25 * HOUR });
  const outcome = await settled(handle);
  assert.deepEqual([outcome.status, outcome.counts], ['expired', { total: 12, completed: 0, failed: 12 }]);
  assert.equal(provider.calls.size, 0);
  const results = await resultsOf(scope, input.groups);
  assert.ok(results.length === 12 && results.every((r) => failureOf(r) === BATCH_ITEM_FAILURES.expired));
});

test('cancelled mid-run: the running group shows its progress, writes what finished, and the batch ends cancelled with an outcome', async () => {
  provider.reset();
  // Group 1 finishes 5 items, then runs item 15, which answers as the cancellation comes, and item 16, which does not.
  const items = texts(30, (i) => (i === 15 ? `stubborn ${i}` : i > 15 && i < 20 ? `hang ${i}` : `ok ${i}`));
  const { handle, input, scope } = await startBatch(items, { maxParallelGroups: 1, itemConcurrency: 2 });
  await eventually('group 1 hanging on two items', () => (provider.hanging === 2 ? true : undefined));
  // The provider's own heartbeats (every 50 ms, without details) do not blank the group's progress.
  const beat = await eventually('group 1 heartbeating its first part', async () => {
    const pending = (await handle.describe()).raw.pendingActivities?.[0];
    const progress = decodePayload<GroupProgress>(pending?.heartbeatDetails?.payloads?.[0]);
    return progress?.done === 5 ? progress : undefined;
  });
  assert.deepEqual([beat.completed, beat.failed, beat.parts], [5, 0, [`${scope}/results/1/0.a1.jsonl`]]);
  assert.deepEqual(await handle.query(batchStateQuery), {
    status: 'in_progress',
    counts: { total: 30, completed: 10, failed: 0 },
    groupsDone: 1,
    inProgressAt: (await memoState(handle))?.inProgressAt,
  });

  await handle.cancel();
  const outcome = await settled(handle);
  assert.equal((await handle.describe()).status.name, 'COMPLETED', 'the outcome is the result');
  assert.equal(outcome.status, 'cancelled');
  assert.equal(outcome.finalizingAt, undefined);
  assert.deepEqual(outcome.counts, { total: 30, completed: 16, failed: 14 });
  const results = await resultsOf(scope, input.groups);
  assert.deepEqual(
    results.map((r) => (r.ok ? 'ok' : r.error.type)),
    range(0, 30).map((i) => (i <= 15 ? 'ok' : BATCH_ITEM_FAILURES.cancelled)),
    'the item that answered during the cancellation was written before the group acknowledged it',
  );
  assert.equal((await memoState(handle))?.status, 'cancelling');
  assert.equal(provider.hanging, 0);
});

test('a group whose items file is gone fails the batch BatchDataMissing', async () => {
  const { handle, input, scope } = await startBatch(texts(20), {}, undefined, 1);
  const outcome = await settled(handle);
  assert.equal(outcome.status, 'failed');
  assert.equal(outcome.error?.type, BATCH_FAILURES.dataMissing);
  assert.match(outcome.error?.message ?? '', new RegExp(`^group 1: the items of group 1 are gone from ${scope}$`));
  assert.equal(outcome.counts.total, input.items);
});

test('runs continue as new between groups, carrying the counts: every item once, the memo kept', async () => {
  provider.reset();
  const items = texts(60, (i) => (i % 7 === 0 ? `reject ${i}` : `ok ${i}`));
  const { handle, input, scope } = await startBatch(items, { groupSize: 5, groupsPerRun: 4, maxParallelGroups: 3 }, { tag: 'kept' });
  const outcome = await settled(handle);

  const firstRun = await env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe();
  assert.equal(firstRun.status.name, 'CONTINUED_AS_NEW');
  assert.deepEqual([outcome.status, outcome.counts], ['completed', { total: 60, completed: 51, failed: 9 }]);
  assert.deepEqual([...provider.calls.values()], new Array(60).fill(1), 'every item once');
  assert.equal((await resultsOf(scope, input.groups)).length, 60);
  const last = await handle.describe();
  assert.equal(last.memo?.tag, 'kept');
  assert.deepEqual((last.memo?.[BATCH_STATE_MEMO] as BatchState).groupsDone, 12);
  assert.equal(outcome.inProgressAt, (firstRun.memo?.[BATCH_STATE_MEMO] as BatchState).inProgressAt, 'the first run began the batch');
});

test('2,000 items in groups of 500 take less than half a history event per item', async (t) => {
  provider.reset();
  const { handle } = await startBatch(texts(2000), { groupSize: 500, itemConcurrency: 50, maxParallelGroups: 4 });
  const outcome = await settled(handle);
  assert.deepEqual([outcome.status, outcome.counts], ['completed', { total: 2000, completed: 2000, failed: 0 }]);
  const { events } = await handle.fetchHistory();
  const perItem = events!.length / 2000;
  t.diagnostic(`${events!.length} history events, ${perItem.toFixed(3)} per item`);
  assert.ok(perItem <= 0.5, `${events!.length} events for 2,000 items`);
});

/**
 * The conversation workflow on Temporal's time-skipping test server, with the real workflow bundle and
 * the real record activities over a file blob store; inference is a stub, and so is delivery except to a
 * local receiver, and the stubs record what they saw (Temporal's testing model). Ordering under
 * concurrent submission, each fan-in policy with a failing handler, deliveries that recover or give up
 * without holding up later messages, signed delivery, the pending cap, cancellation, a replay of a
 * recorded history, long handlers as child jobs, and continue-as-new carrying seq numbers, ids, records
 * and unsettled deliveries.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { CancelledFailure, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createChatActivities, type ChatActivities } from '../../activities/chat';
import type { InferenceActivities } from '../../activities';
import { BlobNotFoundError, createBlobStore } from '../../src/blobs';
import {
  CHAT_FAILURES,
  conversationStateQuery,
  conversationWorkflowId,
  messageEventsQuery,
  messageRecordKey,
  messageRecordQuery,
  submitMessageUpdate,
  type ConversationInput,
  type DeliveryRequest,
  type MessageRecord,
} from '../../src/conversations/contract';
import { pipelineSchema } from '../../src/conversations/pipeline';
import type { InferenceRequest } from '../../src/inference/provider';
import { poolTaskQueue } from '../../src/temporal/task-queues';
import { conversation } from '../../workflows';
import { verifyWebhook } from '../../src/net/webhook';
import { startTimeSkipping } from '../../testkit/time-skipping';
import { startWebhookReceiver } from '../../testkit/webhook-receiver';
import { eventually } from '../../testkit/wait';

const WORKFLOWS_PATH = require.resolve('../../workflows');
const PREFIX = `chat-${randomUUID().slice(0, 8)}`;
const WORKFLOW_QUEUE = `${PREFIX}-workflows`;
let env: TestWorkflowEnvironment;
let workers: Worker[];
let running: Promise<void>[];

const blobDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-chat-'));
const blobs = createBlobStore({ kind: 'file', dir: blobDir, keys: [] });
const WEBHOOK_SECRET = 'a-test-webhook-secret';
/** The record the activities stored, or undefined when there is none (yet). */
async function storedRecord(conversationId: string, seq: number): Promise<MessageRecord | undefined> {
  const bytes = await blobs.get(messageRecordKey('acme', conversationId, seq)).catch((err: unknown) => {
    if (err instanceof BlobNotFoundError) return undefined;
    throw err;
  });
  return bytes && (JSON.parse(bytes.toString('utf8')) as MessageRecord);
}

/**
 * Inference by the handler's `model`: `ok`; `delay:<ms>` then ok; `reject` (not retryable); `down`
 * (retryable, every attempt); `hang` (heartbeats until cancelled).
 */
const calls: { text: string; mode: string }[] = [];
const cancelledCalls: string[] = [];
const runInference: InferenceActivities['runInference'] = async (request: InferenceRequest) => {
  const ctx = Context.current();
  const text = request.text ?? request.messages!.at(-1)!.content;
  const [mode = 'ok', arg] = (request.model ?? 'ok').split(':');
  calls.push({ text, mode });
  const ok = { task: request.task, model: 'stub', output: { chars: text.length, mode }, attempt: ctx.info.attempt };
  switch (mode) {
    case 'delay':
      await ctx.sleep(Number(arg));
      return ok;
    case 'reject':
      throw ApplicationFailure.nonRetryable('the provider refused it', 'ProviderRejected');
    case 'down':
      throw ApplicationFailure.retryable('provider down', 'ProviderUnavailable');
    case 'hang':
      try {
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(50);
        }
      } catch (err) {
        cancelledCalls.push(`${text}:${mode}`);
        throw err;
      }
    default:
      return ok;
  }
};

/**
 * Delivery: to a local receiver (127.0.0.1) the real activity — signed POST through the SSRF guard;
 * to any other URL a stub that records each attempt and answers 503 while the URL is in `down`.
 */
const chatActivities = createChatActivities({
  blobs,
  outbound: { allow: ['127.0.0.1/32'], timeoutMs: 5000, maxBytes: 1_000_000, maxRedirects: 0 },
  webhookSecretOf: () => WEBHOOK_SECRET,
});
const attempts: (DeliveryRequest & { attempt: number; workflowRunId: string })[] = [];
const down = new Set<string>();
const deliverToTarget: ChatActivities['deliverToTarget'] = async (request) => {
  if (new URL(request.target.url).hostname === '127.0.0.1') return chatActivities.deliverToTarget(request);
  const { attempt, workflowExecution } = Context.current().info;
  // The body comes from the stored record (claim check): it must be there before any delivery.
  assert.ok(await storedRecord(request.conversationId, request.seq), 'the record is stored before it is delivered');
  attempts.push({ ...request, attempt, workflowRunId: workflowExecution?.runId ?? '' });
  if (down.has(request.target.url)) {
    throw ApplicationFailure.create({
      type: 'WebhookFailed',
      message: `${request.target.name} answered 503`,
      details: [{ attempt, status: 503 }],
    });
  }
  return { httpStatus: 200, attempt };
};

before(async () => {
  env = await startTimeSkipping();
  const connection = env.nativeConnection;
  workers = [
    await Worker.create({
      connection,
      taskQueue: WORKFLOW_QUEUE,
      workflowsPath: WORKFLOWS_PATH,
      activities: { ...chatActivities, deliverToTarget },
    }),
    // Cancellation reaches an activity with its next heartbeat: let heartbeats through at once.
    await Worker.create({
      connection,
      taskQueue: poolTaskQueue(PREFIX, 'stub'),
      activities: { runInference },
      maxHeartbeatThrottleInterval: 50,
    }),
  ];
  running = workers.map((w) => w.run());
});
after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await Promise.all(running ?? []);
  await env?.teardown();
  rmSync(blobDir, { recursive: true, force: true });
});

type Stage = { handlers: Record<string, unknown>[]; fanIn?: unknown };
const pipeline = (stages: Stage[], targets: { name: string; url: string }[] = []) =>
  pipelineSchema.parse({
    stages: stages.map((s) => ({
      ...s,
      handlers: s.handlers.map((h) => ({ pool: 'stub', task: 'sentiment', retry: { maxAttempts: 1 }, ...h })),
    })),
    targets,
  });
const ok = (name: string, model = 'ok') => ({ name, model });

async function start(stages: Stage[], over: Partial<ConversationInput> = {}) {
  const conversationId = randomUUID();
  const input: ConversationInput = {
    tenant: 'acme',
    conversationId,
    pipeline: pipeline(stages),
    maxPending: 100,
    taskQueuePrefix: PREFIX,
    heartbeatTimeoutMs: 5000,
    ...over,
  };
  const handle = await env.client.workflow.start(conversation, {
    workflowId: conversationWorkflowId('acme', conversationId),
    taskQueue: WORKFLOW_QUEUE,
    args: [input],
  });
  return Object.assign(handle, { conversationId });
}

type Handle = WorkflowHandle<typeof conversation>;
/** As the API submits: the message id is the update id; a different one makes the workflow itself recognise a repeat. */
const submit = (handle: Handle, id: string, text = id, updateId = id) =>
  handle.executeUpdate(submitMessageUpdate, { args: [{ id, text }], updateId });

async function liveRecord(handle: Handle, idOrSeq: string | number): Promise<MessageRecord> {
  const answer = await handle.query(messageRecordQuery, idOrSeq);
  assert.ok(answer && 'record' in answer, `message ${idOrSeq} is held by the workflow`);
  return answer.record;
}
const finished = (handle: Handle, idOrSeq: string | number) =>
  eventually(`message ${idOrSeq} to finish`, async () => {
    const r = await liveRecord(handle, idOrSeq);
    return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
  });
const handlerStatuses = (r: MessageRecord) =>
  r.stages.map((s) => `${s.status}: ${s.handlers.map((h) => `${h.name} ${h.status}`).join(', ')}`);

test('100 messages submitted concurrently are numbered 1…100 and processed once each, in seq order', async () => {
  const handle = await start([{ handlers: [ok('echo')] }]);
  const texts = Array.from({ length: 100 }, (_, i) => `${handle.conversationId} message ${i}`);
  const answers = await Promise.all(texts.map((text, i) => submit(handle, `m-${i}`, text)));
  assert.deepEqual(
    answers.map((a) => a.seq).sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i + 1),
  );

  await eventually('all 100 processed', async () => ((await handle.query(conversationStateQuery)).messageCount === 100 ? true : undefined));
  const textBySeq = new Map(answers.map((a, i) => [a.seq, texts[i]!]));
  const seen = calls.filter((c) => c.text.startsWith(handle.conversationId)).map((c) => c.text);
  assert.deepEqual(
    seen,
    [...textBySeq.keys()].sort((a, b) => a - b).map((seq) => textBySeq.get(seq)),
    'each message once, in seq order',
  );

  const state = await handle.query(conversationStateQuery);
  assert.deepEqual(
    { status: state.status, lastSeq: state.lastSeq, pending: state.pending, current: state.current },
    { status: 'idle', lastSeq: 100, pending: 0, current: null },
  );
  const first = `m-${answers.findIndex((a) => a.seq === 1)}`;
  const repeat = await submit(handle, first, 'sent again', `${first} again`);
  assert.deepEqual(repeat, { id: first, seq: 1, status: null }, 'a repeated id answers the message it already is (stored by now)');
  assert.deepEqual(await handle.query(messageRecordQuery, first), {
    stored: { seq: 1, key: messageRecordKey('acme', handle.conversationId, 1) },
  });
  assert.equal((await storedRecord(handle.conversationId, 1))?.status, 'succeeded');
  const events = await handle.query(messageEventsQuery, 100, 0);
  assert.ok(events && 'events' in events);
  assert.deepEqual(
    events.events.map((e) => `${e.id} ${e.type}`),
    ['1 message.accepted', '2 handler.started', '3 handler.succeeded', '4 stage.completed', '5 message.completed'],
  );
  assert.equal(events.done, true);
  assert.equal((await storedRecord(handle.conversationId, 100))?.status, 'succeeded', 'finished records are stored');
});

test('fan-in all: one failing handler fails the stage once the others are done; later stages are skipped', async () => {
  const down = { name: 'flaky', model: 'down', retry: { maxAttempts: 2, initialIntervalMs: 100 } };
  const handle = await start([{ handlers: [ok('a'), down, ok('c', 'delay:300')], fanIn: 'all' }, { handlers: [ok('d')] }]);
  await submit(handle, 'x');
  const r = await finished(handle, 'x');
  assert.equal(r.status, 'failed');
  assert.deepEqual(handlerStatuses(r), ['failed: a succeeded, flaky failed, c succeeded', 'skipped: d skipped']);
  const flaky = r.stages[0]!.handlers[1]!;
  assert.deepEqual(
    { error: flaky.error, attempts: flaky.attempts },
    { error: { type: 'ProviderUnavailable', message: 'provider down' }, attempts: 2 },
  );
  assert.deepEqual(r.stages[0]!.handlers[2]!.output, { chars: 1, mode: 'delay' }, 'the slow handler was waited for and its result kept');
  assert.equal(r.error?.type, CHAT_FAILURES.stageFailed);
  assert.match(r.error.message, /stage 1 failed — flaky: provider down/);
  assert.ok(!r.events.some((e) => e.type === 'handler.started' && e.handler === 'd'));
  assert.deepEqual(
    r.events.slice(-2).map((e) => e.type),
    ['stage.completed', 'message.completed'],
  );
});

test('fan-in first-success: a failure does not decide it, the first success does and the rest are cancelled', async () => {
  const handle = await start([{ handlers: [ok('a', 'reject'), ok('b', 'delay:200'), ok('c', 'hang')], fanIn: 'first-success' }]);
  await submit(handle, 'y');
  const r = await finished(handle, 'y');
  assert.equal(r.status, 'succeeded');
  assert.deepEqual(handlerStatuses(r), ['succeeded: a failed, b succeeded, c cancelled']);
  assert.deepEqual(r.stages[0]!.handlers[0]!.error, { type: 'ProviderRejected', message: 'the provider refused it' });
  assert.ok(r.events.some((e) => e.type === 'handler.cancelled' && e.handler === 'c'));
  await eventually('the losing handler to stop', () => (cancelledCalls.includes('y:hang') ? true : undefined));
});

test('fan-in quorum: 2 of 4 succeed despite a failure; a quorum out of reach fails at once', async () => {
  const reached = await start([{ handlers: [ok('a'), ok('b', 'reject'), ok('c', 'delay:200'), ok('d', 'hang')], fanIn: { quorum: 2 } }]);
  await submit(reached, 'q1');
  const r = await finished(reached, 'q1');
  assert.deepEqual(handlerStatuses(r), ['succeeded: a succeeded, b failed, c succeeded, d cancelled']);
  await eventually('the handler past the quorum to stop', () => (cancelledCalls.includes('q1:hang') ? true : undefined));

  const unreachable = await start([{ handlers: [ok('a', 'reject'), ok('b', 'reject'), ok('c', 'hang')], fanIn: { quorum: 2 } }]);
  await submit(unreachable, 'q2');
  const u = await finished(unreachable, 'q2');
  assert.deepEqual(handlerStatuses(u), ['failed: a failed, b failed, c cancelled']);
});

test('deliveries: a target that recovers gets the message, one that stays down is reported; later messages do not wait', async () => {
  const flaky = { name: 'flaky', url: `https://flaky-${randomUUID()}.example/hook` };
  const dead = { name: 'dead', url: `https://dead-${randomUUID()}.example/hook` };
  down.add(flaky.url);
  down.add(dead.url);
  const handle = await start([{ handlers: [ok('a')] }], { pipeline: pipeline([{ handlers: [ok('a')] }], [flaky, dead]) });
  for (const id of ['d1', 'd2', 'd3']) await submit(handle, id);
  const third = await finished(handle, 'd3');
  assert.equal(third.status, 'succeeded');
  const first = await liveRecord(handle, 'd1');
  assert.deepEqual(
    first.deliveries.map((d) => d.status),
    ['pending', 'pending'],
    'message 3 finished while message 1 was still undelivered',
  );
  await eventually('a few failed attempts at the flaky target', () =>
    attempts.filter((a) => a.target.url === flaky.url && a.seq === 1).length >= 2 ? true : undefined,
  );

  down.delete(flaky.url);
  await env.sleep(10 * 60_000); // past every backoff, and past the dead target's last attempt
  const delivered = await eventually('every delivery settled', async () => {
    const records = await Promise.all([1, 2, 3].map((seq) => liveRecord(handle, seq)));
    return records.every((m) => m.deliveries.every((d) => d.status !== 'pending')) ? records : undefined;
  });
  for (const m of delivered) {
    const [toFlaky, toDead] = m.deliveries;
    assert.equal(toFlaky!.status, 'delivered');
    assert.equal(toFlaky!.httpStatus, 200);
    assert.deepEqual(
      { status: toDead!.status, attempts: toDead!.attempts, lastError: toDead!.lastError },
      { status: 'failed', attempts: 10, lastError: 'dead answered 503' },
    );
    const webhookIds = new Set(attempts.filter((a) => a.seq === m.seq && a.target.url === flaky.url).map((a) => a.webhookId));
    assert.deepEqual([...webhookIds], [`${m.id}.flaky`], 'one webhook id across retries');
    assert.deepEqual(
      m.events
        .slice(-2)
        .map((e) => e.type)
        .sort(),
      ['delivery.delivered', 'delivery.failed'],
    );
  }
  assert.ok(delivered[0]!.deliveries[0]!.attempts! > 1, 'the first message reached the flaky target after failed attempts');

  const state = await handle.query(conversationStateQuery);
  const health = Object.fromEntries(state.targets.map((t) => [t.name, t]));
  assert.deepEqual([health.flaky!.delivered, health.flaky!.consecutiveFailures, health.flaky!.pending], [3, 0, 0]);
  assert.deepEqual([health.dead!.failed, health.dead!.consecutiveFailures, health.dead!.lastError], [3, 3, 'dead answered 503']);
  await eventually('the settled deliveries in the stored record', async () =>
    (await storedRecord(handle.conversationId, 1))?.deliveries.map((d) => d.status).join() === 'delivered,failed' ? true : undefined,
  );
});

test('a delivery is a signed POST of the stored record; a receiver that refuses it (4xx) fails it without retries', async () => {
  const receiver = await startWebhookReceiver();
  const refusing = await startWebhookReceiver();
  refusing.answerWith(410);
  try {
    const targets = [
      { name: 'hook', url: receiver.url },
      { name: 'gone', url: refusing.url },
    ];
    const handle = await start([{ handlers: [ok('a')] }], { pipeline: pipeline([{ handlers: [ok('a')] }], targets) });
    await submit(handle, 'w1', 'deliver me');
    await eventually('the message done, deliveries settled', async () => {
      const events = await handle.query(messageEventsQuery, 'w1', 0);
      return events && 'done' in events && events.done ? true : undefined;
    });
    const r = await liveRecord(handle, 'w1');
    assert.deepEqual(
      r.deliveries.map((d) => [d.target, d.status, d.attempts, d.httpStatus]),
      [
        ['hook', 'delivered', 1, 200],
        ['gone', 'failed', 1, 410],
      ],
    );
    assert.match(r.deliveries[1]!.lastError!, /HTTP 410/);

    const [hit] = receiver.delivered();
    assert.ok(hit);
    assert.equal(verifyWebhook(WEBHOOK_SECRET, hit.headers, hit.raw), true);
    assert.equal(hit.headers['webhook-id'], 'w1.hook');
    assert.equal(hit.body.type, 'conversation.message.completed');
    assert.deepEqual(
      [hit.body.conversationId, hit.body.message.id, hit.body.message.seq, hit.body.message.text],
      [handle.conversationId, 'w1', 1, 'deliver me'],
    );
    assert.deepEqual(hit.body.message.stages[0].handlers[0].output, { chars: 10, mode: 'ok' });
    assert.equal(refusing.received.length, 1, 'a 410 is not retried');
  } finally {
    await Promise.all([receiver.close(), refusing.close()]);
  }
});

test('past maxPending a message is rejected (429 to the client); a repeat is still answered', async () => {
  const handle = await start([{ handlers: [ok('a', 'hang')] }], { maxPending: 2 });
  for (const id of ['p1', 'p2', 'p3']) await submit(handle, id);
  await eventually('p1 running', async () => ((await liveRecord(handle, 'p1')).status === 'running' ? true : undefined));
  const rejected = await submit(handle, 'p4').catch((e: unknown) => e);
  assert.ok(rejected instanceof WorkflowUpdateFailedError, String(rejected));
  assert.ok(rejected.cause instanceof ApplicationFailure);
  assert.equal(rejected.cause.type, CHAT_FAILURES.tooManyPending);
  assert.match(rejected.cause.message, /has 2 messages waiting/);
  assert.deepEqual(await submit(handle, 'p3', 'p3', 'p3 again'), { id: 'p3', seq: 3, status: 'pending' });
  assert.equal((await handle.query(conversationStateQuery)).lastSeq, 3);
  await handle.terminate();
});

test('cancelling the conversation stops the handler in flight and ends every message it held', async () => {
  const handle = await start([{ handlers: [ok('a', 'hang')] }, { handlers: [ok('b')] }]);
  const text = `cancel ${handle.conversationId}`;
  await submit(handle, 'k1', text);
  await submit(handle, 'k2');
  await eventually('k1 running', async () => ((await liveRecord(handle, 'k1')).status === 'running' ? true : undefined));
  await handle.cancel();
  const error = await handle.result().catch((e: unknown) => e);
  assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, String(error));
  await eventually('the handler to be cancelled', () => (cancelledCalls.includes(`${text}:hang`) ? true : undefined));

  const k1 = await liveRecord(handle, 'k1');
  assert.equal(k1.status, 'cancelled');
  assert.deepEqual(handlerStatuses(k1), ['cancelled: a cancelled', 'skipped: b skipped']);
  assert.equal((await liveRecord(handle, 'k2')).status, 'cancelled');
  assert.equal((await storedRecord(handle.conversationId, 1))?.status, 'cancelled', 'the stopped message is stored');
  assert.equal((await handle.query(conversationStateQuery)).status, 'cancelled');
});

test('a recorded conversation history replays without non-determinism', async () => {
  const handle = await start([
    { handlers: [ok('a', 'delay:200'), ok('b', 'reject'), ok('c', 'hang')], fanIn: { quorum: 1 } },
    { handlers: [ok('d')] },
  ]);
  await submit(handle, 'r1');
  await submit(handle, 'r2');
  await finished(handle, 'r2');
  await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, await handle.fetchHistory(), handle.workflowId);
  await handle.terminate();
});

// The time-skipping server stops skipping time once a child job has been cancelled or a run has
// continued as new with activities in flight: these tests come after the one that skips time.
test('long handlers run as child inference jobs; one that loses the fan-in is cancelled with its job', async () => {
  const long = (name: string, model: string) => ({ name, model, long: true });
  const handle = await start([{ handlers: [long('a', 'delay:100'), long('b', 'hang')], fanIn: 'first-success' }]);
  await submit(handle, 'l1');
  const r = await finished(handle, 'l1');
  assert.deepEqual(handlerStatuses(r), ['succeeded: a succeeded, b cancelled']);
  assert.deepEqual(r.stages[0]!.handlers[0]!.output, { chars: 2, mode: 'delay' }, 'the child job’s result is recorded');
  await eventually('the losing job’s inference to stop', () => (cancelledCalls.includes('l1:hang') ? true : undefined));
  const [winner, loser] = ['a', 'b'].map((h) => env.client.workflow.getHandle(`${handle.workflowId}/1/${h}`));
  assert.equal((await winner!.describe()).status.name, 'COMPLETED');
  await eventually('the losing job to end cancelled', async () =>
    (await loser!.describe()).status.name === 'CANCELLED' ? true : undefined,
  );
});

test('continue-as-new keeps seq numbers, recent ids and records, and re-issues undelivered deliveries with the same webhook id', async () => {
  const hook = { name: 'hook', url: `https://hook-${randomUUID()}.example/in` };
  down.add(hook.url);
  const big = 'x'.repeat(25_000); // large records: only the newest few fit what a run carries over
  const handle = await start([{ handlers: [ok('a')] }], { pipeline: pipeline([{ handlers: [ok('a')] }], [hook]), messagesPerRun: 5 });
  const { runId: firstRun } = await handle.describe();
  for (let i = 1; i <= 12; i++) assert.equal((await submit(handle, `c${i}`, `${i} ${big}`)).seq, i);
  await eventually('12 messages processed', async () =>
    (await handle.query(conversationStateQuery)).messageCount === 12 ? true : undefined,
  );
  assert.notEqual((await handle.describe()).runId, firstRun, 'the conversation continued as new');
  // One more continue-as-new once all 12 have finished: then the oldest are certainly out of the state.
  const { runId: afterTwelve } = await handle.describe();
  let lastSeq = 12;
  await eventually('a run that started after message 12 finished', async () => {
    if ((await handle.describe()).runId !== afterTwelve) return true;
    lastSeq = (await submit(handle, `c${lastSeq + 1}`)).seq;
    return undefined;
  });
  assert.deepEqual(
    await submit(handle, 'c2', 'again'),
    { id: 'c2', seq: 2, status: null },
    'a repeat after continue-as-new is the same message',
  );
  assert.deepEqual(
    await handle.query(messageRecordQuery, 'c1'),
    { stored: { seq: 1, key: messageRecordKey('acme', handle.conversationId, 1) } },
    'an old record is read from the blob store',
  );
  assert.equal((await storedRecord(handle.conversationId, 1))?.status, 'succeeded');
  assert.equal((await finished(handle, lastSeq)).status, 'succeeded', 'the newest records are held');
  assert.equal(await handle.query(messageRecordQuery, lastSeq + 1), null);

  // Real time (see above); the current run's retries are seconds apart.
  down.delete(hook.url);
  const health = await eventually('every message delivered', async () => {
    const { targets } = await handle.query(conversationStateQuery);
    return targets[0]!.pending === 0 ? targets[0] : undefined;
  });
  assert.deepEqual([health.delivered, health.failed], [lastSeq, 0]);
  const toFirst = attempts.filter((a) => a.target.url === hook.url && a.seq === 1);
  const runsOfFirst = new Set(toFirst.map((a) => a.workflowRunId));
  assert.ok(runsOfFirst.size >= 2, `message 1 was delivered to in ${runsOfFirst.size} runs`);
  assert.deepEqual([...new Set(toFirst.map((a) => a.webhookId))], ['c1.hook'], 'the same webhook id in every run');
  for (let seq = 1; seq <= lastSeq; seq++) {
    await eventually(`the delivery of ${seq} in its stored record`, async () =>
      (await storedRecord(handle.conversationId, seq))?.deliveries[0]?.status === 'delivered' ? true : undefined,
    );
  }
});

/**
 * Conversations end to end on the real dev server with real worker and API processes: messages are
 * processed one at a time in the seq order the conversation gave them, each exactly once; fan-in
 * policies; the pending limit; idempotency; continue-as-new; live events over SSE; deletion. Handlers
 * are chat calls on an OpenAI-compatible pool pointed at the fake server, so its request log shows what
 * each handler saw, in order (each handler's system prompt names it).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_CHAT_PIPELINE, pipelineSchema } from '../../src/conversations/pipeline';
import { conversationStartOptions } from '../../src/clients/conversations/client';
import { messageResource } from '../../src/clients/conversations/resource';
import { conversationWorkflowId, messageRecordQuery } from '../../src/conversations/contract';
import { delayMarker, POISON, startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from '../../testkit/fake-openai';
import { openSse } from '../../testkit/sse-client';
import { Stack, TENANTS } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  stack = await new Stack({
    pools: {
      local: { provider: 'local', concurrency: 4 },
      remote: { provider: 'openai', concurrency: 16, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 },
    },
  }).start();
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

const newId = () => `c-${randomUUID().slice(0, 8)}`;

/** A chat handler on the remote pool; its prompt names it (and the conversation), plus `extra` (a delay, a poison). */
const handler = (cid: string, name: string, extra = '') => ({
  name,
  pool: 'remote',
  task: 'chat',
  prompt: `handler ${cid}/${name} ${extra}`.trim(),
  retry: { maxAttempts: 2, initialIntervalMs: 100 },
});

type ChatMessage = { role: string; content: string };
const messagesOf = (r: RecordedRequest) => (r.body as { messages?: ChatMessage[] })?.messages;

/** The provider's requests from the handler, in the order it got them. */
function requestsBy(cid: string, name: string): RecordedRequest[] {
  const prompt = new RegExp(`^handler ${cid}/${name}( |$)`);
  return openai.requests.filter((r) => {
    const m = messagesOf(r);
    return m?.[0]?.role === 'system' && prompt.test(m[0].content);
  });
}

/** The texts the handler received, in the order the provider got them. */
function seenBy(cid: string, name: string): string[] {
  return requestsBy(cid, name).map((r) => messagesOf(r)!.find((x) => x.role === 'user')!.content);
}

/** Whether the provider had answered none of the handler's calls (yet): a stage that finished did not wait for them. */
const unanswered = (cid: string, name: string) => requestsBy(cid, name).every((r) => r.status === undefined);

async function create(body: Record<string, unknown>): Promise<any> {
  const res = await stack.call('POST', '/v1/conversations', { body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function post(cid: string, text: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text }, headers });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body;
}

async function waitForMessage(cid: string, ref: string | number, statuses = ['succeeded', 'failed', 'cancelled']): Promise<any> {
  return eventually(`message ${ref} of ${cid} to be ${statuses.join('|')}`, async () => {
    const { status, body } = await stack.call('GET', `/v1/conversations/${cid}/messages/${ref}`);
    return status === 200 && statuses.includes(body.status) ? body : undefined;
  });
}

const outcome = (message: any, stage: number, name: string) => message.stages[stage - 1].handlers.find((h: any) => h.name === name);

describe('creating and reading', () => {
  test('a first message creates the conversation with the configured pipeline, on the local model', async () => {
    const cid = newId();
    const accepted = await post(cid, 'The deploy went smoothly. Everyone on the team is happy.');
    assert.match(accepted.id, /^msg-[0-9a-f]{32}$/);
    assert.equal(accepted.seq, 1);
    assert.equal(accepted.conversationId, cid);
    assert.deepEqual(accepted.links, {
      self: `/v1/conversations/${cid}/messages/${accepted.id}`,
      events: `/v1/conversations/${cid}/messages/${accepted.id}/events`,
      conversation: `/v1/conversations/${cid}`,
    });

    const message = await waitForMessage(cid, accepted.id);
    assert.equal(message.status, 'succeeded', JSON.stringify(message.error));
    assert.equal(outcome(message, 1, 'moderation').output.label, 'positive');
    assert.ok(outcome(message, 2, 'intent').output.keywords.length > 0);
    assert.equal(typeof outcome(message, 2, 'reply').output.summary, 'string');
    assert.deepEqual((await stack.call('GET', `/v1/conversations/${cid}/messages/1`)).body, message, 'by seq as by id');

    const { status, body } = await stack.call('GET', `/v1/conversations/${cid}`);
    assert.equal(status, 200);
    assert.equal(body.tenant, stack.tenant('acme'));
    assert.deepEqual(body.pipeline, DEFAULT_CHAT_PIPELINE);
    assert.equal(body.lastSeq, 1);
    assert.equal(body.messageCount, 1);
    assert.equal(body.status, 'idle');
    assert.ok(body.links.temporalUi.includes(encodeURIComponent(`${stack.tenant('acme')}/conversation/${cid}`)));

    // Another tenant does not see it, nor can it post into it: its id is its own conversation.
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}`, { as: 'globex' })).status, 404);
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}/messages/1`, { as: 'globex' })).status, 404);
  });

  test('explicit create: 201, the same again 200, a different pipeline or limit 409', async () => {
    const cid = newId();
    const stages = [{ handlers: [handler(cid, 'a')] }];
    const created = await create({ id: cid, stages, maxPending: 5 });
    assert.equal(created.status, 'idle');
    assert.equal(created.maxPending, 5);
    assert.equal(created.pipeline.stages[0].fanIn, 'all', 'defaults are filled in');

    const again = await stack.call('POST', '/v1/conversations', { body: { id: cid, stages, maxPending: 5 } });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.pipeline, created.pipeline);
    for (const body of [
      { id: cid, stages, maxPending: 6 },
      { id: cid, stages: [{ handlers: [handler(cid, 'b')] }], maxPending: 5 },
      { id: cid },
    ]) {
      const conflict = await stack.call('POST', '/v1/conversations', { body });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.code, 'conversation-exists');
      assert.equal(conflict.body.conversation.maxPending, 5);
    }
  });
});

describe('ordering', () => {
  test('100 messages posted at once are each processed exactly once, in the seq order they were given', async () => {
    const cid = newId();
    await create({ id: cid, stages: [{ handlers: [handler(cid, 'a')] }, { handlers: [handler(cid, 'b'), handler(cid, 'c')] }] });
    const texts = Array.from({ length: 100 }, (_, i) => `${cid} message ${i}`);
    const accepted = await Promise.all(texts.map((t) => post(cid, t)));
    const seqOf = new Map(accepted.map((m, i) => [texts[i]!, m.seq as number]));
    assert.deepEqual(
      [...seqOf.values()].sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );

    await eventually(
      'all 100 messages to finish',
      async () => ((await stack.call('GET', `/v1/conversations/${cid}`)).body.messageCount === 100 ? true : undefined),
      180_000,
    );
    for (const name of ['a', 'b', 'c']) {
      const seqs = seenBy(cid, name).map((t) => seqOf.get(t));
      assert.deepEqual(
        seqs,
        Array.from({ length: 100 }, (_, i) => i + 1),
        `handler ${name} saw the messages in seq order, once each`,
      );
    }
    const last = await waitForMessage(cid, 100);
    assert.equal(last.status, 'succeeded');
    assert.equal(outcome(last, 2, 'c').output.message.content, `echo: ${last.text}`);
  });
});

describe('fan-in', () => {
  /** A conversation with `stage` then a stage that runs only if it succeeded; returns its first message once done. */
  async function runStage(cid: string, stage: Record<string, unknown>): Promise<any> {
    await create({ id: cid, stages: [stage, { handlers: [handler(cid, 'after')] }] });
    return waitForMessage(cid, (await post(cid, `${cid} fan-in`)).id);
  }
  const statuses = (message: any, stage = 1) => Object.fromEntries(message.stages[stage - 1].handlers.map((h: any) => [h.name, h.status]));

  test('all: one handler fails → the stage and message fail, the others’ results are kept, later stages skipped', async () => {
    const cid = newId();
    const message = await runStage(cid, {
      fanIn: 'all',
      handlers: [handler(cid, 'ok1'), handler(cid, 'bad', POISON), handler(cid, 'ok2', delayMarker(500))],
    });
    assert.equal(message.status, 'failed');
    assert.deepEqual(statuses(message), { ok1: 'succeeded', bad: 'failed', ok2: 'succeeded' });
    assert.equal(outcome(message, 1, 'bad').error.type, 'ProviderRejected');
    assert.equal(outcome(message, 1, 'ok2').output.message.content, `echo: ${cid} fan-in`);
    assert.equal(message.stages[0].status, 'failed');
    assert.equal(message.stages[1].status, 'skipped');
    assert.deepEqual(statuses(message, 2), { after: 'skipped' });
    assert.match(message.error.message, /bad/);
    assert.deepEqual(seenBy(cid, 'after'), []);
  });

  test('first-success: the first success wins, the slower handler is cancelled, a failure does not matter', async () => {
    const cid = newId();
    const message = await runStage(cid, {
      fanIn: 'first-success',
      handlers: [handler(cid, 'bad', POISON), handler(cid, 'fast', delayMarker(300)), handler(cid, 'slow', delayMarker(60_000))],
    });
    assert.ok(unanswered(cid, 'slow'), 'it did not wait for the slow handler');
    assert.equal(message.status, 'succeeded', JSON.stringify(message.error));
    assert.deepEqual(statuses(message), { bad: 'failed', fast: 'succeeded', slow: 'cancelled' });
    assert.equal(message.stages[1].status, 'succeeded');
  });

  test('quorum: 2 of 3 succeed despite a failure; with 2 failures the quorum is out of reach at once', async () => {
    const won = newId();
    const ok = await runStage(won, {
      fanIn: { quorum: 2 },
      handlers: [handler(won, 'a'), handler(won, 'bad', POISON), handler(won, 'b', delayMarker(300))],
    });
    assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));
    assert.deepEqual(statuses(ok), { a: 'succeeded', bad: 'failed', b: 'succeeded' });

    const lost = newId();
    const failed = await runStage(lost, {
      fanIn: { quorum: 2 },
      handlers: [handler(lost, 'bad1', POISON), handler(lost, 'bad2', POISON), handler(lost, 'slow', delayMarker(60_000))],
    });
    assert.ok(unanswered(lost, 'slow'), 'it did not wait for the slow handler');
    assert.equal(failed.status, 'failed');
    assert.deepEqual(statuses(failed), { bad1: 'failed', bad2: 'failed', slow: 'cancelled' });
    assert.equal(failed.stages[1].status, 'skipped');
  });
});

describe('limits and idempotency', () => {
  test('past maxPending a message is refused with 429 and Retry-After, and nothing is accepted', async () => {
    const cid = newId();
    // The first message's call is answered only after a minute: it runs for as long as the test needs.
    await create({ id: cid, stages: [{ handlers: [handler(cid, 'slow', delayMarker(60_000))] }], maxPending: 2 });
    const first = await post(cid, 'first');
    await waitForMessage(cid, first.id, ['running']);
    await post(cid, 'second');
    await post(cid, 'third');
    const refused = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text: 'fourth' } });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'too-many-pending');
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    const conversation = (await stack.call('GET', `/v1/conversations/${cid}`)).body;
    assert.equal(conversation.lastSeq, 3);
    assert.equal(conversation.pending, 2);
    await stack.call('DELETE', `/v1/conversations/${cid}`); // cancels the slow call
  });

  test('an Idempotency-Key: a repeat is the same message (200), another text with it 409', async () => {
    const cid = newId();
    await create({ id: cid, stages: [{ handlers: [handler(cid, 'a')] }] });
    const headers = { 'idempotency-key': 'order-4711' };
    const first = await post(cid, 'hello', headers);
    const repeat = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text: 'hello' }, headers });
    assert.equal(repeat.status, 200, JSON.stringify(repeat.body));
    assert.equal(repeat.body.id, first.id);
    assert.equal(repeat.body.seq, 1);
    const conflict = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text: 'other' }, headers });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.code, 'idempotency-conflict');
    // The same key in another conversation is another message.
    const elsewhere = newId();
    await create({ id: elsewhere, stages: [{ handlers: [handler(elsewhere, 'a')] }] });
    assert.notEqual((await post(elsewhere, 'hello', headers)).id, first.id);
    await waitForMessage(cid, first.id);
    assert.deepEqual(seenBy(cid, 'a'), ['hello']);
  });
});

describe('continue-as-new', () => {
  test('a conversation that continues as new every 4 messages keeps its seq numbers, records and repeats', async () => {
    const cid = newId();
    const tenant = stack.tenant('acme');
    const temporal = await stack.temporal();
    const pipeline = pipelineSchema.parse({ stages: [{ handlers: [handler(cid, 'a')] }] });
    // Started as the API starts it, with a short run: a run starts at most 4 messages, so 14 take four runs or more.
    const options = conversationStartOptions({
      tenant,
      conversationId: cid,
      spec: { pipeline, maxPending: 100 },
      taskQueuePrefix: stack.prefix,
      heartbeatTimeoutMs: 2000,
      tenantWeight: 1,
    });
    await temporal.workflow.start('conversation', { ...options, args: [{ ...options.args[0], messagesPerRun: 4 }] });

    // Long texts: the records the runs carry over are bounded in size, so the oldest are read back from the blob store.
    const texts = Array.from({ length: 14 }, (_, i) => `${cid} ${i} ${'long text '.repeat(2500)}`);
    const keyed = { 'idempotency-key': `${cid}-first` };
    const first = await post(cid, texts[0]!, keyed);
    for (const text of texts.slice(1)) await post(cid, text);
    await eventually(
      '14 messages to finish',
      async () => ((await stack.call('GET', `/v1/conversations/${cid}`)).body.messageCount === 14 ? true : undefined),
      120_000,
    );

    // Visibility lags a little behind the latest run.
    await eventually('four runs to be listed', async () => {
      const runs = [];
      for await (const run of temporal.workflow.list({ query: `WorkflowId = '${options.workflowId}'` })) runs.push(run);
      return runs.length >= 4 ? true : undefined;
    });
    const held = await temporal.workflow.getHandle(options.workflowId).query<object, [number]>('messageRecord', 1);
    assert.ok('stored' in held, 'the workflow no longer holds message 1: the API reads it from the blob store');
    const conversation = (await stack.call('GET', `/v1/conversations/${cid}`)).body;
    assert.equal(conversation.lastSeq, 14);
    assert.equal(conversation.messageCount, 14);
    for (let seq = 1; seq <= 14; seq++) {
      const message = (await stack.call('GET', `/v1/conversations/${cid}/messages/${seq}`)).body;
      assert.equal(message.seq, seq);
      assert.equal(message.text, texts[seq - 1]);
      assert.equal(message.status, 'succeeded');
    }
    assert.deepEqual(seenBy(cid, 'a'), texts);
    const repeat = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text: texts[0] }, headers: keyed });
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.id, first.id);
    assert.equal(repeat.body.seq, 1);
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}/messages/${first.id}`)).body.seq, 1);
  });
});

describe('live events (SSE)', () => {
  const eventsUrl = (cid: string, mid: string, query = '') => `${stack.apiUrl}/v1/conversations/${cid}/messages/${mid}/events${query}`;
  const auth = { authorization: `Bearer ${TENANTS.acme.key}` };

  test('a client receives every event of a message as it happens, and the stream ends after message.completed', async () => {
    const cid = newId();
    await create({
      id: cid,
      stages: [{ handlers: [handler(cid, 'a', delayMarker(600))] }, { handlers: [handler(cid, 'b'), handler(cid, 'c', delayMarker(600))] }],
    });
    const { id } = await post(cid, 'stream me');
    const stream = await openSse(eventsUrl(cid, id), auth);
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(stream.headers.get('cache-control'), 'no-cache');
    assert.equal(stream.headers.get('x-accel-buffering'), 'no');
    await stream.ended;

    const events = stream.events.map((e) => ({ ...e, parsed: JSON.parse(e.data) }));
    assert.deepEqual(
      events.map((e) => Number(e.id)),
      events.map((_, i) => i + 1),
      'ids 1, 2, … without gaps or repeats',
    );
    for (const e of events) assert.equal(e.event, e.parsed.type);
    const types = events.map((e) => e.event);
    assert.equal(types[0], 'message.accepted');
    assert.equal(types.at(-1), 'message.completed');
    assert.equal(events.at(-1)!.parsed.status, 'succeeded');
    assert.equal(types.filter((t) => t === 'handler.started').length, 3);
    assert.equal(types.filter((t) => t === 'handler.succeeded').length, 3);
    assert.equal(types.filter((t) => t === 'stage.completed').length, 2);
    assert.ok(types.indexOf('stage.completed') < types.lastIndexOf('handler.started'), 'stage 2 starts after stage 1 completed');
    const spread = Date.parse(events.at(-1)!.parsed.at) - Date.parse(events[0]!.parsed.at);
    assert.ok(spread >= 1000, `the events came over time (${spread} ms), so the stream was live`);
  });

  test('a client that reconnects with Last-Event-ID (or ?lastEventId=) gets the rest, without repeats', async () => {
    const cid = newId();
    await create({
      id: cid,
      stages: [{ handlers: [handler(cid, 'a', delayMarker(1500))] }, { handlers: [handler(cid, 'b', delayMarker(500))] }],
    });
    const { id } = await post(cid, 'resume me');
    const firstPart = await openSse(eventsUrl(cid, id), auth);
    const seen = (await firstPart.waitFor(2)).slice(0, 2);
    firstPart.close();
    assert.deepEqual(
      seen.map((e) => e.event),
      ['message.accepted', 'handler.started'],
    );

    const rest = await openSse(eventsUrl(cid, id), { ...auth, 'last-event-id': '2' });
    await rest.ended;
    const ids = [...seen, ...rest.events].map((e) => Number(e.id));
    assert.deepEqual(
      ids,
      ids.map((_, i) => i + 1),
    );
    assert.equal(rest.events.at(-1)!.event, 'message.completed');

    const whole = await openSse(eventsUrl(cid, id), auth);
    await whole.ended;
    assert.deepEqual(whole.events, [...seen, ...rest.events], 'the same events, whether read live in two parts or afterwards');
    const fromQuery = await openSse(eventsUrl(cid, id, '?lastEventId=4'), auth);
    await fromQuery.ended;
    assert.deepEqual(fromQuery.events, whole.events.slice(4));
    const header = await openSse(eventsUrl(cid, id, '?lastEventId=1'), { ...auth, 'last-event-id': '4' });
    await header.ended;
    assert.deepEqual(header.events, whole.events.slice(4), 'the header wins: EventSource keeps the URL when it reconnects');

    const nothingLeft = await openSse(eventsUrl(cid, id), { ...auth, 'last-event-id': String(whole.events.length) });
    assert.equal(nothingLeft.status, 204, 'nothing more will come: EventSource stops reconnecting');
  });
});

describe('deleting', () => {
  /** A message as the conversation's workflow keeps it: a deleted conversation's are not shown by the API. */
  async function recordOf(cid: string, ref: string): Promise<any> {
    const handle = (await stack.temporal()).workflow.getHandle(conversationWorkflowId(stack.tenant(), cid));
    const answer = await handle.query(messageRecordQuery, ref);
    assert.ok(answer, `no message ${ref} in ${cid}`);
    return messageResource('record' in answer ? answer.record : JSON.parse((await stack.blobs().get(answer.stored.key)).toString('utf8')));
  }

  test('DELETE cancels the message in flight and the waiting ones; the conversation reads as gone and takes no more messages', async () => {
    const cid = newId();
    await create({ id: cid, stages: [{ handlers: [handler(cid, 'slow', delayMarker(30_000))] }, { handlers: [handler(cid, 'after')] }] });
    const inFlight = await post(cid, 'in flight');
    const waiting = await post(cid, 'waiting');
    await waitForMessage(cid, inFlight.id, ['running']);
    await eventually('the slow call to reach the provider', () => seenBy(cid, 'slow')[0]);

    const deleted = await stack.call('DELETE', `/v1/conversations/${cid}`);
    assert.equal(deleted.status, 202);
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}`)).status, 404, 'gone from the moment it is deleted');
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}/messages/${inFlight.id}`)).status, 404);
    const cancelled = await eventually('the message in flight to be cancelled', async () => {
      const record = await recordOf(cid, inFlight.id);
      return record.status === 'cancelled' ? record : undefined;
    });
    assert.equal(outcome(cancelled, 1, 'slow').status, 'cancelled');
    assert.equal(cancelled.stages[1].status, 'skipped');
    const stillWaiting = await eventually('the waiting message to be cancelled', async () => {
      const record = await recordOf(cid, waiting.id);
      return record.status === 'cancelled' ? record : undefined;
    });
    assert.equal(stillWaiting.stages[0].status, 'skipped');

    const refused = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text: 'too late' } });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'conversation-ended');
    assert.equal((await stack.call('DELETE', `/v1/conversations/${cid}`)).status, 404);
    assert.equal((await stack.call('POST', '/v1/conversations', { body: { id: cid } })).body.code, 'conversation-ended');
    assert.deepEqual(seenBy(cid, 'after'), []);
  });
});

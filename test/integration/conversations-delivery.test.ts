/**
 * Conversation targets on the real dev server with real processes and real HTTP receivers: every finished
 * message is POSTed to each target, signed; a target that is down gets its deliveries once it is back,
 * while other targets and later messages go on without waiting for it; a target that stays down is
 * reported on the message and the conversation. Targets are checked when they are given.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { conversationWorkflowId } from '../../src/conversations/contract';
import { verifyWebhook } from '../../src/net/webhook';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { openSse } from '../../testkit/sse-client';
import { Stack, TENANTS } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';
import { startWebhookReceiver, type WebhookReceiver } from '../../testkit/webhook-receiver';

const SECRET = 'whsec-conversations-0123456789';

let openai: FakeOpenAI;
let stack: Stack;
const receivers: WebhookReceiver[] = [];

before(async () => {
  openai = await startFakeOpenAI();
  stack = new Stack({
    pools: { remote: { provider: 'openai', concurrency: 8, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 } },
    // The receivers listen on loopback, which outbound requests may reach only when allowed.
    env: { SWITCHYARD_OUTBOUND_ALLOW: '127.0.0.1/32' },
  });
  // Only acme has a webhook secret: globex may have no targets.
  stack.env.SWITCHYARD_TENANTS = JSON.stringify({ [stack.tenant('acme')]: { webhookSecret: SECRET } });
  await stack.start();
});
after(async () => {
  await stack?.stop();
  await openai?.close();
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver();
  receivers.push(r);
  return r;
}

const newId = () => `d-${randomUUID().slice(0, 8)}`;
const stages = [{ handlers: [{ name: 'reply', pool: 'remote', task: 'chat', prompt: 'reply' }] }];

async function post(cid: string, text: string): Promise<any> {
  const res = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body;
}

const getMessage = async (cid: string, ref: string | number) => (await stack.call('GET', `/v1/conversations/${cid}/messages/${ref}`)).body;
const getTarget = async (cid: string, name: string) =>
  (await stack.call('GET', `/v1/conversations/${cid}`)).body.targets.find((t: any) => t.name === name);
const deliveryTo = (message: any, target: string) => message.deliveries.find((d: any) => d.target === target);
/** The messages (by seq) a receiver has accepted, in the order it accepted them. */
const seqsDelivered = (r: WebhookReceiver) => r.delivered().map((w) => w.body.message.seq);

describe('deliveries', () => {
  test(
    'a target that is down gets its deliveries once it is back; the other target and later messages do not wait',
    { timeout: 90_000 },
    async () => {
      const [flaky, steady] = [await receiver(), await receiver()];
      flaky.answerWith(503);
      const cid = newId();
      const created = await stack.call('POST', '/v1/conversations', {
        body: {
          id: cid,
          stages,
          targets: [
            { name: 'flaky', url: flaky.url },
            { name: 'steady', url: steady.url },
          ],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));

      const first = await post(cid, 'first');
      await eventually('the steady target to get message 1', () => (seqsDelivered(steady).includes(1) ? true : undefined));
      await eventually('the flaky target to have refused message 1 twice', () => (flaky.received.length >= 2 ? true : undefined));
      // While flaky is down, later messages are processed and delivered to steady as soon as they finish.
      for (const text of ['second', 'third']) {
        const { seq } = await post(cid, text);
        await eventually(`the steady target to get message ${seq}`, () => (seqsDelivered(steady).includes(seq) ? true : undefined));
      }
      const retrying = deliveryTo(await getMessage(cid, first.id), 'flaky');
      assert.equal(retrying.status, 'pending');
      assert.ok(retrying.attempts >= 2, JSON.stringify(retrying));
      assert.match(retrying.lastError, /503/);
      const unhealthy = await getTarget(cid, 'flaky');
      assert.equal(unhealthy.healthy, false);
      assert.ok(unhealthy.pending >= 1);
      assert.equal((await getTarget(cid, 'steady')).healthy, true);

      flaky.answerWith(200);
      await eventually('the flaky target to get all three', () => (new Set(seqsDelivered(flaky)).size === 3 ? true : undefined));
      const message = await eventually('message 1’s delivery to settle', async () => {
        const m = await getMessage(cid, first.id);
        return deliveryTo(m, 'flaky').status === 'delivered' ? m : undefined;
      });
      assert.ok(deliveryTo(message, 'flaky').attempts >= 3);
      assert.equal(deliveryTo(message, 'steady').attempts, 1);
      assert.equal(deliveryTo(message, 'flaky').httpStatus, 200);
      const healthy = await getTarget(cid, 'flaky');
      assert.deepEqual([healthy.healthy, healthy.delivered, healthy.consecutiveFailures, healthy.pending], [true, 3, 0, 0]);

      // Every attempt of one delivery carries the same webhook-id and a valid signature over its body.
      const attempts = flaky.received.filter((w) => w.body.message.id === first.id);
      assert.ok(attempts.length >= 3);
      assert.equal(new Set(attempts.map((w) => w.headers['webhook-id'])).size, 1);
      assert.equal(attempts[0]!.headers['webhook-id'], deliveryTo(message, 'flaky').webhookId);
      for (const w of [...attempts, ...steady.received]) assert.doesNotThrow(() => verifyWebhook(SECRET, w.headers, w.raw));
      const body = steady.received[0]!.body;
      assert.equal(body.type, 'conversation.message.completed');
      assert.equal(body.conversationId, cid);
      assert.deepEqual([body.message.seq, body.message.status, body.message.text], [1, 'succeeded', 'first']);
      assert.equal(body.message.stages[0].handlers[0].output.message.content, 'echo: first');

      // The message's event stream tells of both deliveries.
      const stream = await openSse(`${stack.apiUrl}${first.links.events}`, { authorization: `Bearer ${TENANTS.acme.key}` });
      await stream.ended;
      const delivered = stream.events.filter((e) => e.event === 'delivery.delivered').map((e) => JSON.parse(e.data).target);
      assert.deepEqual(delivered.sort(), ['flaky', 'steady']);
    },
  );

  test('a target that stays down is reported on the message and the conversation', { timeout: 60_000 }, async () => {
    const [down, up] = [await receiver(), await receiver()];
    down.answerWith(500);
    const cid = newId();
    await stack.call('POST', '/v1/conversations', {
      body: {
        id: cid,
        stages,
        targets: [
          { name: 'down', url: down.url },
          { name: 'up', url: up.url },
        ],
      },
    });
    const { id } = await post(cid, 'hello');
    const delivery = await eventually('a few failed attempts to be reported', async () => {
      const d = deliveryTo(await getMessage(cid, id), 'down');
      return d && d.attempts >= 3 ? d : undefined;
    });
    assert.equal(delivery.status, 'pending');
    assert.match(delivery.lastError, /500/);
    assert.equal(deliveryTo(await getMessage(cid, id), 'up').status, 'delivered');
    const target = await getTarget(cid, 'down');
    assert.equal(target.healthy, false);
    assert.equal(target.pending, 1);
    assert.match(target.lastError, /500/);
    assert.equal(target.delivered, 0);
    assert.equal((await stack.call('DELETE', `/v1/conversations/${cid}`)).status, 202); // stops the retries
    // A deleted conversation reads as not found at once; its workflow ends once the cancellation has run.
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}`)).status, 404);
    const workflow = (await stack.temporal()).workflow.getHandle(conversationWorkflowId(stack.tenant(), cid));
    await eventually('the conversation to end', async () => ((await workflow.describe()).status.name !== 'RUNNING' ? true : undefined));
    const late = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text: 'late' } });
    assert.equal(late.body.code, 'conversation-ended', JSON.stringify(late.body));
  });

  test('without a local pool the configured pipeline cannot run: a message to a conversation not created is 404', async () => {
    const res = await stack.call('POST', `/v1/conversations/${newId()}/messages`, { body: { text: 'hello' } });
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.match(res.body.detail, /create it with POST \/v1\/conversations/);
  });
});

describe('targets are checked when given', () => {
  test('a URL outbound requests may not reach is 400 url-refused naming the target', async () => {
    const res = await stack.call('POST', '/v1/conversations', {
      body: { id: newId(), stages, targets: [{ name: 'meta', url: 'http://169.254.169.254/latest/meta-data' }] },
    });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.code, 'url-refused');
    assert.equal(res.body.errors[0].path, 'body.targets.0.url');
    assert.match(res.body.detail, /meta.*169\.254\.169\.254/);
  });

  test('targets for a tenant without a webhook secret are 400 webhook-not-configured; no conversation is created', async () => {
    const cid = newId();
    const r = await receiver();
    const res = await stack.call('POST', '/v1/conversations', {
      as: 'globex',
      body: { id: cid, stages, targets: [{ name: 't', url: r.url }] },
    });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.code, 'webhook-not-configured');
    assert.equal((await stack.call('GET', `/v1/conversations/${cid}`, { as: 'globex' })).status, 404);
  });
});

/**
 * Conversations at load and through a crash, on the real dev server with real processes: 200
 * conversations of 5 messages each, all at once, every one processed in its own seq order; and worker
 * processes killed with SIGKILL in the middle of a conversation, after which it carries on in order with
 * nothing lost or repeated in its results.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { delayMarker, startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { openSse } from '../../testkit/sse-client';
import { Stack, TENANTS, type ProcessHandle } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

let openai: FakeOpenAI;
let stack: Stack;
let workflows: ProcessHandle;
let pool: ProcessHandle;

before(async () => {
  openai = await startFakeOpenAI();
  stack = new Stack({
    pools: { remote: { provider: 'openai', concurrency: 32, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 } },
  });
  [workflows, pool] = await Promise.all([stack.worker(['--workflows']), stack.worker(['--pool', 'remote']), stack.startApi()]);
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

const run = randomBytes(3).toString('hex');
/** The 200-conversation test's timeout, which also bounds each of its waits: they need no bound of their own. */
const SCALE_TEST_MS = 420_000;

/** One chat handler whose prompt names the conversation. */
const stagesFor = (cid: string, extra = '') => [
  {
    handlers: [
      {
        name: 'h',
        pool: 'remote',
        task: 'chat',
        prompt: `handler ${cid} ${extra}`.trim(),
        retry: { maxAttempts: 5, initialIntervalMs: 200 },
      },
    ],
  },
];

/** The texts the conversation's handler received, in the order the provider got them. */
function seenBy(cid: string): string[] {
  return openai.requests
    .map((r) => (r.body as { messages?: { role: string; content: string }[] })?.messages)
    .filter((m) => m?.[0]?.role === 'system' && new RegExp(`^handler ${cid}( |$)`).test(m[0].content))
    .map((m) => m!.find((x) => x.role === 'user')!.content);
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function bounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return results;
}

async function post(cid: string, text: string): Promise<number> {
  const res = await stack.call('POST', `/v1/conversations/${cid}/messages`, { body: { text } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.seq;
}

const messageCount = async (cid: string): Promise<number> => (await stack.call('GET', `/v1/conversations/${cid}`)).body.messageCount;

test(
  '200 conversations × 5 messages at once: every message is processed once, each conversation in its own order',
  { timeout: SCALE_TEST_MS },
  async () => {
    const cids = Array.from({ length: 200 }, (_, i) => `scale-${run}-${i}`);
    await bounded(cids, 20, async (cid) => {
      const res = await stack.call('POST', '/v1/conversations', { body: { id: cid, stages: stagesFor(cid) } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    });
    const started = Date.now();
    const messages = cids.flatMap((cid) => Array.from({ length: 5 }, (_, i) => ({ cid, text: `${cid} message ${i}` })));
    const seqs = await bounded(messages, 50, (m) => post(m.cid, m.text));
    const seqOf = new Map(messages.map((m, i) => [m.text, seqs[i]!]));

    await eventually('the provider to have seen 1000 messages', () => (seenByAll() >= 1000 ? true : undefined), SCALE_TEST_MS);
    // The last records are stored just after their handler's call: wait until every conversation counts 5.
    let unfinished = cids;
    await eventually(
      'all 200 conversations to have finished their 5 messages',
      async () => {
        const counts = await bounded(unfinished, 20, (cid) => messageCount(cid).catch(() => 0));
        unfinished = unfinished.filter((_, i) => counts[i] !== 5);
        return unfinished.length === 0 ? true : undefined;
      },
      SCALE_TEST_MS,
    );
    console.log(`1000 messages in 200 conversations done ${Date.now() - started} ms after the first was posted`);
    let retried = 0;
    for (const cid of cids) {
      const order = seenBy(cid).map((t) => seqOf.get(t)!);
      assert.deepEqual(
        order.filter((seq, i) => order[i - 1] !== seq),
        [1, 2, 3, 4, 5],
        `${cid} saw its messages in seq order`,
      );
      // A call seen twice is an activity retried on a busy machine (a missed heartbeat): its record says so.
      for (const seq of new Set(order.filter((seq, i) => order[i - 1] === seq))) {
        const message = (await stack.call('GET', `/v1/conversations/${cid}/messages/${seq}`)).body;
        assert.ok(message.stages[0].handlers[0].attempts >= order.filter((s) => s === seq).length, JSON.stringify(message));
        retried++;
      }
    }
    console.log(`${retried} of 1000 handler calls were retried`);
  },
);

function seenByAll(): number {
  return openai.requests.filter((r) => JSON.stringify(r.body).includes(`handler scale-${run}-`)).length;
}

test(
  'worker processes killed with SIGKILL mid-conversation: it resumes in order, nothing lost or repeated in its results',
  { timeout: 240_000 },
  async () => {
    const cid = `crash-${run}`;
    const res = await stack.call('POST', '/v1/conversations', { body: { id: cid, stages: stagesFor(cid, delayMarker(800)) } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const texts = Array.from({ length: 12 }, (_, i) => `${cid} message ${i}`);
    for (const text of texts) await post(cid, text);
    await eventually('3 messages to finish', async () => ((await messageCount(cid)) >= 3 ? true : undefined));

    for (const p of [workflows, pool]) p.kill('SIGKILL');
    assert.deepEqual(await Promise.all([workflows.exited, pool.exited]), ['SIGKILL', 'SIGKILL']);
    const killedAt = Date.now();
    [workflows, pool] = await Promise.all([stack.worker(['--workflows']), stack.worker(['--pool', 'remote'])]);
    await eventually('all 12 messages to finish', async () => ((await messageCount(cid)) === 12 ? true : undefined));
    console.log(`the conversation finished ${Date.now() - killedAt} ms after the kill`);

    // The provider may see the call that was in flight twice (its attempt was retried), never out of order.
    const seen = seenBy(cid);
    assert.deepEqual(
      seen.filter((t, i) => seen[i - 1] !== t),
      texts,
    );
    assert.ok(seen.length <= texts.length + 1, `at most the call in flight was repeated: ${seen.length}`);
    for (let seq = 1; seq <= 12; seq++) {
      const message = (await stack.call('GET', `/v1/conversations/${cid}/messages/${seq}`)).body;
      assert.equal(message.status, 'succeeded', JSON.stringify(message.error));
      assert.equal(message.text, texts[seq - 1]);
      assert.equal(message.stages[0].handlers[0].output.message.content, `echo: ${texts[seq - 1]}`);
      const stream = await openSse(`${stack.apiUrl}/v1/conversations/${cid}/messages/${seq}/events`, {
        authorization: `Bearer ${TENANTS.acme.key}`,
      });
      await stream.ended;
      const types = stream.events.map((e) => e.event);
      assert.deepEqual(
        types.map((_, i) => Number(stream.events[i]!.id)),
        types.map((_, i) => i + 1),
      );
      for (const once of ['message.accepted', 'handler.succeeded', 'message.completed']) {
        assert.equal(types.filter((t) => t === once).length, 1, `message ${seq}: one ${once} in ${types.join(', ')}`);
      }
    }
  },
);

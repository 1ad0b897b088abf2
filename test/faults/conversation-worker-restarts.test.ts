/**
 * Conversations through workflow worker restarts: the workflow worker is SIGKILLed while messages keep
 * arriving with Idempotency-Keys (each submit reads the conversation first, then updates it). Every
 * submit is answered 202, or 503 while the workflow cannot answer, never 500; every message is processed
 * once; and no workflow task failed, as one did when the restarted worker replayed local-activity results
 * in another order than they ran.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { temporal as proto } from '@temporalio/proto';
import { conversationWorkflowId } from '../../src/conversations/contract';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const CONVERSATIONS = ['restart-0', 'restart-1', 'restart-2'];
const SUBMITTERS_PER_CONVERSATION = 2;
const RESTARTS = 3;
/** Messages accepted between restarts before the next kill: each kill lands amid submits and processing. */
const MESSAGES_BETWEEN_RESTARTS = 24;

let stack: Stack;
before(async () => {
  stack = await new Stack({ env: { SWITCHYARD_HEARTBEAT_TIMEOUT_MS: '2000' } }).start();
});
after(() => stack?.stop());

test('a workflow worker killed three times under idempotent submits: 202 or 503, never 500; each message once', async () => {
  const stages = [{ name: 'mood', handlers: [{ name: 'mood', pool: 'local', task: 'sentiment' }] }];
  for (const id of CONVERSATIONS) {
    assert.equal((await stack.call('POST', '/v1/conversations', { body: { id, stages, maxPending: 1000 } })).status, 201);
  }

  const statuses = new Map<number, number>();
  const accepted = new Map<string, string[]>(CONVERSATIONS.map((id) => [id, []]));
  let next = 0;
  let stop = false;
  /** Sends messages one after another, each retried with its key until it is accepted. */
  const submitter = async (cid: string) => {
    while (!stop) {
      const key = `m-${next++}`;
      for (;;) {
        const answer = await stack.call('POST', `/v1/conversations/${cid}/messages`, {
          body: { text: `message ${key}` },
          headers: { 'idempotency-key': key },
        });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 202 || answer.status === 200) {
          accepted.get(cid)!.push(answer.body.id as string);
          break;
        }
        assert.equal(answer.status, 503, `submit ${key}: ${JSON.stringify(answer.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const submitters = CONVERSATIONS.flatMap((cid) => Array.from({ length: SUBMITTERS_PER_CONVERSATION }, () => submitter(cid)));
  const acceptedCount = () => [...accepted.values()].reduce((sum, ids) => sum + ids.length, 0);

  try {
    for (let restart = 1; restart <= RESTARTS; restart++) {
      const target = acceptedCount() + MESSAGES_BETWEEN_RESTARTS;
      await eventually(`${target} messages accepted`, () => (acceptedCount() >= target ? true : undefined));
      const worker = stack.processes().find((p) => p.name === 'workflows')!;
      worker.kill('SIGKILL');
      await worker.exited;
      await stack.worker(['--workflows']);
    }
    const target = acceptedCount() + MESSAGES_BETWEEN_RESTARTS;
    await eventually(`${target} messages accepted after the last restart`, () => (acceptedCount() >= target ? true : undefined));
  } finally {
    stop = true;
    await Promise.allSettled(submitters);
  }
  await Promise.all(submitters);

  for (const [cid, ids] of accepted) {
    await eventually(`the ${ids.length} messages of ${cid} to be processed`, async () => {
      const conversation = (await stack.call('GET', `/v1/conversations/${cid}`)).body;
      return conversation.messageCount === ids.length ? conversation : undefined;
    });
    const conversation = (await stack.call('GET', `/v1/conversations/${cid}`)).body;
    assert.equal(conversation.lastSeq, ids.length, `${cid}: every message got one seq, none twice`);
    assert.equal(new Set(ids).size, ids.length, `${cid}: a repeat was answered as the same message`);
  }

  const temporal = await stack.temporal();
  for (const cid of CONVERSATIONS) {
    const handle = temporal.workflow.getHandle(conversationWorkflowId(stack.tenant(), cid));
    const failedTasks = (await handle.fetchHistory()).events!.filter(
      (e) => e.eventType === proto.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    );
    assert.deepEqual(
      failedTasks.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message),
      [],
      `${cid}: no workflow task failed`,
    );
  }
  assert.equal(statuses.get(500) ?? 0, 0);
  const api = stack.processes().find((p) => p.name === 'api')!;
  assert.deepEqual(
    api.lines.filter((l) => l.includes('unhandled error')),
    [],
  );
});

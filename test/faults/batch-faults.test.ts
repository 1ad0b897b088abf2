/**
 * A 20,000-item batch through the faults `npm start` lives with: `switchyard up` (its own dev server, workers
 * and API, restarted when they die) runs it on a fast synthetic pool while the pool's worker is SIGKILLed with
 * groups running, then the Temporal dev server. A second batch is submitted while the server is down, through a
 * client that retries the API's 503s with the same Idempotency-Key. Both complete with every custom_id exactly
 * once in output and errors, in input order, and the API answered nothing worse than 503 meanwhile.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { batchWorkflowId } from '../../src/batches/contract';
import { postUntilAnswered } from '../../testkit/retrying-client';
import { Stack, TENANTS } from '../../testkit/stack';
import { freePorts, interrupt, killGroup, killInRole, launchUp, upPortsEnv, type Up } from '../../testkit/up';
import { eventually } from '../../testkit/wait';

const ITEMS = 20_000;
/** Items submitted while the dev server is down. */
const OUTAGE_ITEMS = 200;
/** Twenty groups, four at once: every kill lands in groups part-way done. */
const GROUP_SIZE = 1000;
/** Items finished before each kill, and between the two: progress seen, not time passed. */
const PROGRESS_BEFORE_KILL = 3000;
const ENDED = ['completed', 'failed', 'expired', 'cancelled'];

let stack: Stack;
let up: Up | undefined;

before(async () => {
  stack = new Stack({
    pools: { fast: { provider: 'synthetic', concurrency: 16, latencyMs: 0, jitterMs: 2 } },
    env: {
      ...upPortsEnv(await freePorts()),
      SWITCHYARD_BATCH_GROUP_SIZE: String(GROUP_SIZE),
      // A killed worker's groups are retried soon after it stops heartbeating.
      SWITCHYARD_HEARTBEAT_TIMEOUT_MS: '2000',
      SWITCHYARD_SHUTDOWN_GRACE_MS: '1000',
    },
  });
  // `up` on its own dev server, the one this test kills: not the run's shared one.
  const env = { ...stack.env };
  delete env.TEMPORAL_ADDRESS;
  up = await launchUp(env);
  stack.apiUrl = up.banner.apiUrl;
});
after(async () => {
  if (up) {
    if (up.process.exitStatus === undefined) await interrupt(up).catch(() => undefined);
    killGroup(up.process);
  }
  fs.rmSync(stack.env.SWITCHYARD_DATA_DIR!, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TENANTS.acme.key}` };
const customIds = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
const fileOf = (ids: string[]) =>
  ids.map((id) => `${JSON.stringify({ custom_id: id, task: 'sentiment', input: { text: `Item ${id} reads well.` } })}\n`).join('');

/** Submits through the retrying client, as a client is told to while the API answers 503. */
async function submit(ids: string[], key: string): Promise<{ id: string; refused: number }> {
  const res = await postUntilAnswered(`${stack.apiUrl}/v1/batches?pool=fast`, fileOf(ids), {
    ...auth,
    'content-type': 'application/x-ndjson',
    'idempotency-key': key,
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return { id: res.body.id, refused: res.refused };
}

/** Every status the API answered a read with; only 200 and 503 (Temporal away, retry) are acceptable. */
const statuses = new Map<number, number>();

/** The batch, or undefined while the API cannot say (503). */
async function readBatch(id: string): Promise<any> {
  const res = await fetch(`${stack.apiUrl}/v1/batches/${id}`, { headers: auth });
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  const body = await res.text();
  return res.status === 200 ? JSON.parse(body) : undefined;
}

const progressPast = (id: string, completed: number) =>
  eventually(`batch ${id} to have more than ${completed} items completed`, async () => {
    const batch = await readBatch(id);
    return batch && (batch.requestCounts.completed > completed || ENDED.includes(batch.status)) ? batch : undefined;
  });

/** The batch's output or errors file, parsed. */
async function linesOf(id: string, which: 'output' | 'errors'): Promise<any[]> {
  const res = await fetch(`${stack.apiUrl}/v1/batches/${id}/${which}`, { headers: auth });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as unknown);
}

/** Completed, every item succeeded once: each custom_id exactly once across output and errors, the output in input order. */
async function assertEachItemOnce(id: string, ids: string[]): Promise<void> {
  const batch = await eventually(`batch ${id} to end`, async () => {
    const read = await readBatch(id);
    return read && ENDED.includes(read.status) ? read : undefined;
  });
  assert.equal(batch.status, 'completed', JSON.stringify(batch));
  const [output, errors] = await Promise.all([linesOf(id, 'output'), linesOf(id, 'errors')]);
  const times = new Map<string, number>();
  for (const line of [...output, ...errors]) times.set(line.custom_id, (times.get(line.custom_id) ?? 0) + 1);
  assert.deepEqual(
    [...times].filter(([, n]) => n > 1),
    [],
    'no custom_id twice',
  );
  assert.deepEqual(
    ids.filter((c) => !times.has(c)),
    [],
    'no custom_id missing',
  );
  assert.equal(times.size, ids.length, 'no custom_id that was not in the file');
  // The synthetic provider never fails: an item in errors is one the batch lost on the way.
  assert.deepEqual(
    errors.slice(0, 5).map((l) => [l.custom_id, l.error]),
    [],
    `${errors.length} items in errors`,
  );
  assert.deepEqual(batch.requestCounts, { total: ids.length, completed: output.length, failed: errors.length });
  const outOfOrder = output.findIndex((line, i) => line.custom_id !== ids[i]);
  assert.equal(outOfOrder, -1, `output line ${outOfOrder + 1} is ${output[outOfOrder]?.custom_id}, not ${ids[outOfOrder]}`);
  assert.ok(
    output.every((l) => l.result.model === 'synthetic'),
    'every output line is a result',
  );
}

/** Each group's activity, from the batch's history on up's server: the attempts it took, and why the one before its last failed. */
async function groupRuns(batchId: string): Promise<{ attempts: number; lastFailure?: string }[]> {
  const connection = await Connection.connect({ address: up!.banner.temporal });
  try {
    const client = new Client({ connection, namespace: 'default' });
    const events = (await client.workflow.getHandle(batchWorkflowId(stack.tenant(), batchId)).fetchHistory()).events ?? [];
    const groups = new Set(
      events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runBatchGroup').map((e) => String(e.eventId)),
    );
    return events.flatMap((e) => {
      const started = e.activityTaskStartedEventAttributes;
      if (!started || !groups.has(String(started.scheduledEventId))) return [];
      return [{ attempts: started.attempt ?? 1, lastFailure: started.lastFailure?.message ?? undefined }];
    });
  } finally {
    await connection.close();
  }
}

test(
  'a 20,000-item batch through a pool worker SIGKILL and a dev server restart: every item exactly once',
  { timeout: 600_000 },
  async () => {
    const current = up!;
    const startedAt = Date.now();
    const seconds = () => `${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
    const ids = customIds('item', ITEMS);
    const big = await submit(ids, `faults-${stack.prefix}`);
    console.log(`${ITEMS} items accepted as ${big.id} at ${seconds()}`);

    // The pool's worker dies with groups running; `up` starts another, which resumes them.
    const beforeWorkerKill = await progressPast(big.id, PROGRESS_BEFORE_KILL);
    assert.equal(beforeWorkerKill.status, 'in_progress', JSON.stringify(beforeWorkerKill));
    const worker = killInRole(current, 'worker --pool fast');
    assert.ok(worker, 'a fast pool worker under up');
    const workerBackMs = await worker.back;
    console.log(
      `pool worker SIGKILLed at ${beforeWorkerKill.requestCounts.completed} items completed; serves again ${workerBackMs} ms later`,
    );

    // Progress again, then the dev server dies: a second batch is submitted meanwhile, answered 503 until it is back.
    const beforeServerKill = await progressPast(big.id, beforeWorkerKill.requestCounts.completed + PROGRESS_BEFORE_KILL);
    assert.equal(beforeServerKill.status, 'in_progress', `groups still run when the server dies: ${JSON.stringify(beforeServerKill)}`);
    const server = killInRole(current, 'temporal dev server');
    assert.ok(server, 'a dev server under up');
    const outageIds = customIds('outage', OUTAGE_ITEMS);
    const during = submit(outageIds, `outage-${stack.prefix}`);
    const readDuring = await readBatch(big.id);
    const serverBackMs = await server.back;
    const small = await during;
    console.log(
      `dev server SIGKILLed at ${beforeServerKill.requestCounts.completed} items completed; serves again ${serverBackMs} ms later; ` +
        `a read then was ${readDuring ? 'answered' : 'refused'}; the batch submitted meanwhile was accepted after ${small.refused} refusals`,
    );

    await assertEachItemOnce(big.id, ids);
    console.log(`${ITEMS} items completed at ${seconds()}`);
    await assertEachItemOnce(small.id, outageIds);
    const groups = await groupRuns(big.id);
    const retried = groups.flatMap((g, i) => (g.attempts > 1 ? [`group ${i}: attempt ${g.attempts} after "${g.lastFailure}"`] : []));
    console.log(
      `retried groups: ${retried.join('; ')}; reads answered ${[...statuses].map(([status, n]) => `${n} × ${status}`).join(', ')}`,
    );
    assert.equal(groups.length, ITEMS / GROUP_SIZE, 'every group ran to its end');
    assert.ok(retried.length > 0, 'a group held by the killed worker ran again');
    assert.deepEqual(
      [...statuses.keys()].filter((status) => status !== 200 && status !== 503),
      [],
      'reads were answered 200, or 503 while Temporal was away',
    );
  },
);

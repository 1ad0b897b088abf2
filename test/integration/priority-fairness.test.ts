/**
 * Who goes first when a pool is saturated: job priority, then the tenant's fair share (by weight).
 * Order and waits come from Temporal's history timestamps. A backlog is built by pausing the pool's
 * activity task queue (rate limit 0) while jobs are submitted, then letting the pool drain it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { workflowIdFor } from '../../src/jobs/ids';
import { poolTaskQueue, workflowTaskQueue } from '../../src/temporal/task-queues';
import { activityBacklog, waitForCompleted } from '../../testkit/jobs';
import { dispatchTimes, pauseQueue, resumeQueue, type DispatchTimes } from '../../testkit/dispatch';
import { Stack } from '../../testkit/stack';
import { eventually, WAIT_LIMIT_MS } from '../../testkit/wait';

const WEIGHTED_KEY = 'weighted-key-0123456789abcdef';
const WEIGHT = 3;
/** The fairness test's timeout, which also bounds its wait for the backlog to drain. */
const FAIRNESS_TEST_MS = 240_000;
// One pool per test, so each test's jobs are exactly its pool's. One slot: the start order is the dispatch order.
const POOLS = {
  priority: { provider: 'synthetic' as const, concurrency: 1, latencyMs: 20 },
  // A few slots and short calls: a 320-job backlog drains in well under a minute on the dev server.
  fairness: { provider: 'synthetic' as const, concurrency: 4, latencyMs: 50 },
  weights: { provider: 'synthetic' as const, concurrency: 1, latencyMs: 20 },
};

let stack: Stack;
let weighted: string;

before(async () => {
  stack = new Stack({ pools: POOLS });
  // A third tenant with a fairness weight of its own.
  weighted = `weighted-${stack.prefix}`;
  stack.env.SWITCHYARD_API_KEYS += `,${weighted}:${WEIGHTED_KEY}`;
  stack.env.SWITCHYARD_TENANTS = JSON.stringify({ [weighted]: { weight: WEIGHT } });
  await stack.start();
});
after(async () => {
  const temporal = await stack.temporal();
  for (const pool of Object.keys(POOLS)) await resumeQueue(temporal, poolTaskQueue(stack.prefix, pool)).catch(() => undefined);
  await stack?.stop();
});

type Submitter = 'acme' | 'globex' | 'weighted';
interface Submitted {
  id: string;
  workflowId: string;
  tenant: string;
  priority: number;
}

async function submitJob(pool: keyof typeof POOLS, as: Submitter, priority = 3): Promise<Submitted> {
  const body = { type: 'inference', task: 'sentiment', pool, priority, input: { text: `Job from ${as}.` } };
  const res =
    as === 'weighted'
      ? await stack.call('POST', '/v1/jobs', { as: null, body, headers: { authorization: `Bearer ${WEIGHTED_KEY}` } })
      : await stack.call('POST', '/v1/jobs', { as, body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return { id: res.body.id, workflowId: workflowIdFor(res.body.tenant, res.body.id), tenant: res.body.tenant, priority };
}

/** Submits `count` jobs, `concurrency` at a time, in the order `make(i)` gives. */
async function submitMany(count: number, make: (i: number) => Promise<Submitted>, concurrency = 16): Promise<Submitted[]> {
  const out: Submitted[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await make(i);
      }
    }),
  );
  return out;
}

/** Waits until every job of the pool has completed (one visibility count at a time); fails if any ended otherwise. */
async function waitCompleted(pool: keyof typeof POOLS, jobs: readonly Submitted[], timeoutMs = WAIT_LIMIT_MS): Promise<void> {
  await waitForCompleted(
    await stack.temporal(),
    `JobPool = '${pool}' AND TaskQueue = '${workflowTaskQueue(stack.prefix)}'`,
    jobs.length,
    timeoutMs,
  );
}

/** Pauses the pool, runs `submit`, waits until all `expected` activities are queued, then lets the pool drain them. */
async function withBacklog<T>(pool: keyof typeof POOLS, expected: number, submit: () => Promise<T>): Promise<T> {
  const temporal = await stack.temporal();
  const queue = poolTaskQueue(stack.prefix, pool);
  await pauseQueue(temporal, queue);
  try {
    const submitted = await submit();
    await eventually(
      `${expected} activities queued on ${pool}`,
      async () => (await activityBacklog(temporal, queue)) >= expected || undefined,
    );
    return submitted;
  } finally {
    await resumeQueue(temporal, queue);
  }
}

const byStart = (times: DispatchTimes[]) => [...times].sort((a, b) => a.startedMs - b.startedMs);

test('with one worker slot and a mixed backlog, jobs start in priority order', async () => {
  const priorities = [5, 3, 1, 4, 2, 5, 1, 3, 2, 4, 3, 5, 2, 1, 4];
  const jobs = await withBacklog('priority', priorities.length, () =>
    submitMany(priorities.length, (i) => submitJob('priority', 'acme', priorities[i]), 1),
  );
  await waitCompleted('priority', jobs);
  const temporal = await stack.temporal();
  const priorityOf = new Map(jobs.map((j) => [j.workflowId, j.priority]));
  const order = byStart(
    await dispatchTimes(
      temporal,
      jobs.map((j) => j.workflowId),
    ),
  ).map((t) => priorityOf.get(t.workflowId));
  assert.deepEqual(
    order,
    [...priorities].sort((a, b) => a - b),
    `start order by priority: ${order.join(' ')}`,
  );
});

test('a flooding tenant does not starve a light one: 300 jobs of A, then 20 of B', { timeout: FAIRNESS_TEST_MS }, async (t) => {
  const heavy = await withBacklog('fairness', 300, () => submitMany(300, () => submitJob('fairness', 'acme')));
  // B arrives once A's backlog is queued and draining.
  const light = await submitMany(20, () => submitJob('fairness', 'globex'), 4);
  await waitCompleted('fairness', [...heavy, ...light], FAIRNESS_TEST_MS);

  const temporal = await stack.temporal();
  const a = await dispatchTimes(
    temporal,
    heavy.map((j) => j.workflowId),
  );
  const b = await dispatchTimes(
    temporal,
    light.map((j) => j.workflowId),
  );
  const bArrived = Math.min(...b.map((t) => t.acceptedMs));
  const bDone = Math.max(...b.map((t) => t.closedMs));
  const aLastStart = Math.max(...a.map((t) => t.startedMs));
  const aBacklogWhenBArrived = a.filter((t) => t.startedMs > bArrived).length;
  const aStillWaitingWhenBDone = a.filter((t) => t.startedMs > bDone).length;
  const summary =
    `A's backlog when B arrived: ${aBacklogWhenBArrived}; A jobs not yet started when B's last finished: ${aStillWaitingWhenBDone}; ` +
    `B done ${Math.round(bDone - bArrived)} ms after arriving, A's backlog drained ${Math.round(aLastStart - bArrived)} ms after B arrived`;
  t.diagnostic(summary);
  assert.ok(aBacklogWhenBArrived >= 100, `a real backlog to compete with: ${summary}`);
  // First come, first served would start every one of A's queued jobs before B's; a fair share serves
  // B alongside A, so most of A's backlog is still waiting when B is done.
  assert.ok(aStillWaitingWhenBDone >= aBacklogWhenBArrived / 2, summary);
  assert.ok(bDone - bArrived < (aLastStart - bArrived) / 2, summary);
});

test(`a tenant with weight ${WEIGHT} gets about ${WEIGHT}× the share of a tenant with weight 1 while both wait`, async (t) => {
  const perTenant = 40;
  const jobs = await withBacklog('weights', 2 * perTenant, () =>
    submitMany(2 * perTenant, (i) => submitJob('weights', i % 2 ? 'weighted' : 'acme'), 4),
  );
  await waitCompleted('weights', jobs);
  const temporal = await stack.temporal();
  const tenantOf = new Map(jobs.map((j) => [j.workflowId, j.tenant]));
  // While both have backlog: the first perTenant starts (the weighted tenant cannot run out before them).
  const first = byStart(
    await dispatchTimes(
      temporal,
      jobs.map((j) => j.workflowId),
    ),
  ).slice(0, perTenant);
  const share = first.filter((t) => tenantOf.get(t.workflowId) === weighted).length;
  const summary = `of the first ${perTenant} started, ${share} were the weight-${WEIGHT} tenant's (ratio ${(share / (perTenant - share)).toFixed(2)})`;
  t.diagnostic(summary);
  const fairShare = (perTenant * WEIGHT) / (WEIGHT + 1);
  assert.ok(Math.abs(share - fairShare) <= 4, summary);
});

/**
 * Faults on the local multi-service cluster, run by `npm run test:cluster` (never by `npm test`): the history
 * service killed with SIGKILL mid-run and started again, and PostgreSQL restarted mid-run, each while a few
 * hundred jobs go through the API. Submits during the outage may be refused with 503 and Retry-After; the
 * client waits as told and retries with the same Idempotency-Key, as users do. Every accepted job must
 * complete, once: one job per key, one completed execution per job, one provider call per job. The jobs are
 * chat calls to the fake OpenAI server, each tagged, so its request log shows every run of a job's activity.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config';
import { clusterStatus } from '../../src/local/cluster/cluster';
import { startClusterPostgres, startStoppedServices, stopClusterPostgres, stopService } from '../../src/local/cluster/restart';
import { workflowIdFor } from '../../src/jobs/ids';
import { workflowTaskQueue } from '../../src/temporal/task-queues';
import { delayMarker, startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { completedJobs, jobsQuery, waitForCompleted } from '../../testkit/jobs';
import { Stack } from '../../testkit/stack';
import { eventually, sleep, WAIT_LIMIT_MS } from '../../testkit/wait';

const JOBS = 300;
/** Submits per second: the run lasts long enough that the outage falls in the middle of it. */
const SUBMIT_RATE = 30;
const SLOTS = 32;
const CALL_MS = 100;
const POOL = 'remote';
/**
 * A call that finished while history or PostgreSQL was away is reported by its worker again and again for about
 * 10 s; an attempt whose heartbeat timeout passes first is run again by Temporal (activities run at least once).
 * So the one-call-per-job check holds for outages up to then, with a heartbeat timeout above 10 s (the default is
 * 10 s; the test stack's is 5 s, for crash tests).
 */
const HEARTBEAT_TIMEOUT_MS = 20_000;

const { dir } = loadConfig().cluster;
let openai: FakeOpenAI;

before(async () => {
  const found = await clusterStatus(dir);
  if (found?.state.address !== process.env.TEMPORAL_ADDRESS)
    throw new Error('these tests stop parts of the local cluster: run them with `npm run test:cluster -- test/cluster/faults.test.ts`');
  openai = await startFakeOpenAI();
});
after(() => openai?.close());

interface Load {
  /** Job id by idempotency key, once accepted. */
  accepted: Map<string, string>;
  /** Submits answered 503 with Retry-After, then retried. */
  refused: number;
  /** Resolves once every job is accepted. */
  done: Promise<void>;
}

/** Submits JOBS tagged chat jobs at SUBMIT_RATE, each retried with its Idempotency-Key after a 503 until accepted. */
function submitJobs(stack: Stack, run: string): Load {
  const load: Load = { accepted: new Map(), refused: 0, done: Promise.resolve() };
  const submit = async (key: string) => {
    const body = {
      type: 'inference',
      task: 'chat',
      pool: POOL,
      input: { messages: [{ role: 'user', content: `${key} ${delayMarker(CALL_MS)}` }] },
    };
    for (;;) {
      const res = await stack.call('POST', '/v1/jobs', { body, headers: { 'idempotency-key': key } });
      if (res.status === 202 || res.status === 200) return void load.accepted.set(key, res.body.id as string);
      assert.equal(res.status, 503, `POST /v1/jobs (key ${key}) answered ${res.status}: ${JSON.stringify(res.body)}`);
      const retryAfterS = Number(res.headers.get('retry-after'));
      assert.ok(retryAfterS > 0, '503 comes with Retry-After');
      load.refused++;
      await sleep(retryAfterS * 1000); // what the server asked for
    }
  };
  load.done = (async () => {
    const t0 = Date.now();
    const submits: Promise<void>[] = [];
    for (let i = 0; i < JOBS; i++) {
      await sleep(t0 + (i * 1000) / SUBMIT_RATE - Date.now());
      submits.push(submit(`${run}-job-${i}`));
    }
    await Promise.all(submits);
  })();
  return load;
}

/**
 * Runs the load on a fresh stack, calls `fail` once a third of the jobs are accepted, waits until a submit is
 * refused for it, calls `recover`, and checks that every accepted job completed once.
 */
async function survives(fault: { fail(): Promise<void>; recover(): Promise<void> }): Promise<void> {
  const stack = await new Stack({
    pools: { [POOL]: { provider: 'openai', concurrency: SLOTS, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 } },
    env: { SWITCHYARD_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS) },
  }).start();
  try {
    const run = `fault-${randomBytes(4).toString('hex')}`;
    const load = submitJobs(stack, run);
    // Fails the waits below if the load ends first: then the fault hit no submit, and the test proves nothing.
    const failed = load.done.then(() => assert.fail('every job was accepted before a submit was refused for the fault'));
    failed.catch(() => undefined); // once the waits are over, the load ending is what should happen
    await Promise.race([eventually('a third of the jobs accepted', () => load.accepted.size >= JOBS / 3 || undefined), failed]);
    const t0 = Date.now();
    await fault.fail();
    const inFlight = load.accepted.size - openai.requests.filter((r) => r.status === 200 && JSON.stringify(r.body).includes(run)).length;
    await Promise.race([eventually('a submit refused with 503 during the outage', () => load.refused > 0 || undefined), failed]);
    await fault.recover();
    const outageMs = Date.now() - t0;
    await load.done;

    const client = await stack.temporal();
    const query = jobsQuery(workflowTaskQueue(stack.prefix));
    await waitForCompleted(client, query, JOBS, WAIT_LIMIT_MS);
    const completed = await completedJobs(client, query);
    const tenant = stack.tenant();
    const jobIds = [...load.accepted.values()];
    assert.equal(new Set(jobIds).size, JOBS, 'one job per idempotency key');
    assert.deepEqual([...completed.keys()].sort(), jobIds.map((id) => workflowIdFor(tenant, id)).sort(), 'one completed execution per job');

    const calls = new Map<string, number>();
    for (const r of openai.requests) {
      const key = /fault-[0-9a-f]{8}-job-\d+/.exec(JSON.stringify(r.body))?.[0];
      if (key?.startsWith(run)) calls.set(key, (calls.get(key) ?? 0) + 1);
    }
    const twice = [...load.accepted.keys()].filter((key) => calls.get(key) !== 1);
    console.log(
      `outage ${outageMs} ms with ${inFlight} accepted jobs not yet answered by the provider; ${load.refused} submits refused with 503 and retried; ` +
        `${completed.size} of ${JOBS} jobs completed`,
    );
    assert.deepEqual(
      twice.map((key) => `${key}: ${calls.get(key) ?? 0} calls`),
      [],
      'each job called the provider once',
    );
  } finally {
    await stack.stop();
  }
}

test('the history service killed with SIGKILL mid-run and started again: every accepted job completes, once', async () => {
  await survives({
    fail: () => stopService(dir, 'history', 'SIGKILL'),
    recover: async () => void (await startStoppedServices(dir)),
  });
});

test('PostgreSQL restarted mid-run: every accepted job completes, once', async () => {
  await survives({
    fail: () => stopClusterPostgres(dir),
    recover: () => startClusterPostgres(dir, () => undefined),
  });
});

/**
 * /v1/pools end to end: real worker and API processes. An operator reads each pool's settings, backlog,
 * workers, rate limit, limiter (tokens, breaker) and pause state from Temporal; pausing a pool keeps its
 * jobs queued and resuming lets them run; only operator keys may do this, and only tenant keys own jobs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pickFreePort } from '../../src/local/dev-server';
import { sentimentJob, spawnSwitchyard, Stack, type ProcessHandle } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const OPERATOR_KEY = 'operator-key-0123456789abcdef';
const SECRET = 'sk-never-shown-0123456789';
const POOLS = {
  local: { provider: 'local' as const, concurrency: 2 },
  // A fleet rate limit and a token budget: the pool asks its limiter before each call.
  metered: {
    provider: 'synthetic' as const,
    concurrency: 2,
    latencyMs: 10,
    rateLimit: { requestsPerSecond: 20, tokensPerMinute: 100_000 },
  },
  // No worker polls it; its breaker (on for openai pools) has a limiter nothing has asked yet.
  remote: { provider: 'openai' as const, baseUrl: 'http://127.0.0.1:9/v1', model: 'fake-model', apiKey: SECRET },
  // No worker polls it and no limit holds it: its backlog is work that wants workers.
  idle: { provider: 'local' as const, concurrency: 2, scaling: { minWorkers: 0, maxWorkers: 3, targetBacklogPerWorker: 2 } },
};

let stack: Stack;

before(async () => {
  stack = new Stack({ pools: POOLS, env: { SWITCHYARD_OPERATOR_KEYS: OPERATOR_KEY } });
  await Promise.all([
    stack.worker(['--workflows']),
    stack.worker(['--pool', 'local']),
    stack.worker(['--pool', 'metered']),
    stack.startApi(),
  ]);
});
after(() => stack?.stop());

const asOperator = (method: string, path: string, body?: unknown) =>
  stack.call(method, path, { as: null, headers: { authorization: `Bearer ${OPERATOR_KEY}` }, body });
const pool = async (name: string) => {
  const { status, body } = await asOperator('GET', `/v1/pools/${name}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
};

describe('reading pools', () => {
  test('lists every pool with its settings, workers polling, rate limit and limiter; never an API key', async () => {
    const { status, body } = await asOperator('GET', '/v1/pools');
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(
      body.items.map((p: any) => p.name),
      Object.keys(POOLS),
    );
    assert.doesNotMatch(JSON.stringify(body), new RegExp(SECRET));

    const local = body.items[0];
    assert.equal(local.taskQueue, `${stack.prefix}-pool-local`);
    assert.deepEqual(local.settings.rateLimit, { requestsPerSecond: null, tokensPerMinute: null });
    assert.equal(local.settings.concurrency, 2);
    assert.deepEqual(local.settings.batch, { maxSize: 1, maxWaitMs: 10 });
    assert.equal(local.settings.limiter, 'local');
    assert.equal(local.limiter.state, 'not-needed');
    assert.equal(local.breaker.enabled, false);
    assert.equal(local.paused, false);
    assert.deepEqual(local.links, { self: '/v1/pools/local', pause: '/v1/pools/local/pause', resume: '/v1/pools/local/resume' });
    assert.equal(typeof local.queue.backlog, 'number');

    const remote = body.items[2];
    assert.equal(remote.limiter.state, 'never-used');
    assert.deepEqual(remote.breaker, { enabled: true, state: 'closed', openUntil: null, recentFailures: 0, opened: 0 });
    assert.equal(remote.rateLimit.tokens, null);
    assert.deepEqual(remote.workers, []);
  });

  test('shows the workers polling a pool, and the rate limit the server enforces for it', async () => {
    const local = await eventually('a worker polling pool local', async () => {
      const p = await pool('local');
      return p.workers.length > 0 ? p : undefined;
    });
    assert.match(local.workers[0].identity, /@/);
    assert.ok(Date.now() - Date.parse(local.workers[0].lastAccessAt) < 120_000, local.workers[0].lastAccessAt);

    const metered = await eventually('the worker rate limit of pool metered', async () => {
      const p = await pool('metered');
      return p.rateLimit.source === 'worker' ? p : undefined;
    });
    assert.equal(metered.rateLimit.requestsPerSecond, 20);
    assert.equal(metered.rateLimit.effectiveRequestsPerSecond, 20);
  });

  test("a pool's limiter: configured limits before its first call, tokens in the window after", async () => {
    const before = await pool('metered');
    if (before.limiter.state === 'never-used') {
      assert.deepEqual(before.rateLimit.tokens, { perMinute: 100_000, reservedInWindow: 0, available: 100_000 });
    }
    const { body } = await stack.call('POST', '/v1/jobs', { body: { ...sentimentJob(), pool: 'metered' } });
    assert.equal((await stack.waitForJob(body.id, ['succeeded', 'failed'])).status, 'succeeded');
    const after = await pool('metered');
    assert.equal(after.limiter.state, 'active');
    assert.equal(after.rateLimit.tokens.perMinute, 100_000);
    assert.ok(after.rateLimit.tokens.reservedInWindow > 0, JSON.stringify(after.rateLimit.tokens));
    assert.equal(after.rateLimit.tokens.available, 100_000 - after.rateLimit.tokens.reservedInWindow);
    assert.equal(after.breaker.enabled, false);
  });

  test('scaling: an idle pool wants its minimum; a backlog no limit holds back wants workers for it', async () => {
    const quiet = await pool('idle');
    assert.deepEqual(quiet.settings.scaling, {
      minWorkers: 0,
      maxWorkers: 3,
      targetBacklogPerWorker: 2,
      scaleDownAfterMs: 60_000,
      maxBacklogAgeMs: 30_000,
      lookaheadMs: 5000,
    });
    assert.deepEqual(
      [quiet.scaling.desiredWorkers, quiet.scaling.workersPolling, quiet.scaling.signal.heldBack],
      [0, 0, null],
      quiet.scaling.reason,
    );
    assert.equal(quiet.scaling.signal.slotsPerWorker, 2);

    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await stack.call('POST', '/v1/jobs', { body: { ...sentimentJob(`Waiting job ${i}.`), pool: 'idle' } })).body.id);
    try {
      const backlogged = await eventually('a backlog of 5 on pool idle', async () => {
        const p = await pool('idle');
        return p.queue.backlog >= 5 ? p : undefined;
      });
      // 5 waiting calls at 2 per worker: 3 workers, the pool's maximum.
      assert.equal(backlogged.scaling.signal.heldBack, null);
      assert.equal(backlogged.scaling.desiredWorkers, 3, backlogged.scaling.reason);
      assert.match(backlogged.scaling.reason, /backlog 5/);
    } finally {
      for (const id of ids) await stack.call('POST', `/v1/jobs/${id}/cancel`);
    }
  });

  test('an unknown pool is 404', async () => {
    assert.equal((await asOperator('GET', '/v1/pools/gpu')).body.code, 'not-found');
    assert.equal((await asOperator('POST', '/v1/pools/gpu/pause')).status, 404);
  });
});

describe('pause and resume', () => {
  test('a paused pool keeps its jobs queued, with a backlog; resuming runs them; both are idempotent', async () => {
    const paused = await asOperator('POST', '/v1/pools/local/pause', { reason: 'provider maintenance' });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.paused, true);
    assert.equal(paused.body.pause.reason, 'provider maintenance');
    assert.ok(Date.parse(paused.body.pause.since) <= Date.now());
    assert.deepEqual([paused.body.rateLimit.effectiveRequestsPerSecond, paused.body.rateLimit.source], [0, 'api']);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await stack.call('POST', '/v1/jobs', { body: sentimentJob(`Paused job ${i}.`) })).body.id);
      const backlogged = await eventually('a backlog of 3 on the paused pool', async () => {
        const p = await pool('local');
        return p.queue.backlog >= 3 ? p : undefined;
      });
      assert.ok(backlogged.queue.backlogAgeMs >= 0);
      assert.ok(backlogged.workers.length > 0, 'workers poll the paused pool; the server dispatches nothing to them');
      // Unpaused, a backlog of 3 at 2 per worker would want 2 workers; paused, it wants none beyond the minimum.
      assert.equal(backlogged.scaling.signal.heldBack, 'paused');
      assert.deepEqual([backlogged.scaling.desiredWorkers, backlogged.scaling.workersPolling], [1, 1], backlogged.scaling.reason);

      // Pausing again changes nothing: the same reason and time.
      const again = await asOperator('POST', '/v1/pools/local/pause', { reason: 'another reason' });
      assert.deepEqual(again.body.pause, paused.body.pause);

      for (const id of ids) {
        const job = (await stack.call('GET', `/v1/jobs/${id}`)).body;
        assert.deepEqual([job.status, job.attempts], ['queued', 0], JSON.stringify(job));
      }
      const resumedAt = Date.now();
      const resumed = await asOperator('POST', '/v1/pools/local/resume');
      assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
      assert.deepEqual([resumed.body.paused, resumed.body.pause], [false, null]);
      assert.notEqual(resumed.body.rateLimit.source, 'api');
      for (const id of ids) {
        const job = await stack.waitForJob(id, ['succeeded', 'failed']);
        assert.equal(job.status, 'succeeded');
        // Held for the whole pause: its inference started (by the server's clock) only once the pool was resumed.
        assert.ok(Date.parse(job.startedAt) >= resumedAt, `started at ${job.startedAt}, resumed at ${new Date(resumedAt).toISOString()}`);
      }
      const resumedAgain = await asOperator('POST', '/v1/pools/local/resume');
      assert.equal(resumedAgain.body.paused, false);
    } finally {
      await asOperator('POST', '/v1/pools/local/resume');
    }
  });

  test('a job that timed out in a paused pool runs when retried after resume: the retry has a fresh deadline', async () => {
    await asOperator('POST', '/v1/pools/local/pause');
    try {
      const { body } = await stack.call('POST', '/v1/jobs', { body: { ...sentimentJob(), timeouts: { deadlineMs: 2000 } } });
      const timedOut = await stack.waitForJob(body.id, ['timed_out', 'failed', 'succeeded']);
      assert.equal(timedOut.status, 'timed_out');
      assert.equal(timedOut.lastFailure.type, 'JobDeadlineExceeded');
      const listed = await eventually('the job under status=timed_out', async () => {
        const items = (await stack.call('GET', '/v1/jobs?status=timed_out&errorType=JobDeadlineExceeded')).body.items;
        return items.find((j: any) => j.id === body.id);
      });
      assert.equal(listed.status, 'timed_out');

      await asOperator('POST', '/v1/pools/local/resume');
      const retried = await stack.call('POST', `/v1/jobs/${body.id}/retry`);
      assert.equal(retried.status, 202, JSON.stringify(retried.body));
      const done = await stack.waitForJob(body.id, ['succeeded', 'failed', 'timed_out']);
      assert.equal(done.status, 'succeeded', JSON.stringify(done.lastFailure));
      assert.equal(done.run.retryOf, timedOut.run.id);
    } finally {
      await asOperator('POST', '/v1/pools/local/resume');
    }
  });
});

describe('roles', () => {
  const poolCalls: [string, string][] = [
    ['GET', '/v1/pools'],
    ['GET', '/v1/pools/local'],
    ['POST', '/v1/pools/local/pause'],
    ['POST', '/v1/pools/local/resume'],
  ];
  for (const [method, path] of poolCalls) {
    test(`${method} ${path}: a tenant key is 403 forbidden, no key 401`, async () => {
      const tenant = await stack.call(method, path);
      assert.equal(tenant.status, 403, JSON.stringify(tenant.body));
      assert.equal(tenant.body.code, 'forbidden');
      assert.equal((await stack.call(method, path, { as: null })).status, 401);
    });
  }

  const jobCalls: [string, string][] = [
    ['GET', '/v1/jobs'],
    ['POST', '/v1/jobs'],
    ['GET', '/v1/jobs/job-01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['POST', '/v1/jobs/job-01ARZ3NDEKTSV4RRFFQ69G5FAV/retry'],
    ['POST', '/v1/jobs/retry'],
    ['GET', '/v1/jobs/job-01ARZ3NDEKTSV4RRFFQ69G5FAV/runs'],
    ['GET', '/v1/failures'],
  ];
  for (const [method, path] of jobCalls) {
    test(`${method} ${path}: an operator key is 403 forbidden (tenants own jobs)`, async () => {
      const answer = await asOperator(method, path, method === 'POST' ? sentimentJob() : undefined);
      assert.equal(answer.status, 403, JSON.stringify(answer.body));
      assert.equal(answer.body.code, 'forbidden');
    });
  }

  test('the pause stays in place when a tenant tries to resume', async () => {
    await asOperator('POST', '/v1/pools/local/pause');
    try {
      assert.equal((await stack.call('POST', '/v1/pools/local/resume')).status, 403);
      assert.equal((await pool('local')).paused, true);
    } finally {
      await asOperator('POST', '/v1/pools/local/resume');
    }
  });

  describe('with no keys configured (loopback)', () => {
    let open: ProcessHandle;
    let url: string;
    before(async () => {
      const port = await pickFreePort();
      open = await stack.spawn(['api'], { API_PORT: String(port), SWITCHYARD_API_KEYS: '', SWITCHYARD_OPERATOR_KEYS: '' });
      url = `http://127.0.0.1:${port}`;
    });
    after(async () => {
      await open?.stop();
    });

    test('every caller is tenant default and an operator', async () => {
      const pools = await fetch(`${url}/v1/pools`);
      assert.equal(pools.status, 200);
      assert.equal(((await pools.json()) as any).items.length, Object.keys(POOLS).length);
      const jobs = await fetch(`${url}/v1/jobs?limit=1`);
      assert.equal(jobs.status, 200);
      const failures = (await (await fetch(`${url}/v1/failures`)).json()) as any;
      assert.equal(failures.tenant, 'default');
    });
  });
});

describe('the switchyard command line', () => {
  /** Runs `switchyard <args>` against this stack's API as the operator; resolves with its exit code and stdout. */
  const cli = async (args: string[]) => {
    const run = spawnSwitchyard(args, { ...stack.env, SWITCHYARD_API_URL: stack.apiUrl, SWITCHYARD_API_KEY: OPERATOR_KEY });
    const code = await run.exited;
    return { code, out: run.lines.join('\n') };
  };

  test('pools, pause and resume print the pool resource', async () => {
    const listed = await cli(['pools']);
    assert.equal(listed.code, '0', listed.out);
    assert.deepEqual(
      JSON.parse(listed.out).items.map((p: any) => p.name),
      Object.keys(POOLS),
    );

    const paused = await cli(['pause', 'local', '--reason', 'provider maintenance']);
    assert.equal(paused.code, '0', paused.out);
    assert.equal(JSON.parse(paused.out).paused, true);
    assert.equal((await pool('local')).paused, true);

    const resumed = await cli(['resume', 'local']);
    assert.equal(resumed.code, '0', resumed.out);
    assert.equal((await pool('local')).paused, false);
  });

  test('an unknown pool exits non-zero with the API problem', async () => {
    const answer = await cli(['pools', 'nope']);
    assert.notEqual(answer.code, '0');
    assert.match(answer.out, /404 not-found/);
  });
});

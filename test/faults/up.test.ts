/**
 * `switchyard up` (what `npm start` runs) as a real process: it starts its own Temporal dev server on a
 * SQLite file in a temp data dir, the workers and the API, all on free ports of their own (not the run's
 * shared dev server); prints its banner; stops everything on Ctrl-C; resumes in-flight jobs on the next
 * start; restarts a killed worker, and a killed dev server under load without losing or doubling a job;
 * and, with TEMPORAL_ADDRESS set, starts no server of its own.
 *
 * Each `up` leads a process group of its own, so whatever happens in a test, `after` can end it and
 * every process it started.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PoolSettings } from '../../src/config';
import { READY_LINES } from '../../src/local/processes';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { postUntilAnswered } from '../../testkit/retrying-client';
import { sentimentJob, Stack, TENANTS, type ProcessHandle } from '../../testkit/stack';
import {
  childInRole,
  childrenOf,
  descendantsOf,
  freePorts,
  interrupt,
  isAlive,
  killGroup,
  launchUp,
  roleOf,
  upPortsEnv,
  type Ports,
  type Up,
} from '../../testkit/up';
import { eventually } from '../../testkit/wait';

const RETRY = { maxAttempts: 10, initialIntervalMs: 200, maxIntervalMs: 1000 };

let openai: FakeOpenAI;
const stacks: Stack[] = [];
const ups: ProcessHandle[] = [];

before(async () => {
  assert.ok(process.env.TEMPORAL_CLI_PATH, 'TEMPORAL_CLI_PATH is not set: run the tests with `npm test`');
  openai = await startFakeOpenAI();
});
after(async () => {
  // Normally every `up` has exited by now; after a failure, end it and all it started.
  for (const up of ups) killGroup(up);
  for (const stack of stacks) fs.rmSync(stack.env.SWITCHYARD_DATA_DIR!, { recursive: true, force: true });
  await openai?.close();
});

// ---- environment ----------------------------------------------------------------------------------

const pools = (): Record<string, PoolSettings> => ({
  local: { provider: 'local', concurrency: 4 },
  remote: { provider: 'openai', concurrency: 4, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 },
});

/**
 * A Stack for its env (temp data dir, API keys, unique task-queue prefix) and its HTTP helpers; `up`
 * itself replaces its processes. `own`: `up` must start its own dev server, so the shared server's
 * TEMPORAL_ADDRESS is left out of the env.
 */
async function upStack(own: boolean): Promise<{ stack: Stack; env: NodeJS.ProcessEnv; ports: Ports }> {
  const ports = await freePorts();
  const stack = new Stack({
    pools: pools(),
    env: {
      ...upPortsEnv(ports),
      SWITCHYARD_SHUTDOWN_GRACE_MS: '1000',
      SWITCHYARD_HEARTBEAT_TIMEOUT_MS: '2000',
    },
  });
  stacks.push(stack);
  const env = { ...stack.env };
  if (own) delete env.TEMPORAL_ADDRESS;
  return { stack, env, ports };
}

// ---- the `up` process -----------------------------------------------------------------------------

/** Starts `up` (see testkit/up.ts) and points `stack` at its API. */
async function startUp(stack: Stack, env: NodeJS.ProcessEnv): Promise<Up> {
  const up = await launchUp(env);
  ups.push(up.process);
  stack.apiUrl = up.banner.apiUrl;
  return up;
}

/** For `finally`: stops `up` if a test left it running, and ends its process group in any case. */
async function ensureStopped(up: Up | undefined): Promise<void> {
  if (!up) return;
  if (up.process.exitStatus === undefined) await interrupt(up).catch(() => undefined);
  killGroup(up.process);
}

/** For assertion messages: how `up` ended (if it has) and its last lines. */
const tail = (up: Up) =>
  `up ${up.process.exitStatus === undefined ? 'is running' : `exited with ${up.process.exitStatus}`}; its last lines:\n${up.process.lines.slice(-30).join('\n')}`;

// ---- processes and ports --------------------------------------------------------------------------

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ctrl-C, then: `up` exited 0 saying "stopped", no process it started is left, its ports are free. Resolves with how long it took. */
async function stopAndAssertClean(up: Up, ports: Ports, opts: { again?: boolean } = {}): Promise<number> {
  const all = descendantsOf(up.pid);
  const managed = all.filter((c) => roleOf(c) !== undefined);
  const from = up.process.lines.length;
  const { exit, ms } = await interrupt(up, opts);
  const printed = up.process.lines.slice(from);
  assert.equal(exit, '0', tail(up));
  assert.ok(
    printed.some((l) => /^SIGINT: stopping/.test(l)),
    tail(up),
  );
  assert.equal(printed.at(-1), 'stopped', tail(up));
  assert.ok(!printed.some((l) => /restarting/.test(l)), `no process was restarted while stopping:\n${printed.join('\n')}`);

  // `up` waits for the processes it manages; helpers they started (esbuild) follow their parent.
  assert.deepEqual(
    managed.filter((c) => isAlive(c.pid)),
    [],
    'workers, API and dev server have exited with up',
  );
  await eventually('every process started under up to be gone', () => (all.some((c) => isAlive(c.pid)) ? undefined : true));
  for (const [what, port] of Object.entries(ports)) assert.ok(await portIsFree(port), `${what} port ${port} is free again`);
  return ms;
}

// ---- jobs -----------------------------------------------------------------------------------------

async function submit(stack: Stack, body: Record<string, unknown>): Promise<string> {
  const res = await stack.call('POST', '/v1/jobs', { body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id;
}

async function assertSucceeds(stack: Stack, id: string): Promise<any> {
  const job = await stack.waitForJob(id, ['succeeded', 'failed', 'cancelled', 'timed_out']);
  assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.lastFailure)}`);
  return job;
}

/** A chat job on the `remote` pool whose message is a unique tag, to find its requests at the fake server. */
async function submitRemoteChat(stack: Stack): Promise<{ id: string; tag: string }> {
  const tag = `up-test-${randomUUID()}`;
  const id = await submit(stack, {
    type: 'inference',
    task: 'chat',
    pool: 'remote',
    input: { messages: [{ role: 'user', content: tag }] },
    retry: RETRY,
  });
  return { id, tag };
}

/** A remote chat job whose first call hangs at the provider, once that call is in flight. */
async function hangingRemoteChat(stack: Stack): Promise<{ id: string; tag: string }> {
  openai.script([{ hang: true }]);
  const job = await submitRemoteChat(stack);
  await stack.waitForJob(job.id, ['running']);
  await eventually('the inference request to reach the provider', () => openai.requestsMentioning(job.tag)[0]);
  return job;
}

function assertEchoes(job: any, tag: string): void {
  assert.equal(job.result.output.message.content, `echo: ${tag}`);
}

// ---- tests ----------------------------------------------------------------------------------------

describe('up on its own dev server', () => {
  let stack: Stack;
  let ports: Ports;
  let up: Up | undefined;

  before(async () => {
    const s = await upStack(true);
    ({ stack, ports } = s);
    up = await startUp(stack, s.env);
    console.log(`up → banner in ${up.readyMs} ms (${/ready in [\d.]+ s/.exec(up.banner.text)?.[0]})`);
  });
  after(() => ensureStopped(up));

  test(
    'prints its banner; the UI answers, /readyz is 200, the banner curl example runs a job, SQLite is in the data dir',
    { timeout: 120_000 },
    async () => {
      const { banner } = up!;
      const dbFile = path.join(stack.env.SWITCHYARD_DATA_DIR!, 'temporal.sqlite');
      assert.equal(banner.apiUrl, `http://127.0.0.1:${ports.api}`);
      assert.equal(banner.temporal, `127.0.0.1:${ports.grpc}`);
      assert.equal(banner.uiUrl, `http://127.0.0.1:${ports.ui}`);
      assert.ok(banner.text.includes(`data: ${dbFile}`), banner.text);
      assert.match(banner.text, /^ {2}Pools +local, remote$/m);
      assert.equal(banner.curl.url, `${banner.apiUrl}/v1/jobs`);
      assert.match(banner.text, new RegExp(`curl -s ${banner.apiUrl}/v1/jobs/<id>`));

      const ui = await eventually('the Web UI to answer', () =>
        fetch(banner.uiUrl).then(
          (r) => r,
          () => undefined,
        ),
      );
      assert.equal(ui.status, 200);
      assert.match(ui.headers.get('content-type') ?? '', /text\/html/);
      await ui.text();
      assert.equal((await stack.call('GET', '/readyz', { as: null })).status, 200);

      // Exactly what the banner tells a user to paste.
      assert.deepEqual(JSON.parse(banner.curl.body), {
        type: 'inference',
        task: 'sentiment',
        input: { text: 'Switchyard makes queues boring. I love it.' },
      });
      const res = await fetch(banner.curl.url, { method: 'POST', headers: banner.curl.headers, body: banner.curl.body });
      const accepted = (await res.json()) as { id: string; tenant: string };
      assert.equal(res.status, 202, JSON.stringify(accepted));
      assert.equal(accepted.tenant, stack.tenant('acme'), 'the banner curl carries the first API key');
      const job = await assertSucceeds(stack, accepted.id);
      assert.equal(job.attempts, 1);
      assert.equal(typeof job.result.output.score, 'number');
      assert.ok(job.links.temporalUi.startsWith(`${banner.uiUrl}/namespaces/default/workflows/`), job.links.temporalUi);

      assert.ok(fs.statSync(dbFile).size > 0, `${dbFile} exists`);
    },
  );

  test('Ctrl-C (SIGINT to up) stops every process it started and frees every port', { timeout: 120_000 }, async () => {
    const children = childrenOf(up!.pid);
    assert.deepEqual(
      children.map(roleOf).filter(Boolean).sort(),
      ['api', 'temporal dev server', 'worker --pool local', 'worker --pool remote', 'worker --workflows'],
      children.map((c) => c.cmd).join('\n'),
    );
    const ms = await stopAndAssertClean(up!, ports);
    console.log(`up stopped ${ms} ms after SIGINT`);
  });
});

test('a second Ctrl-C while up is stopping does not abandon what it started', { timeout: 120_000 }, async () => {
  const { stack, env, ports } = await upStack(true);
  let up: Up | undefined;
  try {
    up = await startUp(stack, env);
    await hangingRemoteChat(stack); // the remote worker drains for the whole grace period
    await stopAndAssertClean(up, ports, { again: true });
  } finally {
    await ensureStopped(up);
  }
});

test('jobs in flight survive a restart of up; finished jobs stay readable', { timeout: 240_000 }, async () => {
  const { stack, env, ports } = await upStack(true);
  let up: Up | undefined;
  try {
    up = await startUp(stack, env);
    const first = up.banner;
    const done = await assertSucceeds(stack, await submit(stack, sentimentJob('Finished before the restart, and happy about it.')));
    const { id, tag } = await hangingRemoteChat(stack);
    await stopAndAssertClean(up, ports);

    const restartedAt = Date.now();
    up = await startUp(stack, env);
    assert.equal(up.banner.text.replace(/ready in .*\n/, ''), first.text.replace(/ready in .*\n/, ''), 'the same ports and data file');
    const job = await assertSucceeds(stack, id);
    const doneMs = Date.now() - restartedAt;
    console.log(
      `restart → ready in ${up.readyMs} ms, → in-flight job succeeded in ${doneMs} ms (attempts ${job.attempts}, last failure ${JSON.stringify(job.lastFailure)})`,
    );
    assert.ok(job.attempts >= 2, `attempts: ${job.attempts}`);
    assertEchoes(job, tag);
    assert.ok(openai.requestsMentioning(tag).length >= 2, 'the call was sent again after the restart');

    const again = (await stack.call('GET', `/v1/jobs/${done.id}`)).body;
    assert.equal(again.status, 'succeeded');
    assert.deepEqual(again.result, done.result);
    assert.equal(again.finishedAt, done.finishedAt);
  } finally {
    await ensureStopped(up);
  }
});

test('a worker killed with SIGKILL is restarted by up, and jobs (the one it held too) succeed', { timeout: 180_000 }, async () => {
  const { stack, env, ports } = await upStack(true);
  let up: Up | undefined;
  try {
    up = await startUp(stack, env);
    const current = up;

    /** SIGKILLs the pool's worker and waits until `up` has started and readied another. */
    const killPoolWorker = async (pool: string): Promise<void> => {
      const pattern = `bin/switchyard worker --pool ${pool}$`;
      const [victim, ...others] = childrenOf(current.pid, pattern);
      assert.ok(victim && others.length === 0, `one ${pool} worker under up: ${JSON.stringify([victim, ...others])}`);
      const readyLines = () => current.process.lines.filter((l) => l.startsWith(`[pool:${pool}] `) && READY_LINES.worker.test(l));
      const readyBefore = readyLines().length;
      process.kill(victim.pid, 'SIGKILL');
      await current.process.waitForLine(new RegExp(`^\\[pool:${pool}\\] exited \\(SIGKILL\\); restarting`));
      await eventually(`a new ${pool} worker to be ready`, () => (readyLines().length > readyBefore ? true : undefined));
      const [replacement] = childrenOf(current.pid, pattern);
      assert.ok(replacement && replacement.pid !== victim.pid, `a new ${pool} worker process`);
    };

    await killPoolWorker('local');
    const local = await assertSucceeds(stack, await submit(stack, sentimentJob('After the crash, all is well.')));
    assert.equal(local.attempts, 1);

    // The remote worker dies holding a call: its heartbeat stops, and the restarted worker runs attempt 2.
    const { id, tag } = await hangingRemoteChat(stack);
    const killedAt = Date.now();
    await killPoolWorker('remote');
    const job = await assertSucceeds(stack, id);
    console.log(`job held by the killed worker succeeded ${Date.now() - killedAt} ms after SIGKILL`);
    assert.equal(job.attempts, 2, `last failure: ${JSON.stringify(job.lastFailure)}`);
    assertEchoes(job, tag);
    await stopAndAssertClean(up, ports);
  } finally {
    await ensureStopped(up);
  }
});

test(
  'the dev server killed with SIGKILL under load is restarted by up on its port and data: every accepted job completes, once',
  { timeout: 420_000 },
  async () => {
    const JOBS = 240;
    const SUBMITTERS = 8;
    const { stack, env, ports } = await upStack(true);
    let up: Up | undefined;
    try {
      up = await startUp(stack, env);
      const current = up;
      const headers = { authorization: `Bearer ${TENANTS.acme.key}` };
      const tags = Array.from({ length: JOBS }, (_, i) => `up-kill-${i}-${randomUUID()}`);
      const accepted = new Map<string, { id: string; refused: number }>();
      const submitted = (async () => {
        for (let next = 0; next < JOBS;) {
          await Promise.all(
            tags.slice(next, (next += SUBMITTERS)).map(async (tag) => {
              const body = {
                type: 'inference',
                task: 'chat',
                pool: 'remote',
                input: { messages: [{ role: 'user', content: tag }] },
                retry: RETRY,
              };
              const res = await postUntilAnswered(`${stack.apiUrl}/v1/jobs`, body, { ...headers, 'idempotency-key': tag });
              assert.ok(res.status === 202 || res.status === 200, `${tag}: ${res.status} ${JSON.stringify(res.body)}`);
              accepted.set(tag, { id: res.body.id, refused: res.refused });
            }),
          );
        }
      })();

      // A third of the way in, the server dies; up starts it again on the same port, while jobs keep coming.
      await eventually('a third of the jobs to be accepted', () => (accepted.size >= JOBS / 3 ? true : undefined));
      const server = childInRole(current, 'temporal dev server');
      assert.ok(server, 'a dev server under up');
      const killedAt = Date.now();
      process.kill(server.pid, 'SIGKILL');
      await current.process.waitForLine(/^\[temporal\] exited \(SIGKILL\); restarting in \d+ ms$/);
      const ready = await current.process.waitForLine(/^Temporal dev server ready again at /);
      assert.ok(ready.startsWith(`Temporal dev server ready again at 127.0.0.1:${ports.grpc} `), ready);
      const back = childInRole(current, 'temporal dev server');
      assert.ok(back && back.pid !== server.pid, 'a new dev server process');
      console.log(
        `dev server SIGKILLed with ${accepted.size} of ${JOBS} jobs accepted; ${ready} (${Date.now() - killedAt} ms after the kill)`,
      );

      await submitted;
      const jobs = [];
      for (const tag of tags) jobs.push(await stack.waitForJob(accepted.get(tag)!.id, ['succeeded', 'failed', 'cancelled', 'timed_out']));
      const ids = new Set([...accepted.values()].map((a) => a.id));
      const calls = tags.map((tag) => openai.requestsMentioning(tag).length);
      const retried = [...accepted.values()].filter((a) => a.refused > 0).length;
      console.log(
        `accepted ${accepted.size}, succeeded ${jobs.filter((j) => j.status === 'succeeded').length}, distinct jobs ${ids.size}; ` +
          `${retried} submissions retried after a 503 or no answer; provider calls per job: ${[...new Set(calls)].sort().join(', ')}`,
      );
      assert.equal(accepted.size, JOBS, 'every job accepted');
      assert.deepEqual(
        jobs.filter((j) => j.status !== 'succeeded').map((j) => `${j.id}: ${j.status} ${JSON.stringify(j.lastFailure)}`),
        [],
        'every accepted job succeeded',
      );
      assert.equal(ids.size, JOBS, 'one job per submission, however often it was sent');
      jobs.forEach((job, i) => {
        assert.equal(job.result.output.message.content, `echo: ${tags[i]}`);
        // A call whose answer was lost with the server is made again, on a new attempt: never more calls than attempts.
        assert.ok(calls[i]! >= 1 && calls[i]! <= job.attempts, `${job.id}: ${calls[i]} provider calls in ${job.attempts} attempts`);
      });
      await stopAndAssertClean(up, ports);
    } finally {
      await ensureStopped(up);
    }
  },
);

test('with TEMPORAL_ADDRESS set, up starts no dev server of its own and jobs still succeed', { timeout: 120_000 }, async () => {
  const shared = process.env.TEMPORAL_ADDRESS;
  assert.ok(shared, 'TEMPORAL_ADDRESS is not set: run the tests with `npm test`');
  const { stack, env, ports } = await upStack(false);
  let up: Up | undefined;
  try {
    up = await startUp(stack, env);
    assert.ok(up.process.lines.includes(`Using the Temporal server at ${shared} (namespace default)`), tail(up));
    assert.equal(up.banner.temporal, shared);
    assert.doesNotMatch(up.banner.text, /data: /);

    const children = descendantsOf(up.pid);
    assert.equal(children.filter((c) => /bin\/switchyard /.test(c.cmd)).length, 4, children.map((c) => c.cmd).join('\n'));
    assert.deepEqual(
      children.filter((c) => /temporal|start-dev/.test(c.cmd)),
      [],
      'no temporal process under up',
    );
    assert.ok(!up.process.lines.some((l) => /Temporal dev server ready/.test(l)));
    assert.ok(await portIsFree(ports.grpc), 'nothing listens on the dev server port');
    assert.equal(fs.existsSync(path.join(stack.env.SWITCHYARD_DATA_DIR!, 'temporal.sqlite')), false);

    const job = await assertSucceeds(stack, await submit(stack, sentimentJob('The shared server is fine too.')));
    assert.equal(job.attempts, 1);
    await stopAndAssertClean(up, ports);
  } finally {
    await ensureStopped(up);
  }
});

/**
 * Jobs survive their processes: a pool worker killed mid-inference, the API killed and restarted
 * while jobs run, and a pool worker told to stop while an inference is in flight. Real processes on
 * the real dev server; the `remote` pool calls the fake OpenAI server, which keeps calls in flight: hanging, or
 * held back until the test releases them.
 *
 * Pool workers are started per test, so each test knows exactly which process holds its job. Pool
 * names carry a random suffix so this file's jobs can be listed apart from other files' jobs.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI, type Fault } from '../../testkit/fake-openai';
import { sentimentJob, Stack, type ProcessHandle } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const suffix = randomBytes(3).toString('hex');
const REMOTE = `remote-${suffix}`;
const LOCAL = `local-${suffix}`;
const RETRY = { initialIntervalMs: 100, maxIntervalMs: 1000, maxAttempts: 5 };
/** Calls a remote pool worker runs at once. */
const REMOTE_SLOTS = 4;

let openai: FakeOpenAI;
let stack: Stack;

before(async () => {
  openai = await startFakeOpenAI();
  stack = new Stack({
    pools: {
      [LOCAL]: { provider: 'local', concurrency: 4 },
      [REMOTE]: { provider: 'openai', concurrency: REMOTE_SLOTS, baseUrl: openai.url, model: 'fake-model', requestTimeoutMs: 60_000 },
    },
  });
  // The workflow worker, the local pool and the API; `remote` pool workers come and go per test.
  await Promise.all([stack.worker(['--workflows']), stack.worker(['--pool', LOCAL]), stack.startApi()]);
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

const remoteWorker = () => stack.worker(['--pool', REMOTE]);

/** Sends `signal` and resolves with how the process ended (exit code or signal name). */
async function stopProcess(p: ProcessHandle, signal: NodeJS.Signals = 'SIGTERM'): Promise<string> {
  p.kill(signal);
  return p.exited;
}

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await stack.call('POST', '/v1/jobs', { body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id;
}

/** A chat job on the remote pool whose message carries a unique tag, to find its requests by. */
async function submitRemoteChat(): Promise<{ id: string; tag: string }> {
  const tag = `job-tag-${randomUUID()}`;
  const id = await submit({
    type: 'inference',
    task: 'chat',
    pool: REMOTE,
    input: { messages: [{ role: 'user', content: tag }] },
    retry: RETRY,
  });
  return { id, tag };
}

const requestsFor = (tag: string) => openai.requestsMentioning(tag);

/** Submits a remote chat job under `faults` and waits until its call is in flight at the provider. */
async function inFlightRemoteChat(faults: Fault[]): Promise<{ id: string; tag: string }> {
  openai.script(faults);
  const job = await submitRemoteChat();
  await stack.waitForJob(job.id, ['running']);
  await eventually('the inference request to reach the provider', () => requestsFor(job.tag)[0]);
  return job;
}

describe('worker crash', () => {
  test('a pool worker killed with SIGKILL mid-inference: the job succeeds on another worker', async () => {
    const workerA = await remoteWorker();
    let workerB: ProcessHandle | undefined;
    try {
      const { id, tag } = await inFlightRemoteChat([{ hang: true }]);
      workerB = await remoteWorker();
      const killedAt = Date.now();
      assert.equal(await stopProcess(workerA, 'SIGKILL'), 'SIGKILL');

      // Nothing tells Temporal the worker died: the attempt times out on its missing heartbeat (2 s).
      const job = await stack.waitForJob(id, ['succeeded', 'failed']);
      const recoveredMs = Date.parse(job.finishedAt) - killedAt;
      console.log(`recovered ${recoveredMs} ms after SIGKILL`);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
      assert.equal(job.attempts, 2);
      assert.equal(job.result.output.message.content, `echo: ${tag}`);
      const requests = requestsFor(tag);
      assert.equal(requests.length, 2);
      assert.ok(requests[1]!.receivedAt > killedAt, 'the second attempt ran after the kill, so on worker B');
      assert.ok(recoveredMs < 20_000, `recovery took ${recoveredMs} ms`);
    } finally {
      if (workerB) await stopProcess(workerB);
    }
  });
});

describe('API restart', () => {
  test('the API killed and restarted on its port while 10 jobs run: all succeed, none lost or doubled', async () => {
    const worker = await remoteWorker();
    // The remote calls are answered only once the restarted API has been asked about them.
    const release = openai.hold();
    try {
      const since = new Date(Date.now() - 1000).toISOString();
      const remote = await Promise.all(Array.from({ length: 5 }, () => submitRemoteChat()));
      const local = await Promise.all(
        Array.from({ length: 5 }, (_, i) => submit({ ...sentimentJob(`Restart job ${i} is fine.`), pool: LOCAL })),
      );
      const ids = [...remote.map((j) => j.id), ...local];
      // As many as the worker runs at once are in flight at the provider; the others wait for a slot.
      const inFlight = Math.min(remote.length, REMOTE_SLOTS);
      await eventually(`${inFlight} remote calls to reach the provider`, () =>
        remote.filter((j) => requestsFor(j.tag).length).length >= inFlight ? true : undefined,
      );

      const urlBefore = stack.apiUrl;
      await stack.stopApi('SIGKILL');
      assert.equal((await fetch(`${urlBefore}/healthz`).catch((err: Error) => err)) instanceof Error, true, 'the API is down');
      await stack.startApi();
      assert.equal(stack.apiUrl, urlBefore);

      // The slow jobs were still running across the restart.
      const right = await Promise.all(ids.map((id) => stack.call('GET', `/v1/jobs/${id}`)));
      assert.ok(right.every((r) => r.status === 200));
      assert.ok(
        right.some((r) => r.body.status !== 'succeeded'),
        'some jobs must still be in flight after the restart',
      );
      release();

      for (const id of ids) {
        const job = await stack.waitForJob(id, ['succeeded', 'failed']);
        assert.equal(job.status, 'succeeded', `${id}: ${JSON.stringify(job.lastFailure)}`);
        assert.equal(job.attempts, 1);
      }
      for (const { tag } of remote) assert.equal(requestsFor(tag).length, 1);

      // Every job listed exactly once. Visibility is eventually consistent: wait for all ten.
      const listed = await eventually('all ten jobs to be listed as succeeded', async () => {
        const items = [];
        for (const pool of [REMOTE, LOCAL]) {
          const { body } = await stack.call('GET', `/v1/jobs?pool=${pool}&createdAfter=${encodeURIComponent(since)}&limit=100`);
          items.push(...body.items);
        }
        return items.length >= ids.length && items.every((j) => j.status === 'succeeded') ? items : undefined;
      });
      assert.equal(listed.length, ids.length);
      assert.deepEqual(listed.map((j) => j.id).sort(), [...ids].sort());
    } finally {
      release();
      await stopProcess(worker);
    }
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM during an inference: the worker finishes it, then exits 0', async () => {
    const worker = await remoteWorker();
    // The call is answered only once the worker has begun to stop.
    const release = openai.hold();
    try {
      const { id, tag } = await inFlightRemoteChat([]);
      const termAt = Date.now();
      worker.kill('SIGTERM');
      await worker.waitForLine(/"msg":"Worker state changed".*"state":"STOPPING"/);
      assert.equal(worker.exitStatus, undefined, 'the stopping worker waits for its call');
      release();
      const exit = await worker.exited;
      const exitedAfterMs = Date.now() - termAt;
      console.log(`worker exited ${exitedAfterMs} ms after SIGTERM`);
      assert.equal(exit, '0');
      assert.ok(exitedAfterMs < 5000 + 3000, `exit took ${exitedAfterMs} ms; the grace is 5000`);
      assert.ok(worker.lines.some((l) => l.includes('worker drained and stopped')));

      const job = await stack.waitForJob(id, ['succeeded', 'failed']);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.lastFailure));
      assert.equal(job.attempts, 1);
      // One request, one attempt, and no other remote worker: the stopping worker delivered the result,
      // so it was still up when the answer came.
      assert.equal(requestsFor(tag).length, 1);
    } finally {
      release();
    }
  });
});

/**
 * The process actuator end to end: `switchyard autoscale` on the run's dev server with a slow synthetic
 * pool (min 1, max 4 workers). A burst of 200 jobs grows the pool to at least 3 worker processes; every
 * job succeeds on its first attempt (a scale-down never cancelled a running call); once the backlog has
 * drained and the stabilization window passed, the pool is back to 1 worker. The policy decides on the
 * busy slots read from the workers' metrics, and the autoscaler serves its own.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pickFreePort } from '../../src/local/dev-server';
import { Stack, type ProcessHandle } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const POOLS = {
  slow: {
    provider: 'synthetic' as const,
    latencyMs: 300,
    concurrency: 2,
    scaling: { minWorkers: 1, maxWorkers: 4, scaleDownAfterMs: 3000 },
  },
};
const JOBS = 200;

let stack: Stack;
let autoscaler: ProcessHandle;
/** The autoscaler's metrics port; its workers serve theirs on the ports above. */
let metricsPort: number;

before(async () => {
  stack = new Stack({ pools: POOLS });
  metricsPort = await pickFreePort();
  await Promise.all([stack.worker(['--workflows']), stack.startApi()]);
  autoscaler = await stack.spawn(['autoscale'], { SWITCHYARD_WORKER_METRICS_ADDRESS: `127.0.0.1:${metricsPort}` });
});
after(async () => {
  await stack?.stop();
});

/** The pool's worker processes as the autoscaler last logged them. */
function workers(): number {
  const counts = autoscaler.lines
    .filter((l) => /"msg":"autoscale: worker (started|stopped)"/.test(l))
    .map((l) => JSON.parse(l) as { workers: number });
  return counts.at(-1)?.workers ?? 0;
}

test(
  'a burst scales the pool out to at least 3 workers and back to 1, with every job done on its first attempt',
  { timeout: 150_000 },
  async () => {
    await eventually('the first worker', () => (workers() === 1 ? true : undefined));

    const ids: string[] = [];
    for (let i = 0; i < JOBS; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, JOBS - i) }, (_, k) =>
          stack.call('POST', '/v1/jobs', {
            body: { type: 'inference', task: 'sentiment', pool: 'slow', input: { text: `Job ${i + k}.` } },
          }),
        ),
      );
      for (const res of batch) {
        assert.equal(res.status, 202, JSON.stringify(res.body));
        ids.push(res.body.id);
      }
    }

    const done = [];
    for (const id of ids) done.push(await stack.waitForJob(id, ['succeeded', 'failed', 'cancelled', 'timed_out']));
    const peak = Math.max(
      ...autoscaler.lines.filter((l) => l.includes('"autoscale: worker started"')).map((l) => JSON.parse(l).workers as number),
    );
    assert.ok(peak >= 3, `the pool grew to only ${peak} workers`);
    assert.deepEqual(
      done.filter((j) => j.status !== 'succeeded' || j.attempts !== 1).map((j) => ({ id: j.id, status: j.status, attempts: j.attempts })),
      [],
    );

    await eventually('the pool back to 1 worker', () => (workers() === 1 ? true : undefined));
    const decisions = autoscaler.lines.filter((l) => l.includes('"autoscale decision"')).map((l) => JSON.parse(l).reason as string);
    assert.ok(
      decisions.every((reason) => typeof reason === 'string'),
      'every decision is logged with its reason',
    );
    // Read, not estimated: an estimate says "busy slots unknown" or "idle".
    assert.ok(
      decisions.every((reason) => /^\d+ busy slots want/.test(reason)),
      `busy slots read from the workers:\n${decisions.join('\n')}`,
    );
    assert.deepEqual(
      autoscaler.lines.filter((l) => l.includes('cannot read busy slots')),
      [],
    );

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^switchyard_autoscaler_workers\{pool="slow"\} 1$/m);
    assert.match(metrics, /^switchyard_autoscaler_desired_workers\{pool="slow"\} 1$/m);
    const first = await (await fetch(`http://127.0.0.1:${metricsPort + 1}/metrics`)).text();
    assert.match(
      first,
      new RegExp(`^temporal_worker_task_slots_used\\{.*task_queue="${stack.prefix}-pool-slow".*\\} 0$`, 'm'),
      'the first worker serves its slots on the next port',
    );
  },
);

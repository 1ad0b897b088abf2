/**
 * Tenant quotas end to end: at most SWITCHYARD_DEFAULT_MAX_OPEN_JOBS queued + running jobs per tenant.
 * The pool's queue is paused (rate limit 0) so accepted jobs stay open for as long as the test needs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jobIdForIdempotencyKey } from '../../src/jobs/ids';
import { VISIBILITY_LAG_MS } from '../../src/clients/jobs/open-jobs';
import { poolTaskQueue } from '../../src/temporal/task-queues';
import { pauseQueue, resumeQueue } from '../../testkit/dispatch';
import { sentimentJob, Stack, type TENANTS } from '../../testkit/stack';
import { eventually, sleep } from '../../testkit/wait';

const MAX_OPEN = 3;
let stack: Stack;
let queue: string;

before(async () => {
  stack = await new Stack({ env: { SWITCHYARD_DEFAULT_MAX_OPEN_JOBS: String(MAX_OPEN) } }).start();
  queue = poolTaskQueue(stack.prefix, 'local');
});
after(async () => {
  await resumeQueue(await stack.temporal(), queue).catch(() => undefined);
  await stack?.stop();
});

const submit = (opts: { as?: keyof typeof TENANTS; key?: string; text?: string } = {}) =>
  stack.call('POST', '/v1/jobs', {
    as: opts.as ?? 'acme',
    body: sentimentJob(opts.text ?? 'Quota test.'),
    headers: opts.key ? { 'idempotency-key': opts.key } : {},
  });

/** Executions of the tenant's jobs in Temporal, once visibility shows `expected`; never more. */
async function assertStartedInTemporal(as: keyof typeof TENANTS, expected: number): Promise<void> {
  const temporal = await stack.temporal();
  const query = `JobTenant = '${stack.tenant(as)}'`;
  const count = await eventually(`${expected} ${as} jobs in visibility`, async () => {
    const { count } = await temporal.workflow.count(query);
    assert.ok(count <= expected, `${count} ${as} jobs started, ${expected} accepted`);
    return count === expected ? count : undefined;
  });
  assert.equal(count, expected);
}

function assertQuotaProblem(res: { status: number; headers: Headers; body: any }, open: number): void {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.equal(res.body.type, '/problems/quota-exceeded');
  assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  assert.equal(res.body.openJobs, open);
  assert.equal(res.body.maxOpenJobs, MAX_OPEN);
  assert.match(res.body.detail, new RegExp(`has ${open} open \\(queued or running\\) jobs and may have at most ${MAX_OPEN}`));
}

test('the (max+1)th open job is 429 with Retry-After; repeats and other tenants pass; finishing frees the quota', async () => {
  const temporal = await stack.temporal();
  await pauseQueue(temporal, queue);
  const firstKey = `quota-first-${Date.now()}`;
  const accepted = [await submit({ key: firstKey }), await submit(), await submit()];
  const acceptedAt = Date.now();
  assert.deepEqual(
    accepted.map((r) => r.status),
    [202, 202, 202],
  );

  // Within visibility's lag: counted by this API's own record of what it just started.
  assertQuotaProblem(await submit(), MAX_OPEN);
  const refusedKey = `quota-refused-${Date.now()}`;
  assertQuotaProblem(await submit({ key: refusedKey }), MAX_OPEN);
  const refusedId = jobIdForIdempotencyKey(stack.tenant('acme'), refusedKey);
  assert.equal((await stack.call('GET', `/v1/jobs/${refusedId}`)).status, 404, 'a refused job is not started');

  // A repeat of an accepted key opens nothing: it still answers with its job.
  const repeat = await submit({ key: firstKey });
  assert.equal(repeat.status, 200);
  assert.equal(repeat.body.id, accepted[0]!.body.id);

  // Quotas are per tenant.
  const other = await submit({ as: 'globex' });
  assert.equal(other.status, 202);

  // Past the lag: counted from visibility alone, once it shows the jobs and the last of them started more than the lag ago
  // (plus the moment a count is reused).
  await assertStartedInTemporal('acme', MAX_OPEN);
  await sleep(acceptedAt + VISIBILITY_LAG_MS + 500 - Date.now());
  assertQuotaProblem(await submit(), MAX_OPEN);
  await assertStartedInTemporal('acme', MAX_OPEN);

  await resumeQueue(temporal, queue);
  await Promise.all(accepted.map((r) => stack.waitForJob(r.body.id, ['succeeded'])));
  await stack.waitForJob(other.body.id, ['succeeded'], undefined, 'globex');
  // Visibility learns of the closes within a moment; a client honouring Retry-After gets in.
  const again = await eventually('a job accepted after the others finished', async () => {
    const res = await submit();
    return res.status === 202 ? res : undefined;
  });
  await stack.waitForJob(again.body.id, ['succeeded']);
  await assertStartedInTemporal('acme', MAX_OPEN + 1);
});

test('a concurrent burst at an empty quota admits exactly the quota', async () => {
  const temporal = await stack.temporal();
  await pauseQueue(temporal, queue);
  const query = `JobTenant = '${stack.tenant('globex')}'`;
  await eventually(
    'no open globex jobs in visibility',
    async () => (await temporal.workflow.count(`${query} AND ExecutionStatus = 'Running'`)).count === 0 || undefined,
  );
  const before = (await temporal.workflow.count(query)).count;
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => submit({ as: 'globex', text: `Burst ${i}.` })));
  const accepted = answers.filter((r) => r.status === 202);
  assert.equal(accepted.length, MAX_OPEN, answers.map((r) => r.status).join(','));
  for (const refused of answers.filter((r) => r.status !== 202)) assertQuotaProblem(refused, MAX_OPEN);
  await assertStartedInTemporal('globex', before + MAX_OPEN);
  await resumeQueue(temporal, queue);
  await Promise.all(accepted.map((r) => stack.waitForJob(r.body.id, ['succeeded'], undefined, 'globex')));
});

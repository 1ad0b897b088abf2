/**
 * Metrics end to end: real API and worker processes (the workers with their Prometheus endpoint on), an
 * OpenAI-compatible pool with batching, real traffic — embed jobs that batch, a chat job that uses
 * tokens, a poisoned job that fails — then both endpoints must report exactly that traffic. The API also
 * reports each pool's scaling signal: a pool without workers whose jobs wait wants workers. The API serves
 * its metrics on an address of its own (SWITCHYARD_API_METRICS_ADDRESS), not on the API's port.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pickFreePort } from '../../src/local/dev-server';
import { POISON, startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const POOL = 'remote';
const EMBED_JOBS = 4;
/** No worker polls it: its jobs wait, and the policy wants workers for them. */
const WAITING_POOL = 'waiting';
const WAITING_JOBS = 3;

let openai: FakeOpenAI;
let stack: Stack;
let poolMetricsUrl = '';
let workflowMetricsUrl = '';

before(async () => {
  openai = await startFakeOpenAI();
  stack = new Stack({
    pools: {
      [POOL]: {
        provider: 'openai',
        baseUrl: openai.url,
        model: 'fake-model',
        concurrency: 8,
        // A batch goes once every embed call of the test is in it (a full batch goes at once), however far apart a
        // busy machine delivers them; the wait is only a bound.
        batch: { maxSize: EMBED_JOBS + 1, maxWaitMs: 10_000 },
        breaker: { enabled: false },
      },
      [WAITING_POOL]: { provider: 'synthetic', concurrency: 2, scaling: { minWorkers: 0, maxWorkers: 3, targetBacklogPerWorker: 2 } },
    },
  });
  const [poolPort, workflowPort] = [await pickFreePort(), await pickFreePort()];
  poolMetricsUrl = `http://127.0.0.1:${poolPort}/metrics`;
  workflowMetricsUrl = `http://127.0.0.1:${workflowPort}/metrics`;
  await Promise.all([
    stack.worker(['--workflows'], { SWITCHYARD_WORKER_METRICS_ADDRESS: `127.0.0.1:${workflowPort}` }),
    stack.worker(['--pool', POOL], { SWITCHYARD_WORKER_METRICS_ADDRESS: `127.0.0.1:${poolPort}` }),
    stack.startApi(),
  ]);
});
after(async () => {
  await stack?.stop();
  await openai?.close();
});

/** One sample of a Prometheus text exposition: `name{labels} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url} answers`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parseMetrics(await res.text());
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

const has = (samples: Sample[], name: string) => samples.some((s) => s.name === name);

test('the API and the workers serve metrics that match the traffic', { timeout: 120_000 }, async (t) => {
  const tag = randomUUID();
  const submit = async (body: object, headers: Record<string, string> = {}) => {
    const res = await stack.call('POST', '/v1/jobs', { body, headers });
    assert.ok([200, 202].includes(res.status), JSON.stringify(res.body));
    return res;
  };
  const embed = (i: number | string) => ({ type: 'inference', task: 'embed', pool: POOL, input: { text: `item ${i} of ${tag}` } });

  // Concurrent embed jobs (they batch), a chat job (prompt and completion tokens), a poisoned job (fails),
  // and one idempotent repeat (answered 200, not a new job).
  const submitted = await Promise.all([
    ...Array.from({ length: EMBED_JOBS }, (_, i) => submit(embed(i))),
    submit({ ...embed(`${POISON}`), priority: 1 }),
    submit(
      { type: 'inference', task: 'chat', pool: POOL, input: { messages: [{ role: 'user', content: `hello ${tag}` }] } },
      { 'idempotency-key': tag },
    ),
  ]);
  const repeat = await submit(
    { type: 'inference', task: 'chat', pool: POOL, input: { messages: [{ role: 'user', content: `hello ${tag}` }] } },
    { 'idempotency-key': tag },
  );
  assert.equal(repeat.status, 200);
  const jobs = [];
  for (const { body } of submitted) jobs.push(await stack.waitForJob(body.id, ['succeeded', 'failed']));
  assert.deepEqual(
    jobs.map((j) => j.status),
    [...Array(EMBED_JOBS).fill('succeeded'), 'failed', 'succeeded'],
  );
  assert.equal(jobs[EMBED_JOBS].lastFailure.type, 'ProviderRejected');

  const unknownId = submitted[0].body.id.replace(/.{4}$/, '0000');
  assert.equal((await stack.call('GET', `/v1/jobs/${unknownId}`)).status, 404);
  assert.equal((await stack.call('GET', '/v1/jobs', { as: null })).status, 401);
  assert.equal((await fetch(`${stack.apiUrl}/metrics`)).status, 404, 'the API port serves no metrics: they name tenants');
  assert.match(stack.apiMetricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'served on loopback, apart from the API');

  const api = await scrape(stack.apiMetricsUrl);
  const tenant = stack.tenant();
  const submittedAs = (priority: string) =>
    total(api, 'switchyard_jobs_submitted_total', { type: 'inference', tenant, pool: POOL, priority });
  assert.equal(submittedAs('3'), EMBED_JOBS + 1, 'the embed jobs and the chat job, at the default priority; not the repeat');
  assert.equal(submittedAs('1'), 1, 'the poisoned job, at priority 1');

  const requests = (labels: Record<string, string>) => total(api, 'switchyard_http_request_duration_seconds_count', labels);
  assert.equal(requests({ route: '/v1/jobs', method: 'POST', status: '202' }), EMBED_JOBS + 2);
  assert.equal(requests({ route: '/v1/jobs', method: 'POST', status: '200' }), 1);
  assert.ok(requests({ route: '/v1/jobs/:id', method: 'GET', status: '200' }) >= jobs.length, 'job polls under the route template');
  assert.equal(requests({ route: '/v1/jobs/:id', method: 'GET', status: '404' }), 1);
  assert.equal(requests({ route: 'unmatched', method: 'GET', status: '401' }), 1, 'refused before routing');
  assert.ok(
    api.filter((s) => s.name.startsWith('switchyard_http_')).every((s) => !/\d{6}|[0-9A-Z]{26}/.test(s.labels.route ?? '')),
    'no raw ids in route labels',
  );
  assert.ok(total(api, 'switchyard_http_request_duration_seconds_sum', { route: '/v1/jobs', method: 'POST' }) > 0);
  assert.ok(has(api, 'process_cpu_user_seconds_total') && has(api, 'nodejs_heap_size_used_bytes'), 'process default metrics');
  assert.ok(
    total(api, 'switchyard_temporal_client_errors_total', { operation: 'DescribeWorkflowExecution', code: 'NOT_FOUND' }) >= 1,
    'the unknown job was a NOT_FOUND from Temporal',
  );

  // Each pool's scaling signal, read when scraped: the quiet pool with its one worker wants 1 (minWorkers);
  // a backlog of 3 on a pool without workers at 2 per worker wants 2 (3 if the lookahead adds a call).
  const byReason = (samples: Sample[], pool: string) =>
    samples
      .filter((s) => s.name === 'switchyard_pool_held_back' && s.labels.pool === pool)
      .map((s) => `${s.labels.reason}=${s.value}`)
      .sort();
  assert.equal(total(api, 'switchyard_pool_desired_workers', { pool: POOL }), 1);
  assert.equal(total(api, 'switchyard_pool_workers_polling', { pool: POOL }), 1);
  assert.equal(total(api, 'switchyard_pool_backlog', { pool: POOL }), 0);
  assert.ok(has(api, 'switchyard_pool_backlog_age_seconds'));
  assert.deepEqual(byReason(api, POOL), ['breaker=0', 'paused=0', 'rate-limit=0', 'token-limit=0']);
  for (let i = 0; i < WAITING_JOBS; i++)
    await submit({ type: 'inference', task: 'sentiment', pool: WAITING_POOL, input: { text: `waiting ${i} of ${tag}` } });
  const waiting = await eventually(`a backlog of ${WAITING_JOBS} on ${WAITING_POOL}`, async () => {
    const samples = await scrape(stack.apiMetricsUrl);
    return total(samples, 'switchyard_pool_backlog', { pool: WAITING_POOL }) === WAITING_JOBS ? samples : undefined;
  });
  const desired = total(waiting, 'switchyard_pool_desired_workers', { pool: WAITING_POOL });
  assert.ok(desired >= 2 && desired <= 3, `${WAITING_POOL} wants ${desired} workers`);
  assert.equal(total(waiting, 'switchyard_pool_workers_polling', { pool: WAITING_POOL }), 0);
  assert.deepEqual(byReason(waiting, WAITING_POOL), ['breaker=0', 'paused=0', 'rate-limit=0', 'token-limit=0']);

  const pool = await scrape(poolMetricsUrl);
  const calls = (labels: Record<string, string>) => total(pool, 'switchyard_inference_latency_seconds_count', { pool: POOL, ...labels });
  assert.equal(calls({ task: 'embed', outcome: 'succeeded' }), EMBED_JOBS);
  assert.equal(calls({ task: 'embed', outcome: 'failed' }), 1);
  assert.equal(calls({ task: 'chat', outcome: 'succeeded' }), 1);
  assert.ok(total(pool, 'switchyard_inference_latency_seconds_sum', { pool: POOL, task: 'embed' }) > 0);
  assert.equal(total(pool, 'switchyard_inference_errors_total', { pool: POOL, task: 'embed', type: 'ProviderRejected' }), 1);
  assert.ok(total(pool, 'switchyard_inference_tokens_total', { pool: POOL, task: 'chat', kind: 'completion' }) > 0);
  assert.ok(total(pool, 'switchyard_inference_tokens_total', { pool: POOL, task: 'embed', kind: 'prompt' }) > 0);
  const batchedCalls = total(pool, 'switchyard_inference_batch_size_sum', { pool: POOL, task: 'embed' });
  const batches = total(pool, 'switchyard_inference_batch_size_count', { pool: POOL, task: 'embed' });
  t.diagnostic(`embed calls ${batchedCalls} in ${batches} batches`);
  assert.equal(batchedCalls, EMBED_JOBS + 1, 'every embed call went through a batch');
  assert.ok(batches >= 1 && batches < batchedCalls, 'concurrent calls shared batches');
  for (const name of [
    'temporal_worker_task_slots_available',
    'temporal_worker_task_slots_used',
    'temporal_activity_schedule_to_start_latency_count',
  ]) {
    assert.ok(has(pool, name), `the SDK's ${name} on the pool worker`);
  }
  assert.equal(total(pool, 'temporal_activity_execution_failed', { activity_type: 'runInference' }), 1, 'the SDK saw one failed attempt');

  const workflows = await scrape(workflowMetricsUrl);
  assert.ok(total(workflows, 'temporal_workflow_completed') >= EMBED_JOBS + 1, 'the SDK counted completed workflows');
  assert.ok(has(workflows, 'temporal_worker_task_slots_available'));
  assert.ok(has(workflows, 'temporal_workflow_task_schedule_to_start_latency_count'));
  assert.ok(!has(workflows, 'switchyard_inference_latency_seconds_count'), 'a workflow worker runs no inference');
  assert.ok(pool.some((s) => s.name === 'temporal_worker_task_slots_used' && s.labels.worker_type === 'ActivityWorker'));

  // Every series the Grafana dashboard queries is one these endpoints serve.
  const dashboard = readFileSync(path.resolve(__dirname, '../../deploy/grafana/switchyard.json'), 'utf8');
  const served = new Set([...api, ...pool, ...workflows].map((s) => s.name));
  const queried = new Set(dashboard.match(/\b(?:switchyard|temporal)_[a-z_]+\b/g));
  assert.deepEqual(
    [...queried].filter((name) => !served.has(name)),
    [],
    'dashboard series missing from the endpoints',
  );
});

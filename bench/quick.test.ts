/**
 * The benchmark scenarios in their quick form, through the real entry (`tsx bench/run.ts`): they run,
 * record a result of the expected shape, and leave no process behind. No timing assertions.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { sleep } from '../testkit/wait';

const ROOT = path.resolve(__dirname, '..');
const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-results-'));
after(() => fs.rmSync(resultsDir, { recursive: true, force: true }));

/** Command lines of the processes whose environment holds `marker`: everything a run starts inherits BENCH_RESULTS_DIR. */
function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`, 'latin1').includes(marker)) {
        found.push(fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1').replace(/\0/g, ' ').trim());
      }
    } catch {
      /* gone, or not ours to read */
    }
  }
  return found;
}

async function runQuick(scenario: string): Promise<{ columns: string[]; rows: unknown[][]; metrics: Record<string, number> }> {
  const dir = path.join(resultsDir, scenario);
  const child = spawn('npx', ['tsx', 'bench/run.ts', scenario, '--quick'], {
    cwd: ROOT,
    env: { ...process.env, BENCH_RESULTS_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Watching while it runs proves the leftover check below can see the run's server and workers at all.
  const seen = new Set<string>();
  let running = true;
  void exit.then(() => (running = false));
  while (running) {
    for (const cmd of processesWith(dir))
      seen.add(/temporal server start-dev/.test(cmd) ? 'server' : /bin\/switchyard worker/.test(cmd) ? 'worker' : 'other');
    await sleep(500);
  }
  assert.equal(await exit, 0, output);
  assert.ok(seen.has('server') && seen.has('worker'), `saw the run's server and workers while it ran (saw: ${[...seen].join(', ')})`);
  assert.deepEqual(processesWith(dir), [], 'processes left running after the bench exited');

  const files = fs.readdirSync(path.join(dir, 'quick'));
  const json = files.find((f) => f.startsWith(`${scenario}-`) && f.endsWith('.json'));
  assert.ok(json && files.includes(json.replace(/\.json$/, '.md')), `json and md results in ${files.join(', ')}`);
  const run = JSON.parse(fs.readFileSync(path.join(dir, 'quick', json), 'utf8'));
  assert.equal(run.quick, true);
  assert.ok(Number(run.machine.cores) > 0 && String(run.machine.temporalCli).length > 0);
  for (const [name, value] of Object.entries(run.result.metrics as Record<string, number>)) {
    // CPU comes from /proc in 10-ms clock ticks: a process that barely works in a quick run (Redis) can read 0.
    const floorOk = /cpu/i.test(name) ? value >= 0 : value > 0;
    assert.ok(Number.isFinite(value) && floorOk, `metric ${name} = ${value}`);
  }
  assert.ok(run.result.rows.length > 0);
  return run.result;
}

test('overhead --quick: API vs raw client figures and history events', { timeout: 180_000 }, async () => {
  const result = await runQuick('overhead');
  assert.deepEqual(result.columns, [
    'path',
    'load',
    'jobs',
    'jobs/s',
    'submit p50 ms',
    'submit p95 ms',
    'submit p99 ms',
    'e2e p50 ms',
    'e2e p99 ms',
  ]);
  for (const name of ['rawJobsPerSec', 'apiJobsPerSec', 'throughputRatio', 'apiSubmitP99Ms', 'apiE2eP99Ms', 'historyEvents']) {
    assert.ok(name in result.metrics, name);
  }
});

test('scale-out --quick: jobs/s at 1, 2 and 4 workers and the ceiling', { timeout: 180_000 }, async () => {
  const result = await runQuick('scale-out');
  assert.deepEqual(result.columns, [
    'workers × slots',
    'jobs',
    'jobs/s',
    'vs 1 worker',
    'ideal jobs/s',
    'ms per job per slot',
    'CPU (share of one core)',
  ]);
  for (const workers of [1, 2, 4])
    assert.ok(
      Object.keys(result.metrics).some((k) => k.endsWith(`Workers${workers}JobsPerSec`)),
      `${workers} workers`,
    );
  assert.ok('ceilingJobsPerSec' in result.metrics);
});

test('peer-bullmq --quick: BullMQ + Redis (everysec, always) vs Switchyard at 0, 50 and 200 ms', { timeout: 180_000 }, async () => {
  const result = await runQuick('peer-bullmq');
  assert.deepEqual(result.columns, [
    'workers × slots',
    'inference ms',
    'side',
    'jobs',
    'jobs/s',
    'e2e p50 ms',
    'e2e p99 ms',
    'at jobs/s',
    'CPU ms per job',
    'store disk KB per job',
  ]);
  for (const ms of [0, 50, 200]) {
    for (const name of [
      'bullmqJobsPerSec',
      'bullmqAlwaysJobsPerSec',
      'switchyardJobsPerSec',
      'throughputRatio',
      'throughputRatioAlways',
      'bullmqE2eP99Ms',
      'bullmqAlwaysE2eP99Ms',
      'switchyardE2eP99Ms',
    ]) {
      assert.ok(`${name}${ms}` in result.metrics, `${name}${ms}`);
    }
  }
  assert.ok(result.metrics.historyEvents! >= 11, `history events per job: ${result.metrics.historyEvents}`);
});

test('fairness --quick: the light tenant’s waits with and without fairness', { timeout: 180_000 }, async () => {
  const result = await runQuick('fairness');
  assert.deepEqual(result.columns, [
    'mode',
    'tenant',
    'jobs',
    'wait p50 ms',
    'wait p95 ms',
    'wait max ms',
    'queue wait p95 ms',
    'heavy jobs queued when light began',
  ]);
  for (const mode of ['fair', 'fifo']) {
    for (const name of ['LightWaitP50Ms', 'LightWaitP95Ms', 'LightWaitMaxMs', 'LightQueueWaitP95Ms', 'HeavyWaitP95Ms'])
      assert.ok(`${mode}${name}` in result.metrics, `${mode}${name}`);
  }
  assert.ok('lightWaitP95FairOverFifo' in result.metrics);
});

test('batching --quick: a batch-cost provider with batching off vs on', { timeout: 180_000 }, async () => {
  const result = await runQuick('batching');
  assert.deepEqual(result.columns, [
    'batching',
    'jobs',
    'jobs/s',
    'e2e p50 ms',
    'e2e p95 ms',
    'e2e p99 ms',
    'mean batch size',
    'largest batch',
    'provider ceiling jobs/s',
  ]);
  for (const name of ['offJobsPerSec', 'onJobsPerSec', 'throughputRatio', 'offE2eP99Ms', 'onE2eP99Ms', 'meanBatchSize'])
    assert.ok(name in result.metrics, name);
});

test('limits --quick: provider calls/s and tokens/min against the configured limits', { timeout: 180_000 }, async () => {
  const result = await runQuick('limits');
  assert.deepEqual(result.columns, [
    'limit',
    'configured',
    'offered',
    'achieved',
    'achieved / configured',
    'busiest (1 s / 60 s)',
    'calls',
  ]);
  for (const name of ['achievedCallsPerSec', 'achievedTokensPerMinute', 'busiestMinuteTokens']) assert.ok(name in result.metrics, name);
  assert.ok(result.metrics.busiestMinuteTokens! <= result.metrics.configuredTokensPerMinute!, 'no 60 s held more tokens than the limit');
});

test('embedded-sqlite --quick: jobs/s under three SQLite settings', { timeout: 180_000 }, async () => {
  const result = await runQuick('embedded-sqlite');
  assert.deepEqual(result.columns, ['SQLite setting', 'jobs/s per round', 'median jobs/s', 'vs default']);
  for (const name of ['defaultJobsPerSec', 'walFullJobsPerSec', 'walNormalJobsPerSec', 'walFullRatio'])
    assert.ok(name in result.metrics, name);
});

test('autoscale --quick: a burst drained by the process autoscaler vs one fixed worker', { timeout: 180_000 }, async () => {
  const result = await runQuick('autoscale');
  assert.deepEqual(result.columns, [
    'side',
    'jobs',
    'drain s',
    'jobs/s',
    'peak workers',
    'first scale-up decision s',
    'first added worker polling s',
    'back at min s after drain',
    'worker-s until drained',
    'worker-s until back at min',
    'most attempts',
  ]);
  for (const name of [
    'firstWorkerPollingS',
    'autoDrainS',
    'fixedDrainS',
    'drainRatio',
    'backToMinS',
    'autoWorkerSecondsToMin',
    'fixedWorkerSecondsDrained',
  ]) {
    assert.ok(name in result.metrics, name);
  }
  assert.equal(result.metrics.maxAttempts, 1, 'no job needed a second attempt');
  assert.ok(result.metrics.peakWorkers! >= 2, `the burst added workers (peak ${result.metrics.peakWorkers})`);
});

test('chat --quick: conversations’ messages/s and latency at 1 and 2 inference workers', { timeout: 180_000 }, async () => {
  const result = await runQuick('chat');
  assert.deepEqual(result.columns, [
    'inference workers × slots',
    'conversations × messages',
    'messages/s',
    'vs 1 worker',
    'ideal messages/s',
    'latency p50 ms',
    'latency p99 ms',
    'CPU (share of one core)',
  ]);
  for (const workers of [1, 2]) {
    for (const name of ['MessagesPerSec', 'LatencyP50Ms', 'LatencyP99Ms'])
      assert.ok(`workers${workers}${name}` in result.metrics, `workers${workers}${name}`);
  }
});

test('document --quick: a document through the pipeline, chunks/s and its history', { timeout: 180_000 }, async () => {
  const result = await runQuick('document');
  assert.deepEqual(result.columns, [
    'maxParallel',
    'inference workers',
    'chunks',
    'seconds',
    'chunks/s',
    'runs (continue-as-new)',
    'history events',
    'history KB',
  ]);
  for (const name of ['chunks', 'historyEvents', 'historyBytes', 'parallel8Workers1ChunksPerSec']) assert.ok(name in result.metrics, name);
});

test('engine-cost --quick: the floor, its levers, Switchyard through the API and BullMQ in one table', { timeout: 300_000 }, async () => {
  const result = await runQuick('engine-cost');
  assert.equal(result.columns[0], 'row');
  for (const name of ['floorJobsPerSec', 'switchyardJobsPerSec', 'ratioToFloor', 'cpuRatioToFloor'])
    assert.ok(name in result.metrics, name);
});

test('cluster --quick: the embedded server vs the local cluster, then 2 workflow workers and 2 APIs', { timeout: 300_000 }, async () => {
  const result = await runQuick('cluster');
  assert.deepEqual(result.columns, [
    'phase',
    'target',
    'load',
    'jobs',
    'jobs/s',
    'e2e p50 ms',
    'e2e p99 ms',
    'server CPU ms/job',
    'Switchyard CPU ms/job',
    'server KB written/job',
  ]);
  for (const name of [
    'embeddedJobsPerSec',
    'clusterJobsPerSec',
    'clusterSlotsJobsPerSec',
    'clusterServerCpuMsPerJob',
    'clusterWrittenKbPerJob',
    'twoWorkflowWorkersRatio',
    'twoApisRatio',
  ])
    assert.ok(name in result.metrics, name);
});

test(
  'batch --quick: one batch through the API at 0 and 50 ms against BullMQ addBulk (always, everysec)',
  { timeout: 300_000 },
  async () => {
    const result = await runQuick('batch');
    assert.deepEqual(result.columns, [
      'row',
      'items',
      'upload + validation ms',
      'accepted → last item s',
      'items/s',
      '× BullMQ always',
      "× slots' ideal",
      'accepted → finished s',
      'history events/item',
      'CPU ms/item',
      'output',
    ]);
    assert.equal(result.rows.length, 6, 'Switchyard at 0 and 50 ms, BullMQ always and everysec at each');
    for (const ms of [0, 50]) {
      for (const name of [
        'switchyardItemsPerSec',
        'switchyardAcceptedToFinishedS',
        'switchyardEventsPerItem',
        'bullmqAlwaysItemsPerSec',
        'bullmqEverysecItemsPerSec',
      ])
        assert.ok(`${name}${ms}` in result.metrics, `${name}${ms}`);
    }
    for (const name of ['ratioToBullmqAlways0', 'ratioToIdeal50', 'uploadMs']) assert.ok(name in result.metrics, name);
  },
);

/**
 * engine-cost: what one job costs the engine, against Temporal's own floor — a bare one-activity workflow
 * on the same kind of server (bench/floor). Every row gets a fresh server and stack with the same settings
 * and runs the same three loads: throughput (8 slots × 50 ms, 64 in flight), idle (0-ms jobs one at a
 * time) and light (0-ms jobs at 20 req/s). Per row: jobs/s and its ratio to the floor, CPU ms per job of
 * every process, history events and bytes the server wrote per job, end-to-end and submit latency.
 */
import { completedJobs, waitForCompleted } from '../../testkit/jobs';
import { cpuUsed, sampleCpu } from '../lib/cpu';
import type { EngineLoad, EngineSide } from '../lib/engine-side';
import { assertNoErrors } from '../lib/load';
import type { Scenario, ScenarioResult } from '../lib/scenario';
import { round, summarize, throughput } from '../lib/stats';
import { startSwitchyardSide } from '../lib/switchyard-side';
import { diskWriteBytes } from '../lib/syscalls';
import { startFloorSide } from '../floor/side';
import { runBullmq, type BullmqRunResult } from '../bullmq/run';
import type { Appendfsync } from '../lib/redis';

const SLOTS = 8;
const LOADS = (scale: (n: number) => number) => ({
  throughput: { jobs: scale(1000), activityMs: 50, inFlight: 64 },
  idle: { jobs: scale(40), activityMs: 0, inFlight: 1 },
  light: { jobs: scale(200), activityMs: 0, ratePerSec: 20 },
});
type LoadName = keyof ReturnType<typeof LOADS>;
const SETTINGS = { full: LOADS((n) => n), quick: LOADS((n) => Math.ceil(n / 20)) };

/** Eager activity dispatch is a server setting (off by default); only rows that ask for it get it. */
const EAGER_ACTIVITY_SERVER = ['system.enableActivityEagerExecution=true'];

interface Row {
  label: string;
  start(log: (line: string) => void): Promise<EngineSide & { readBack?(ids: string[]): Promise<number> }>;
}

const floorRow = (label: string, lever: { eagerStart?: boolean; eagerActivity?: boolean; compression?: 'gzip' | 'none' } = {}): Row => ({
  label,
  start: (log) =>
    startFloorSide({
      slots: SLOTS,
      eagerStart: lever.eagerStart ?? false,
      eagerActivity: lever.eagerActivity ?? false,
      compression: lever.compression ?? 'gzip', // the SDK's default
      dynamicConfig: lever.eagerActivity ? EAGER_ACTIVITY_SERVER : undefined,
      log,
    }),
});

const switchyardRow = (label: string, env: Record<string, string> = {}): Row => ({
  label,
  start: (log) => startSwitchyardSide({ slots: SLOTS, latenciesMs: [0, 50], env, log }),
});

const SWITCHYARD = 'Switchyard through the API (npm start defaults)';
const ROWS: Row[] = [
  floorRow('floor: bare one-activity workflow (SDK defaults)'),
  floorRow('floor, no gRPC compression', { compression: 'none' }),
  floorRow('floor + eager workflow start', { eagerStart: true }),
  floorRow('floor + eager activity dispatch', { eagerActivity: true }),
  switchyardRow(SWITCHYARD),
  switchyardRow('Switchyard, workers on gzip gRPC (the SDK default)', { TEMPORAL_GRPC_COMPRESSION: 'gzip' }),
];

interface Figures {
  jobs: number;
  jobsPerSec: number;
  cpuMsPerJob: Record<string, number>;
  kbWrittenPerJob: number;
  eventsPerJob: number;
  e2e: ReturnType<typeof summarize>;
  submit: ReturnType<typeof summarize>;
}

/** Runs one load on a side and measures it from the first send to the last job closing. */
async function measure(side: EngineSide, load: EngineLoad, done: { count: number }): Promise<Figures> {
  const before = sampleCpu(side.processes());
  const bytesBefore = diskWriteBytes(side.serverPid) ?? NaN;
  const { ids, load: result } = await side.run(load);
  assertNoErrors('submitting', result);
  done.count += ids.length;
  await waitForCompleted(side.client, side.query, done.count, 120_000 + load.jobs * 200);
  const cpu = cpuUsed(before, sampleCpu(side.processes()));
  const written = (diskWriteBytes(side.serverPid) ?? NaN) - bytesBefore;
  const closed = await completedJobs(side.client, side.query);
  const closeOf = (id: string) => closed.get(id)!.closeMs;
  const spanMs = Math.max(...ids.map(closeOf)) - Math.min(...result.sentAt);
  const lengths = summarize(ids.map((id) => closed.get(id)!.historyLength));
  const cpuMsPerJob = Object.fromEntries(
    Object.entries(cpu)
      .filter(([name]) => !['machine', 'iowait'].includes(name))
      .map(([name, s]) => [name, round((1000 * s) / ids.length, 1)]),
  );
  return {
    jobs: ids.length,
    jobsPerSec: throughput(ids.length, spanMs),
    cpuMsPerJob,
    kbWrittenPerJob: written / 1024 / ids.length,
    eventsPerJob: lengths.p50,
    e2e: summarize(ids.map((id, i) => closeOf(id) - result.sentAt[i]!)),
    submit: summarize(result.latenciesMs),
  };
}

export const engineCost: Scenario = {
  name: 'engine-cost',
  description: "what a job costs the engine, beside Temporal's floor (a bare one-activity workflow): jobs/s, CPU, events, bytes, latency",
  async run({ quick, log }) {
    const loads = quick ? SETTINGS.quick : SETTINGS.full;
    const measured: { label: string; figures: Record<LoadName, Figures>; readBack: string }[] = [];
    for (const row of ROWS) {
      log(`${row.label}: starting`);
      const side = await row.start(log);
      try {
        const done = { count: 0 };
        const figures = {} as Record<LoadName, Figures>;
        for (const name of Object.keys(loads) as LoadName[]) {
          figures[name] = await measure(side, loads[name], done);
          log(`${row.label}, ${name}: ${round(figures[name].jobsPerSec)} jobs/s`);
        }
        const readBack = side.readBack ? await readAll(side, done.count) : 'n/a';
        measured.push({ label: row.label, figures, readBack });
      } finally {
        await side.stop();
      }
    }
    const bullmq: { label: string; result: BullmqRunResult }[] = [];
    for (const appendfsync of ['always', 'everysec'] as Appendfsync[]) {
      for (const load of [loads.throughput, { ...loads.throughput, activityMs: 0 }]) {
        const label = `BullMQ, appendfsync ${appendfsync}, ${SLOTS} slots × ${load.activityMs} ms`;
        log(`${label}: starting`);
        const result = await runBullmq({
          appendfsync,
          jobs: load.jobs,
          inFlight: load.inFlight,
          slots: SLOTS,
          latencyMs: load.activityMs,
          log,
        });
        bullmq.push({ label, result });
      }
    }
    return report(measured, bullmq, loads, quick);
  },
};

async function readAll(side: EngineSide & { readBack?(ids: string[]): Promise<number> }, count: number): Promise<string> {
  const ids = [...(await completedJobs(side.client, side.query)).keys()];
  const t0 = performance.now();
  const succeeded = await side.readBack!(ids);
  if (succeeded !== count) throw new Error(`read back ${succeeded} succeeded jobs of ${count}`);
  return `${count} in ${round((performance.now() - t0) / 1000)} s`;
}

function report(
  measured: { label: string; figures: Record<LoadName, Figures>; readBack: string }[],
  bullmq: { label: string; result: BullmqRunResult }[],
  loads: ReturnType<typeof LOADS>,
  quick: boolean,
): ScenarioResult {
  const floor = measured[0]!.figures;
  const totalCpu = (f: Figures) =>
    Object.entries(f.cpuMsPerJob).reduce((sum, [name, ms]) => (['bench', 'other'].includes(name) ? sum : sum + ms), 0);
  const rows = measured.map(({ label, figures: f }) => [
    label,
    round(f.throughput.jobsPerSec),
    round(f.throughput.jobsPerSec / floor.throughput.jobsPerSec, 2),
    round(totalCpu(f.throughput)),
    round(totalCpu(f.throughput) / totalCpu(floor.throughput), 2),
    f.throughput.eventsPerJob,
    round(f.throughput.kbWrittenPerJob),
    `${round(f.throughput.e2e.p50)} / ${round(f.throughput.e2e.p99)}`,
    round(f.idle.e2e.p50),
    round(f.idle.submit.p50),
    `${round(f.light.submit.p50)} / ${round(f.light.submit.p99)}`,
  ]);
  const sum = (ms: Record<string, number>) => Object.entries(ms).reduce((total, [name, v]) => (name === 'bench' ? total : total + v), 0);
  rows.push(
    ...bullmq.map(({ label, result: r }) => [
      label,
      round(r.jobsPerSec),
      round(r.jobsPerSec / floor.throughput.jobsPerSec, 2),
      round(sum(r.cpuMsPerJob), 2),
      round(sum(r.cpuMsPerJob) / totalCpu(floor.throughput), 3),
      '',
      round(r.bytesWrittenPerJob / 1024, 1),
      `${round(r.e2e.p50)} / ${round(r.e2e.p99)}`,
      '',
      '',
      '',
    ]),
  );
  const switchyard = measured.find((m) => m.label === SWITCHYARD)!.figures;
  const ratio = switchyard.throughput.jobsPerSec / floor.throughput.jobsPerSec;
  const cpuRatio = totalCpu(switchyard.throughput) / totalCpu(floor.throughput);
  const decided = (met: boolean) => (quick ? null : met);
  return {
    settings: {
      loads: Object.entries(loads).map(([name, l]) => `${name}: ${JSON.stringify(l)}`),
      slots: `${SLOTS} per pool (one inference worker process; the floor's one process has ${SLOTS} activity slots)`,
      server:
        'temporal server start-dev with a file-backed SQLite (WAL, synchronous=FULL), fresh for every row, as `switchyard up` runs it',
      switchyard:
        '1 workflow worker, 1 inference worker per pool, 1 API process (no API keys, LOG_LEVEL=warn); jobs sent through POST /v1/jobs',
      eagerActivity: `rows with eager activity dispatch run a server with ${EAGER_ACTIVITY_SERVER.join(' ')}`,
    },
    columns: [
      'row',
      'jobs/s',
      '× floor',
      'CPU ms/job',
      'CPU × floor',
      'events/job',
      'KB written/job',
      'e2e p50 / p99 ms',
      'idle e2e p50 ms',
      'idle submit p50 ms',
      'submit p50 / p99 at 20/s ms',
    ],
    rows,
    metrics: {
      floorJobsPerSec: floor.throughput.jobsPerSec,
      switchyardJobsPerSec: switchyard.throughput.jobsPerSec,
      ratioToFloor: ratio,
      cpuRatioToFloor: cpuRatio,
    },
    targets: [
      { name: 'jobs/s through the API', target: '≥ 0.9 × floor', measured: `${round(ratio, 2)} ×`, met: decided(ratio >= 0.9) },
      {
        name: 'CPU per job, all processes',
        target: "≤ 1.15 × the floor's",
        measured: `${round(cpuRatio, 2)} ×`,
        met: decided(cpuRatio <= 1.15),
      },
      {
        name: 'idle 0-ms job, accepted → finished, p50',
        target: "≤ floor's + 20 ms",
        measured: `${round(switchyard.idle.e2e.p50)} ms (floor ${round(floor.idle.e2e.p50)})`,
        met: decided(switchyard.idle.e2e.p50 <= floor.idle.e2e.p50 + 20),
      },
      {
        name: 'submit p50 idle / p99 at 20 req/s',
        target: '≤ 15 ms / ≤ 50 ms',
        measured: `${round(switchyard.idle.submit.p50)} / ${round(switchyard.light.submit.p99)} ms`,
        met: decided(switchyard.idle.submit.p50 <= 15 && switchyard.light.submit.p99 <= 50),
      },
    ],
    notes: [
      ...measured.map(
        ({ label, figures: f, readBack }) =>
          `${label} — CPU ms per job by process (throughput load): ${Object.entries(f.throughput.cpuMsPerJob)
            .map(([name, ms]) => `${name} ${ms}`)
            .join(', ')}; read back: ${readBack}.`,
      ),
      "Temporal rows: jobs/s from the first send to the last close; BullMQ rows: completions/s over the middle 80 % after a warm-up (bench/bullmq/run.ts), CPU without the producer's, KB written by redis-server.",
      "'other' is CPU of processes outside the row (the rest of the machine): large values mean the numbers are skewed.",
    ],
  };
}

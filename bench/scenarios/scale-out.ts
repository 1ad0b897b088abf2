/**
 * scale-out: jobs/s of one synthetic pool with 100-ms I/O-bound inference at 1, 2 and 4 inference worker
 * processes of fixed per-process concurrency. Each level drains a backlog started beforehand with the
 * Temporal client (the API is not in the way), so the rate is what the workers and server sustain.
 */
import { sampleCpu, cpuUsed, type CpuSample } from '../lib/cpu';
import { activityBacklog, completedJobs, jobsQuery, waitForCompleted } from '../../testkit/jobs';
import { assertNoErrors, closedLoop } from '../lib/load';
import type { Scenario, ScenarioTarget } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { round, steadyRate } from '../lib/stats';
import { jobBody, rawSubmitter, syntheticPool } from '../lib/submit';
import { eventually } from '../../testkit/wait';

const LATENCY_MS = 100;
const LEVELS = [1, 2, 4];
const CEILING_WORKERS = 4;
const SUBMIT_CONCURRENCY = 32;

const SETTINGS = {
  // `slots`: per-process concurrency of each series. 20 (a realistic I/O pool) shows the server's ceiling;
  // 1 keeps even 4 processes near or under it, so the workers' own scaling shows.
  full: { slotSeries: [20, 1], measureSeconds: 12, maxJobs: 800 },
  quick: { slotSeries: [2], measureSeconds: 1, maxJobs: 40 },
};

const poolName = (slots: number) => `io-${slots}`;
const CEILING_POOL = 'zero';

interface Level {
  pool: string;
  workers: number;
  slots: number;
  jobs: number;
  jobsPerSec: number;
  cpu: Record<string, number>;
  wallS: number;
}

/**
 * Starts `jobs` jobs on `pool` while it has no workers, waits until all their activities are queued,
 * then starts `workers` processes and measures how fast they drain it.
 */
async function drain(
  stack: BenchStack,
  pool: string,
  slots: number,
  workers: number,
  jobs: number,
  log: (l: string) => void,
): Promise<Level> {
  const submit = rawSubmitter(stack, jobBody(pool));
  const query = `${jobsQuery(stack.workflowTaskQueue)} AND JobPool = '${pool}'`;
  const earlier = (await stack.client.workflow.count(query)).count; // earlier levels' jobs on this pool, all completed
  const ids: string[] = [];
  const load = await closedLoop({ concurrency: SUBMIT_CONCURRENCY, count: jobs, fire: async (i) => void (ids[i] = await submit()) });
  assertNoErrors(`starting the ${pool} backlog`, load);
  await eventually(
    `${jobs} activities queued on ${pool}`,
    async () => (await activityBacklog(stack.client, stack.poolTaskQueue(pool))) >= jobs || undefined,
    120_000,
  );
  await stack.startWorkers(pool, workers);
  // Sampled once they poll, so their start-up (tsx, connecting) does not count as work on jobs.
  const before: CpuSample = sampleCpu(stack.processes());
  await waitForCompleted(stack.client, query, earlier + jobs, 60_000 + jobs * 200);
  const after = sampleCpu(stack.processes());
  await stack.stopWorkers(pool);
  const closed = await completedJobs(stack.client, query);
  const mine = new Set(ids);
  const closeTimes = [...closed].filter(([id]) => mine.has(id)).map(([, j]) => j.closeMs);
  const level = {
    pool,
    workers,
    slots,
    jobs,
    jobsPerSec: steadyRate(closeTimes),
    cpu: cpuUsed(before, after),
    wallS: (after.at - before.at) / 1000,
  };
  log(`${pool}: ${workers} worker(s) × ${slots} slots drained ${jobs} jobs at ${round(level.jobsPerSec)} jobs/s`);
  return level;
}

const share = (l: Level, role: string) => `${Math.round((100 * (l.cpu[role] ?? 0)) / l.wallS)}%`;
const cpuText = (l: Level) =>
  [
    `temporal ${share(l, 'temporal')}`,
    `workflows ${share(l, 'workflows')}`,
    `pool ${share(l, `pool:${l.pool}`)}`,
    `other ${share(l, 'other')}`,
    `I/O wait ${share(l, 'iowait')}`,
  ].join(' · ');

export const scaleOut: Scenario = {
  name: 'scale-out',
  description: `jobs/s of a ${LATENCY_MS}-ms I/O-bound synthetic pool at ${LEVELS.join(', ')} inference worker processes, and the server's ceiling (0-ms inference)`,
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const pools = Object.fromEntries([
      [CEILING_POOL, syntheticPool(20, 0)],
      ...s.slotSeries.map((slots) => [poolName(slots), syntheticPool(slots, LATENCY_MS)]),
    ]);
    const stack = await startBenchStack({ pools, poolWorkers: Object.fromEntries(Object.keys(pools).map((p) => [p, 0])), log });
    try {
      // Enough jobs for the measured seconds, and for every slot to run ten in turn (fewer is one burst, not a rate).
      const jobsFor = (rate: number, slots: number) => Math.round(Math.min(s.maxJobs, Math.max(10 * slots, rate * s.measureSeconds)));
      // The ceiling: 0-ms inference on plenty of slots, so only the server and the workflow worker limit it.
      const ceiling = await drain(stack, CEILING_POOL, 20, CEILING_WORKERS, jobsFor(Infinity, CEILING_WORKERS * 20), log);
      const levels: Level[] = [];
      for (const slots of s.slotSeries) {
        for (const workers of LEVELS) {
          const ideal = (workers * slots * 1000) / LATENCY_MS;
          levels.push(
            await drain(stack, poolName(slots), slots, workers, jobsFor(Math.min(ideal, ceiling.jobsPerSec), workers * slots), log),
          );
        }
      }
      return report(s, ceiling, levels, quick);
    } finally {
      await stack.stop();
    }
  },
};

function report(s: (typeof SETTINGS)['full'], ceiling: Level, levels: Level[], quick: boolean) {
  const base = (l: Level) => levels.find((b) => b.slots === l.slots && b.workers === 1)!;
  const ideal = (l: Level) => (l.workers * l.slots * 1000) / LATENCY_MS;
  // How long each slot took per job: the inference's 100 ms plus the round trip through the server to the next task.
  const slotCycleMs = (l: Level) => (l.workers * l.slots * 1000) / l.jobsPerSec;
  const rows = [
    ...levels.map((l) => [
      `${l.workers} × ${l.slots} slots, ${LATENCY_MS} ms`,
      l.jobs,
      round(l.jobsPerSec),
      round(l.jobsPerSec / base(l).jobsPerSec, 2),
      round(ideal(l)),
      round(slotCycleMs(l)),
      cpuText(l),
    ]),
    [`ceiling: ${ceiling.workers} × ${ceiling.slots} slots, 0 ms`, ceiling.jobs, round(ceiling.jobsPerSec), '', '', '', cpuText(ceiling)],
  ];
  // The 0-ms drain measures the ceiling, but a noisy moment can depress it: the server has shown it can do at least the best rate of the run.
  const top = [ceiling, ...levels].reduce((a, b) => (b.jobsPerSec > a.jobsPerSec ? b : a));
  const metrics: Record<string, number> = { ceilingJobsPerSec: ceiling.jobsPerSec, bestJobsPerSec: top.jobsPerSec };
  for (const l of levels) metrics[`slots${l.slots}Workers${l.workers}JobsPerSec`] = l.jobsPerSec;
  const targets: ScenarioTarget[] = [];
  for (const slots of s.slotSeries) {
    for (const [workers, want] of [
      [2, 1.8],
      [4, 3.4],
    ] as const) {
      const l = levels.find((x) => x.slots === slots && x.workers === workers)!;
      const ratio = l.jobsPerSec / base(l).jobsPerSec;
      metrics[`slots${slots}Ratio${workers}`] = ratio;
      // A miss where the slots could ask for more than the server does is the ceiling's, and the target
      // does not apply: the issue asks for it "until the server's own ceiling".
      const capped = ideal(l) >= 0.8 * top.jobsPerSec;
      targets.push({
        name: `${workers} workers × ${slots} slots vs 1`,
        target: `≥ ${want}× (below the ceiling)`,
        measured: `${round(ratio, 2)}× (${round(l.jobsPerSec)} jobs/s; ideal ${round(ideal(l))}, ceiling ≈ ${round(top.jobsPerSec)})`,
        met: quick ? null : ratio >= want ? true : capped ? null : false,
      });
    }
  }
  return {
    settings: {
      inference: `synthetic, ${LATENCY_MS} ms timer per call (I/O-like, no CPU)`,
      levels: LEVELS,
      slotsPerProcess: s.slotSeries,
      ceiling: `${CEILING_WORKERS} workers × 20 slots, 0-ms inference`,
      jobsPerLevel: `about ${s.measureSeconds} s of work at the expected rate, at least 10 per slot, at most ${s.maxJobs}`,
      method:
        'backlog started with the Temporal client while the pool has no workers; workers start once every activity is queued; jobs/s over the middle 80 % of completions',
      server: 'temporal server start-dev, file-backed SQLite (as `switchyard up`); 1 workflow worker process',
    },
    columns: ['workers × slots', 'jobs', 'jobs/s', 'vs 1 worker', 'ideal jobs/s', 'ms per job per slot', 'CPU (share of one core)'],
    rows,
    metrics,
    targets,
    notes: [
      `The server's ceiling in this run: ≈ ${round(top.jobsPerSec)} jobs/s, the best rate of any drain (${top === ceiling ? 'the 0-ms one' : `${top.workers} × ${top.slots} slots`}); there the CPU was ${cpuText(top)}.`,
      'Ideal = workers × slots × 1000 / latency: what the slots could do if orchestration cost nothing. A level whose ideal is at or above the ceiling is capped by the server and workflow worker, not by the inference workers.',
      `"ms per job per slot" is ${LATENCY_MS} ms of inference plus the trip through the server to the slot's next task (completion, dispatch from the backlog); where it grows with the workers, the server's queueing is what keeps the ratio under the ideal.`,
      '"other" is CPU used by processes outside this benchmark while the level ran; "I/O wait" is time cores sat waiting for the disk.',
    ],
  };
}

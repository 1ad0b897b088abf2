/**
 * fairness: how long a light tenant's jobs wait while a heavy tenant floods the same pool — with
 * Temporal's fairness (the tenant as fairness key, as the API starts jobs) and without it (the same
 * start options minus the fairness key: first come, first served within a priority). The two run one
 * after the other on identical pools of one server. Waits are the server's own timestamps: job accepted
 * (WorkflowExecutionStarted) → inference started (ActivityTaskStarted), from each job's history.
 */
import { dispatchTimes, type DispatchTimes } from '../../testkit/dispatch';
import { jobsQuery, waitForCompleted } from '../../testkit/jobs';
import { assertNoErrors, closedLoop, openLoop } from '../lib/load';
import type { Scenario, ScenarioResult } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { round, summarize, type Summary } from '../lib/stats';
import { jobBody, rawSubmitter, syntheticPool } from '../lib/submit';

const SLOTS = 4;
const LATENCY_MS = 400;
/** Jobs/s the pool can run: well under the dev server's ceiling, so the pool's queue is where jobs wait. */
const CAPACITY_PER_S = (SLOTS * 1000) / LATENCY_MS;
const FLOOD_CONCURRENCY = 32;
const HEAVY = 'heavy';
const LIGHT = 'light';
const WARM_UP = 'warm-up';

const SETTINGS = {
  full: { heavyJobs: 600, lightJobs: 40, lightPerSec: 1, warmUpJobsPerPool: 50 },
  quick: { heavyJobs: 40, lightJobs: 5, lightPerSec: 4, warmUpJobsPerPool: 20 },
};
type Settings = (typeof SETTINGS)['full'];

const MODES = { fair: 'fairness (tenant as fairness key)', fifo: 'no fairness (first come, first served)' } as const;
type Mode = keyof typeof MODES;

interface Waits {
  /** Accepted → inference started. */
  total: Summary;
  /** Of that, in the pool's queue: inference scheduled → started. */
  queue: Summary;
}

interface Phase {
  mode: Mode;
  heavy: Waits;
  light: Waits;
  /** Heavy jobs not yet started when the first light job arrived: the backlog the light tenant faced. */
  heavyBacklog: number;
}

const waits = (times: DispatchTimes[]): Waits => ({
  total: summarize(times.map((t) => t.startedMs - t.acceptedMs)),
  queue: summarize(times.map((t) => t.startedMs - t.queuedMs)),
});

/**
 * A flood through every pool first, so the first mode does not pay for the workers' and server's warm-up
 * (a first burst of workflows is markedly slower than later ones).
 */
async function warmUp(stack: BenchStack, jobsPerPool: number): Promise<void> {
  for (const mode of Object.keys(MODES)) {
    const submit = rawSubmitter(stack, jobBody(mode), { tenant: WARM_UP });
    assertNoErrors(`warming up ${mode}`, await closedLoop({ concurrency: FLOOD_CONCURRENCY, count: jobsPerPool, fire: () => submit() }));
  }
  const total = jobsPerPool * Object.keys(MODES).length;
  await waitForCompleted(
    stack.client,
    `${jobsQuery(stack.workflowTaskQueue)} AND JobTenant = '${WARM_UP}'`,
    total,
    60_000 + (3 * total * 1000) / CAPACITY_PER_S,
  );
}

/** The heavy tenant floods the mode's pool, then the light tenant sends a steady trickle while the flood drains. */
async function runPhase(stack: BenchStack, mode: Mode, s: Settings, log: (line: string) => void): Promise<Phase> {
  const body = jobBody(mode);
  const fair = mode === 'fair';
  const heavy = rawSubmitter(stack, body, { tenant: HEAVY, fair });
  const light = rawSubmitter(stack, body, { tenant: LIGHT, fair });
  const heavyIds: string[] = [];
  const lightIds: string[] = [];
  assertNoErrors(
    `${mode}: the heavy tenant's flood`,
    await closedLoop({ concurrency: FLOOD_CONCURRENCY, count: s.heavyJobs, fire: async (i) => void (heavyIds[i] = await heavy()) }),
  );
  assertNoErrors(
    `${mode}: the light tenant's jobs`,
    await openLoop({ ratePerSec: s.lightPerSec, count: s.lightJobs, fire: async (i) => void (lightIds[i] = await light()) }),
  );
  const total = s.heavyJobs + s.lightJobs;
  const query = `${jobsQuery(stack.workflowTaskQueue)} AND JobPool = '${mode}' AND JobTenant IN ('${HEAVY}', '${LIGHT}')`;
  await waitForCompleted(stack.client, query, total, 60_000 + (3 * total * 1000) / CAPACITY_PER_S);
  const heavyTimes = await dispatchTimes(stack.client, heavyIds);
  const lightTimes = await dispatchTimes(stack.client, lightIds);
  const lightArrived = Math.min(...lightTimes.map((t) => t.acceptedMs));
  const phase = {
    mode,
    heavy: waits(heavyTimes),
    light: waits(lightTimes),
    heavyBacklog: heavyTimes.filter((t) => t.startedMs > lightArrived).length,
  };
  log(`${mode}: light tenant waited p95 ${round(phase.light.total.p95)} ms with ${phase.heavyBacklog} heavy jobs queued ahead`);
  return phase;
}

export const fairness: Scenario = {
  name: 'fairness',
  description: "a light tenant's wait (p50/p95/max) while a heavy tenant floods the same pool, with and without Temporal's fairness",
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const pools = Object.fromEntries(Object.keys(MODES).map((mode) => [mode, syntheticPool(SLOTS, LATENCY_MS)]));
    const stack = await startBenchStack({ pools, log });
    try {
      await warmUp(stack, s.warmUpJobsPerPool);
      const phases: Phase[] = [];
      for (const mode of Object.keys(MODES) as Mode[]) phases.push(await runPhase(stack, mode, s, log));
      return report(s, phases, quick);
    } finally {
      await stack.stop();
    }
  },
};

function report(s: Settings, phases: Phase[], quick: boolean): ScenarioResult {
  const [fair, fifo] = (['fair', 'fifo'] as const).map((m) => phases.find((p) => p.mode === m)!);
  const row = (p: Phase, tenant: string, w: Waits) => [
    MODES[p.mode],
    tenant,
    w.total.count,
    round(w.total.p50),
    round(w.total.p95),
    round(w.total.max),
    round(w.queue.p95),
    p.heavyBacklog,
  ];
  const metrics: Record<string, number> = {};
  for (const p of phases) {
    metrics[`${p.mode}LightWaitP50Ms`] = p.light.total.p50;
    metrics[`${p.mode}LightWaitP95Ms`] = p.light.total.p95;
    metrics[`${p.mode}LightWaitMaxMs`] = p.light.total.max;
    metrics[`${p.mode}LightQueueWaitP95Ms`] = p.light.queue.p95;
    metrics[`${p.mode}HeavyWaitP95Ms`] = p.heavy.total.p95;
    metrics[`${p.mode}HeavyBacklog`] = p.heavyBacklog;
  }
  const ratio = fair!.light.total.p95 / fifo!.light.total.p95;
  metrics.lightWaitP95FairOverFifo = ratio;
  return {
    settings: {
      pool: `synthetic, ${SLOTS} slots × ${LATENCY_MS} ms per call = ${CAPACITY_PER_S} jobs/s, one worker process per mode`,
      heavyTenant: `${s.heavyJobs} jobs started at once (${FLOOD_CONCURRENCY} starts in flight)`,
      lightTenant: `${s.lightJobs} jobs at ${s.lightPerSec}/s, sent once the flood is in`,
      modes: MODES,
      wait: 'job accepted (WorkflowExecutionStarted) → inference started (last ActivityTaskStarted); queue wait: ActivityTaskScheduled → ActivityTaskStarted; server timestamps from history',
      warmUp: `${s.warmUpJobsPerPool} jobs per pool, flooded, before the phases`,
      server:
        'temporal server start-dev, file-backed SQLite, matching.enableFairness=true, one task-queue partition; 1 workflow worker process',
    },
    columns: [
      'mode',
      'tenant',
      'jobs',
      'wait p50 ms',
      'wait p95 ms',
      'wait max ms',
      'queue wait p95 ms',
      'heavy jobs queued when light began',
    ],
    rows: phases.flatMap((p) => [row(p, HEAVY, p.heavy), row(p, LIGHT, p.light)]),
    metrics,
    targets: [
      {
        name: "light tenant's p95 wait while the heavy one floods",
        target: 'with fairness ≤ 0.2 × without',
        measured: `${round(fair!.light.total.p95)} ms vs ${round(fifo!.light.total.p95)} ms (${round(ratio, 3)}×)`,
        met: quick ? null : ratio <= 0.2,
      },
    ],
    notes: [
      `Without fairness a light job waits for every heavy job queued before it: about backlog ÷ ${CAPACITY_PER_S} jobs/s. With fairness it waits for about one free slot, whatever the backlog.`,
      'The wait also holds the workflow task that schedules the inference (accepted → queued); the heavy flood loads the workflow worker as well, and fairness applies on the workflow task queue too.',
      "The heavy tenant's own waits barely change: it gives up only the light tenant's share of the slots, and only while the light tenant has work waiting.",
      '"no fairness" starts the same workflows with the same options minus the fairness key and weight; everything else (pool, server, workers) is identical.',
    ],
  };
}

/**
 * overhead: what the HTTP API costs on top of starting the same workflow with the Temporal client.
 * Both paths run against one server and the same workers, in alternating rounds (raw, api, raw, api…),
 * with 0-ms synthetic inference so only orchestration is measured.
 */
import { cpuUsed, sampleCpu } from '../lib/cpu';
import { completedJobs, historyEventTypes, jobsQuery, waitForCompleted, type ClosedJob } from '../../testkit/jobs';
import { assertNoErrors, closedLoop, openLoop, type LoadResult } from '../lib/load';
import type { Scenario, ScenarioResult } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { apiSubmitter, jobBody, rawSubmitter, syntheticPool } from '../lib/submit';
import { round, summarize, throughput } from '../lib/stats';

const POOL = 'bench';
const BODY = jobBody(POOL);
/** Events a one-activity workflow cannot do without (performance-anchors §4). */
const MINIMUM_EVENTS = 11;
const CPU_ROLES = ['temporal', 'workflows', `pool:${POOL}`, 'api', 'bench'];

/** One way of loading the system; each runs in rounds that alternate between the two paths. */
interface Phase {
  key: 'throughput' | 'target' | 'light';
  label: string;
  rounds: number;
  jobsPerRound: number;
  /** Closed loop: submits in flight. */
  concurrency?: number;
  /** Open loop: arrivals per second. */
  ratePerSec?: number;
}

const phases = (jobs: (full: number) => number, rounds: number): Phase[] => [
  { key: 'throughput', label: 'closed loop, 32 in flight', rounds, jobsPerRound: jobs(300), concurrency: 32 },
  { key: 'target', label: 'open loop, 100 req/s', rounds: Math.ceil(rounds / 2), jobsPerRound: jobs(500), ratePerSec: 100 },
  // Under the server's ceiling, so the submit path's own cost shows without queueing in the server.
  { key: 'light', label: 'open loop, 20 req/s', rounds: Math.ceil(rounds / 2), jobsPerRound: jobs(100), ratePerSec: 20 },
];
const SETTINGS = {
  full: { warmupJobs: 50, phases: phases((n) => n, 4) },
  quick: { warmupJobs: 5, phases: phases((n) => Math.ceil(n / 10), 1) },
};

type PathName = 'raw' | 'api';
const PATHS: Record<PathName, string> = { raw: 'Temporal client (raw)', api: 'HTTP API' };
interface Round {
  path: PathName;
  phase: Phase;
  load: LoadResult;
  ids: string[];
  cpu: Record<string, number>;
  wallS: number;
}

export const overhead: Scenario = {
  name: 'overhead',
  description:
    'jobs through the HTTP API vs the same workflow started with the Temporal client: throughput, submit and end-to-end latency, history events',
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const stack = await startBenchStack({ pools: { [POOL]: syntheticPool(100, 0) }, api: true, log });
    try {
      const submit: Record<PathName, () => Promise<string>> = { raw: rawSubmitter(stack, BODY), api: apiSubmitter(stack, BODY) };
      const query = jobsQuery(stack.workflowTaskQueue);
      let accepted = 0;
      const runRound = async (path: PathName, phase: Phase, count = phase.jobsPerRound): Promise<Round> => {
        const ids: string[] = [];
        const fire = async (i: number) => void (ids[i] = await submit[path]());
        const before = sampleCpu(stack.processes());
        const load = await (phase.ratePerSec
          ? openLoop({ ratePerSec: phase.ratePerSec, count, fire })
          : closedLoop({ concurrency: phase.concurrency ?? 1, count, fire }));
        assertNoErrors(`${path}, ${phase.label}`, load);
        accepted += count;
        await waitForCompleted(stack.client, query, accepted, 120_000 + count * 200);
        const after = sampleCpu(stack.processes());
        log(`${path}, ${phase.label}: ${count} jobs done`);
        return { path, phase, load, ids, cpu: cpuUsed(before, after), wallS: (after.at - before.at) / 1000 };
      };

      log(`warm-up: ${s.warmupJobs} jobs on each path`);
      for (const path of ['raw', 'api'] as const) await runRound(path, s.phases[0]!, s.warmupJobs);
      const rounds: Round[] = [];
      for (const phase of s.phases) {
        for (let i = 0; i < phase.rounds; i++) for (const path of ['raw', 'api'] as const) rounds.push(await runRound(path, phase));
      }
      const closed = await completedJobs(stack.client, query);
      const history = await historyLengths(stack, closed, rounds);
      return report(s, rounds, closed, history, quick);
    } finally {
      await stack.stop();
    }
  },
};

/**
 * History lengths over every measured job, and the event types of a typical one (the most common
 * length) and of the longest (a job that needed more, e.g. a workflow task that timed out).
 */
async function historyLengths(stack: BenchStack, closed: Map<string, ClosedJob>, rounds: Round[]) {
  const measured = rounds.flatMap((r) => r.ids);
  const counts = new Map<number, number>();
  for (const id of measured) counts.set(closed.get(id)!.historyLength, (counts.get(closed.get(id)!.historyLength) ?? 0) + 1);
  const typical = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  const longest = Math.max(...counts.keys());
  const example = (length: number) =>
    historyEventTypes(
      stack.client,
      measured.find((id) => closed.get(id)!.historyLength === length)!,
    );
  return { typical, counts, events: await example(typical), longest: longest > typical ? await example(longest) : null };
}

/** The figures of one path under one phase. */
function figures(rounds: Round[], closed: Map<string, ClosedJob>) {
  const closeOf = (id: string) => closed.get(id)?.closeMs ?? NaN;
  // A round runs from its first send to its last job closing: the whole system's rate, not the submit path's alone.
  const spanMs = rounds.reduce((sum, r) => sum + Math.max(...r.ids.map(closeOf)) - Math.min(...r.load.sentAt), 0);
  const jobs = rounds.reduce((sum, r) => sum + r.ids.length, 0);
  const cpuMsPerJob = (role: string) => round((1000 * rounds.reduce((sum, r) => sum + (r.cpu[role] ?? 0), 0)) / jobs, 1);
  return {
    jobs,
    jobsPerSec: throughput(jobs, spanMs),
    submit: summarize(rounds.flatMap((r) => r.load.latenciesMs)),
    e2e: summarize(rounds.flatMap((r) => r.ids.map((id, i) => closeOf(id) - r.load.sentAt[i]!))),
    cpu: CPU_ROLES.map((role) => `${role} ${cpuMsPerJob(role)}`).join(', '),
    /** Share of one core, on average over the rounds. */
    share: (key: string) =>
      Math.round((100 * rounds.reduce((sum, r) => sum + (r.cpu[key] ?? 0), 0)) / rounds.reduce((sum, r) => sum + r.wallS, 0)),
  };
}

function report(
  s: (typeof SETTINGS)['full'],
  rounds: Round[],
  closed: Map<string, ClosedJob>,
  history: Awaited<ReturnType<typeof historyLengths>>,
  quick: boolean,
): ScenarioResult {
  const of = (path: PathName, key: Phase['key']) =>
    figures(
      rounds.filter((r) => r.path === path && r.phase.key === key),
      closed,
    );
  const f = {
    raw: { throughput: of('raw', 'throughput'), target: of('raw', 'target'), light: of('raw', 'light') },
    api: { throughput: of('api', 'throughput'), target: of('api', 'target'), light: of('api', 'light') },
  };
  const ratio = f.api.throughput.jobsPerSec / f.raw.throughput.jobsPerSec;
  const { typical, events } = history;
  const rows = s.phases.flatMap((phase) =>
    (['raw', 'api'] as const).map((path) => {
      const x = f[path][phase.key];
      return [
        PATHS[path],
        phase.label,
        x.jobs,
        round(x.jobsPerSec),
        round(x.submit.p50),
        round(x.submit.p95),
        round(x.submit.p99),
        round(x.e2e.p50),
        round(x.e2e.p99),
      ];
    }),
  );
  rows.splice(2, 0, ['API / raw', s.phases[0]!.label, '', round(ratio, 3), '', '', '', '', '']);
  const target = f.api.target;
  return {
    settings: {
      phases: s.phases.map((p) => `${p.label}: ${p.rounds} × ${p.jobsPerRound} jobs per path`),
      warmupJobs: s.warmupJobs,
      order: 'rounds alternate raw, api, raw, api…; each round waits for its jobs to complete',
      pool: 'synthetic, 0 ms, 100 slots; 1 workflow worker, 1 pool worker, 1 API process (no API keys, LOG_LEVEL=warn)',
      server: 'temporal server start-dev with a file-backed SQLite, as `switchyard up` runs it',
    },
    columns: ['path', 'load', 'jobs', 'jobs/s', 'submit p50 ms', 'submit p95 ms', 'submit p99 ms', 'e2e p50 ms', 'e2e p99 ms'],
    rows,
    metrics: {
      rawJobsPerSec: f.raw.throughput.jobsPerSec,
      apiJobsPerSec: f.api.throughput.jobsPerSec,
      throughputRatio: ratio,
      rawSubmitP99Ms: f.raw.target.submit.p99,
      apiSubmitP50Ms: target.submit.p50,
      apiSubmitP95Ms: target.submit.p95,
      apiSubmitP99Ms: target.submit.p99,
      apiE2eP50Ms: target.e2e.p50,
      apiE2eP99Ms: target.e2e.p99,
      rawSubmitP99MsLight: f.raw.light.submit.p99,
      apiSubmitP99MsLight: f.api.light.submit.p99,
      historyEvents: typical,
    },
    targets: [
      {
        name: 'API throughput',
        target: '≥ 0.95 × raw',
        measured: `${round(ratio, 3)} × (${round(f.api.throughput.jobsPerSec)} vs ${round(f.raw.throughput.jobsPerSec)} jobs/s)`,
        met: quick ? null : ratio >= 0.95,
      },
      {
        name: 'API submit p99 at 100 req/s (open loop)',
        target: '≤ 25 ms',
        measured: `${round(target.submit.p99)} ms (raw client: ${round(f.raw.target.submit.p99)} ms)`,
        met: quick ? null : target.submit.p99 <= 25,
      },
      {
        name: 'history events per job',
        target: `${MINIMUM_EVENTS}, a bare one-activity workflow's`,
        measured: String(typical),
        met: typical <= MINIMUM_EVENTS,
      },
    ],
    notes: [
      `History events per job (both paths): ${[...history.counts]
        .sort((a, b) => a[0] - b[0])
        .map(([n, jobs]) => `${n} events × ${jobs} jobs`)
        .join(', ')}. A typical job: ${events.join(', ')}.`,
      ...(history.longest ? [`The longest history: ${history.longest.join(', ')}.`] : []),
      `CPU ms per job in the closed-loop rounds (from /proc): raw — ${f.raw.throughput.cpu}; API — ${f.api.throughput.cpu}. Meanwhile processes outside the benchmark used ${f.api.throughput.share('other')} % of a core, and cores sat ${f.api.throughput.share('iowait')} % of one core's time waiting for the disk.`,
      'Open-loop submit latency counts from when each request was due, so a stall also counts against the requests it delays; end-to-end latency runs from that moment to the close time Temporal records.',
    ],
  };
}

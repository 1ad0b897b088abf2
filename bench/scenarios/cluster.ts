/**
 * cluster: the embedded dev server against the local multi-service cluster on PostgreSQL (`switchyard cluster
 * up`), the same loads through the API in one run — jobs/s, end-to-end latency, CPU ms per job of each process
 * (the dev server; each Temporal service and PostgreSQL's processes summed; Switchyard's) and what the server
 * wrote to disk per job — then, on the cluster, one workflow worker process against two and one API process
 * against two. A running cluster is used as it is; otherwise the run brings one up and stops it at the end.
 */
import { cpuUsed, sampleCpu } from '../lib/cpu';
import { assertNoErrors, closedLoop, type LoadResult } from '../lib/load';
import type { Scenario, ScenarioResult } from '../lib/scenario';
import { round, summarize, throughput } from '../lib/stats';
import { apiSubmitter, jobBody, syntheticPool } from '../lib/submit';
import { diskWriteBytes } from '../lib/syscalls';
import { startBenchStack, type BenchStack, type BenchStackOptions } from '../../testkit/bench-stack';
import { clusterProcesses, useLocalCluster } from '../../testkit/cluster';
import { onInterrupt } from '../../testkit/interrupts';
import { completedJobs, jobsQuery, waitForCompleted, type ClosedJob } from '../../testkit/jobs';

const SUBMIT_CONCURRENCY = 32;
/** The overhead scenario's load (0-ms inference on 100 slots) and a pool that does work: 8 slots × 50 ms. */
const LOADS = [
  { pool: 'zero', label: '0 ms × 100 slots' },
  { pool: 'slots', label: '50 ms × 8 slots' },
] as const;
type Load = (typeof LOADS)[number];
const POOLS = { zero: syntheticPool(100, 0), slots: syntheticPool(8, 50) };

const SETTINGS = {
  full: { rounds: 3, jobs: 300, warmupJobs: 30 },
  quick: { rounds: 1, jobs: 30, warmupJobs: 5 },
};

/** A stack measured on its own: its server and how many workflow worker and API processes it runs. */
interface Target {
  server: 'embedded' | 'cluster';
  workflowWorkers: number;
  apis: number;
  stack: BenchStack;
  /** Jobs started on it so far, all completed. */
  started: number;
  /** Its completed jobs, read once its rounds are over. */
  closed?: Map<string, ClosedJob>;
}

interface Round {
  target: Target;
  load: Load;
  phase: 'server' | 'processes';
  result: LoadResult;
  ids: string[];
  cpu: Record<string, number>;
  /** Bytes the server's processes wrote to storage; NaN where /proc cannot tell. */
  written: number;
  /** From before the first submit to after the last job completed: the span of the CPU samples. */
  wallS: number;
}

const isServer = (name: string) => name === 'temporal' || name.startsWith('temporal-') || name === 'postgres';
const isSwitchyard = (name: string) => name === 'workflows' || name === 'api' || name.startsWith('pool:');

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const describe = (t: Pick<Target, 'server' | 'workflowWorkers' | 'apis'>) =>
  t.server === 'embedded' ? 'embedded dev server' : `cluster, ${plural(t.workflowWorkers, 'workflow worker')} × ${plural(t.apis, 'API')}`;

async function runRound(target: Target, load: Load, count: number, log: (l: string) => void): Promise<Omit<Round, 'phase'>> {
  const { stack } = target;
  const submit = apiSubmitter(stack, jobBody(load.pool));
  const ids: string[] = [];
  const serverWritten = () =>
    stack
      .processes()
      .filter((p) => isServer(p.name))
      .reduce((sum, p) => sum + (diskWriteBytes(p.pid, p.withChildren) ?? NaN), 0);
  const [before, writtenBefore] = [sampleCpu(stack.processes()), serverWritten()];
  const result = await closedLoop({ concurrency: SUBMIT_CONCURRENCY, count, fire: async (i) => void (ids[i] = await submit()) });
  assertNoErrors(`${describe(target)}, ${load.label}`, result);
  target.started += count;
  await waitForCompleted(stack.client, jobsQuery(stack.workflowTaskQueue), target.started, 120_000 + count * 200);
  const [after, writtenAfter] = [sampleCpu(stack.processes()), serverWritten()];
  log(`${describe(target)}, ${load.label}: ${count} jobs done`);
  return {
    target,
    load,
    result,
    ids,
    cpu: cpuUsed(before, after),
    written: writtenAfter - writtenBefore,
    wallS: (after.at - before.at) / 1000,
  };
}

export const cluster: Scenario = {
  name: 'cluster',
  description:
    'the embedded dev server vs the local multi-service cluster on PostgreSQL, same loads through the API: jobs/s, e2e latency, CPU ms and bytes written per job by process; then 2 workflow workers, 2 APIs on the cluster',
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const local = await useLocalCluster(log);
    const unregister = onInterrupt(() => local.release());
    const targets: Target[] = [];
    const stopTarget = async (t: Target) => {
      t.closed ??= await completedJobs(t.stack.client, jobsQuery(t.stack.workflowTaskQueue));
      await t.stack.stop();
    };
    try {
      const processes = await clusterProcesses(local.dir);
      const start = async (t: Omit<Target, 'stack' | 'started'>, opts: Partial<BenchStackOptions> = {}): Promise<Target> => {
        const stack = await startBenchStack({
          pools: POOLS,
          api: true,
          workflowWorkers: t.workflowWorkers,
          apiProcesses: t.apis,
          log,
          ...opts,
        });
        const target: Target = { ...t, stack, started: 0 };
        targets.push(target);
        for (const load of LOADS) await runRound(target, load, s.warmupJobs, log);
        return target;
      };
      const onCluster = { server: { address: local.state.address, processes: () => processes } };
      const rounds: Round[] = [];
      const measure = async (phase: Round['phase'], group: Target[], loads: readonly Load[]) => {
        for (let r = 0; r < s.rounds; r++) {
          // Each round in another order, so a machine that gets busier or quieter does not favour one target.
          const order = [...group.slice(r % group.length), ...group.slice(0, r % group.length)];
          for (const load of loads) for (const t of order) rounds.push({ phase, ...(await runRound(t, load, s.jobs, log)) });
        }
      };

      const embedded = await start({ server: 'embedded', workflowWorkers: 1, apis: 1 });
      const baseline = await start({ server: 'cluster', workflowWorkers: 1, apis: 1 }, onCluster);
      await measure('server', [embedded, baseline], LOADS);
      await stopTarget(embedded); // the rest runs on the cluster alone
      const twoWorkers = await start({ server: 'cluster', workflowWorkers: 2, apis: 1 }, onCluster);
      const twoApis = await start({ server: 'cluster', workflowWorkers: 1, apis: 2 }, onCluster);
      await measure('processes', [baseline, twoWorkers, twoApis], [LOADS[0]]);
      for (const t of targets) await stopTarget(t);
      return report(s, rounds, local.wasUp, quick);
    } finally {
      await Promise.all(targets.map((t) => t.stack.stop()));
      await local.release();
      unregister();
    }
  },
};

/** The figures of a target under one load in one phase. */
function figures(rounds: Round[]) {
  const closed = rounds[0]!.target.closed!;
  const closeOf = (id: string) => closed.get(id)?.closeMs ?? NaN;
  // A round runs from its first send to its last job closing: the whole system's rate.
  const spanMs = rounds.reduce((sum, r) => sum + Math.max(...r.ids.map(closeOf)) - Math.min(...r.result.sentAt), 0);
  const jobs = rounds.reduce((sum, r) => sum + r.ids.length, 0);
  const wallS = rounds.reduce((sum, r) => sum + r.wallS, 0);
  /** CPU seconds summed over the rounds and the processes `keep` names. */
  const cpu = (keep: (name: string) => boolean) =>
    rounds.flatMap((r) => Object.entries(r.cpu)).reduce((total, [name, s]) => (keep(name) ? total + s : total), 0);
  const cpuMsPerJob = (keep: (name: string) => boolean) => (1000 * cpu(keep)) / jobs;
  const names = [...new Set(rounds.flatMap((r) => Object.keys(r.cpu)))].filter((n) => isServer(n) || isSwitchyard(n)).sort();
  return {
    jobs,
    jobsPerSec: throughput(jobs, spanMs),
    e2e: summarize(rounds.flatMap((r) => r.ids.map((id, i) => closeOf(id) - r.result.sentAt[i]!))),
    serverCpuMs: cpuMsPerJob(isServer),
    switchyardCpuMs: cpuMsPerJob(isSwitchyard),
    writtenKb: rounds.reduce((sum, r) => sum + r.written, 0) / 1024 / jobs,
    byProcess: names
      .map(
        (n) =>
          `${n} ${round(
            cpuMsPerJob((x) => x === n),
            1,
          )}`,
      )
      .join(', '),
    /** Share of one core that other processes on the machine took meanwhile. */
    otherShare: Math.round((100 * cpu((n) => n === 'other')) / wallS),
  };
}

function report(s: (typeof SETTINGS)['full'], rounds: Round[], wasUp: boolean, quick: boolean): ScenarioResult {
  const groups = new Map<string, Round[]>();
  for (const r of rounds) {
    const key = `${r.phase}|${describe(r.target)}|${r.load.pool}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  const fig = new Map<string, ReturnType<typeof figures>>();
  for (const [key, group] of groups) {
    const f = figures(group);
    fig.set(key, f);
    const { target, load, phase } = group[0]!;
    rows.push([
      phase === 'server' ? 'embedded vs cluster' : 'processes on the cluster',
      describe(target),
      load.label,
      f.jobs,
      round(f.jobsPerSec),
      round(f.e2e.p50),
      round(f.e2e.p99),
      round(f.serverCpuMs, 1),
      round(f.switchyardCpuMs, 1),
      round(f.writtenKb, 1),
    ]);
    notes.push(
      `CPU ms per job, ${describe(target)}, ${load.label}: ${f.byProcess} (other processes on the machine: ${f.otherShare} % of a core).`,
    );
  }
  const at = (phase: Round['phase'], t: Parameters<typeof describe>[0], pool: Load['pool']) => fig.get(`${phase}|${describe(t)}|${pool}`)!;
  const embedded = (pool: Load['pool']) => at('server', { server: 'embedded', workflowWorkers: 1, apis: 1 }, pool);
  const onCluster = (pool: Load['pool']) => at('server', { server: 'cluster', workflowWorkers: 1, apis: 1 }, pool);
  const processes = (workflowWorkers: number, apis: number) => at('processes', { server: 'cluster', workflowWorkers, apis }, 'zero');
  return {
    settings: {
      loads: LOADS.map((l) => `${l.label}: synthetic inference, 1 pool worker process`).join('; '),
      jobs: `${s.rounds} rounds × ${s.jobs} jobs per target and load, after ${s.warmupJobs} warm-up jobs; POST /v1/jobs, ${SUBMIT_CONCURRENCY} in flight`,
      order:
        'embedded and cluster alternate within each load; then 1×1, 2 workflow workers×1 API and 1×2 on the cluster in turn, 0-ms load',
      embedded: 'temporal server start-dev, file-backed SQLite with WAL and synchronous=FULL, as `switchyard up` runs it',
      cluster: `switchyard cluster up: frontend, history, matching and worker as processes, 8 history shards, PostgreSQL (${wasUp ? 'running before the run' : 'brought up for the run'})`,
      cpu: 'per process from /proc (PostgreSQL: the postmaster and every backend, those that ended included); bytes written: write_bytes of /proc/<pid>/io',
    },
    columns: [
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
    ],
    rows,
    metrics: {
      embeddedJobsPerSec: embedded('zero').jobsPerSec,
      clusterJobsPerSec: onCluster('zero').jobsPerSec,
      embeddedSlotsJobsPerSec: embedded('slots').jobsPerSec,
      clusterSlotsJobsPerSec: onCluster('slots').jobsPerSec,
      embeddedE2eP99Ms: embedded('zero').e2e.p99,
      clusterE2eP99Ms: onCluster('zero').e2e.p99,
      embeddedServerCpuMsPerJob: embedded('zero').serverCpuMs,
      clusterServerCpuMsPerJob: onCluster('zero').serverCpuMs,
      embeddedWrittenKbPerJob: embedded('zero').writtenKb,
      clusterWrittenKbPerJob: onCluster('zero').writtenKb,
      twoWorkflowWorkersRatio: processes(2, 1).jobsPerSec / processes(1, 1).jobsPerSec,
      twoApisRatio: processes(1, 2).jobsPerSec / processes(1, 1).jobsPerSec,
    },
    targets: [],
    notes: [
      ...notes,
      'Server CPU is the dev server, or the four Temporal services and PostgreSQL; Switchyard CPU is the workflow worker(s), the pool worker and the API process(es). Bytes written are what the server processes sent to storage (SQLite or PostgreSQL: WAL and data files written before a checkpoint is due count only once written).',
      ...(quick ? ['Quick run: a few dozen jobs per figure, so the numbers prove the scenario runs and say little else.'] : []),
    ],
  };
}

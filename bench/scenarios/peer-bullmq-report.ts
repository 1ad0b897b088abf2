/** The peer-bullmq scenario's table, metrics, targets and notes, from what it measured. */
import { SQLITE_PRAGMAS } from '../../src/local/dev-server';
import { BULLMQ_SETTINGS } from '../bullmq/settings';
import type { LoadCost } from '../lib/cost';
import { completionRate } from '../lib/load';
import type { RedisServer } from '../lib/redis';
import type { ScenarioResult, ScenarioTarget } from '../lib/scenario';
import { round, summarize } from '../lib/stats';
import type { Evidence } from './peer-bullmq-evidence';
import { APPENDFSYNC, SIDES, type BullmqPeer, type PeerSettings, type Side } from './peer-bullmq-settings';

const LABEL: Record<Side, string> = {
  bullmq: 'BullMQ + Redis, appendfsync everysec',
  bullmqAlways: 'BullMQ + Redis, appendfsync always',
  switchyard: 'Switchyard (API → Temporal)',
};
/** CPU by role: sampleCpu's process names (by prefix) → the label in the table. */
const BULLMQ_ROLES: [string, string][] = [
  ['redis', 'redis'],
  ['bullmq-worker', 'workers'],
  ['bench', 'client'],
];
const ROLES: Record<Side, [string, string][]> = {
  bullmq: BULLMQ_ROLES,
  bullmqAlways: BULLMQ_ROLES,
  switchyard: [
    ['temporal', 'temporal'],
    ['workflows', 'wf worker'],
    ['pool:', 'pool workers'],
    ['api', 'api'],
    ['bench', 'client'],
  ],
};
const STORE: Record<Side, string> = {
  bullmq: 'redis-server (everysec)',
  bullmqAlways: 'redis-server (always)',
  switchyard: 'Temporal dev server',
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const BULLMQ_VERSION: string = (require('bullmq/package.json') as { version: string }).version;

/** One load on one side; `diskBytes` is what its store (redis-server / Temporal dev server) wrote. */
export interface Measured extends LoadCost {
  side: Side;
  slots: number;
  latencyMs: number;
  phase: 'throughput' | 'latency';
}

function figures(of: Measured[]) {
  const tp = of.filter((m) => m.phase === 'throughput');
  const lat = of.find((m) => m.phase === 'latency');
  const jobs = tp.reduce((sum, m) => sum + m.load.sentAt.length, 0);
  const sum = (f: (m: Measured) => number) => tp.reduce((total, m) => total + f(m), 0);
  const side = tp[0]!.side;
  const cpuMsPerJob = Object.fromEntries(
    ROLES[side].map(([prefix, label]) => [
      label,
      (1000 * sum((m) => Object.entries(m.cpu).reduce((t, [n, v]) => (n.startsWith(prefix) ? t + v : t), 0))) / jobs,
    ]),
  );
  const wallS = sum((m) => m.wallS);
  const share = (key: string) => sum((m) => m.cpu[key] ?? NaN) / wallS;
  return {
    jobs,
    // Each round's rate over the middle 80 % of its completions (no ramp-up, no tail), averaged over the rounds.
    jobsPerSec: sum((m) => completionRate(m.load)) / tp.length,
    e2e: lat && summarize(lat.load.latenciesMs),
    rate: lat && lat.load.sentAt.length / ((lat.load.sentAt.at(-1)! - lat.load.sentAt[0]!) / 1000),
    cpuMsPerJob,
    diskKbPerJob: sum((m) => m.diskBytes) / 1024 / jobs,
    /** Shares of one core during the throughput rounds: the whole machine, I/O wait, processes outside the run. */
    busy: share('machine'),
    iowait: share('iowait'),
    other: share('other'),
    temporal: share('temporal'),
  };
}
type Figures = ReturnType<typeof figures>;

const cpuText = (f: Figures) =>
  Object.entries(f.cpuMsPerJob)
    .map(([role, ms]) => `${role} ${round(ms, 2)}`)
    .join(' · ');
const pct = (x: number) => `${Math.round(100 * x)} %`;
const opt = (x: number | undefined) => (x === undefined ? '' : round(x));

const settingsText = (settings: Readonly<Record<string, string>>) =>
  Object.entries(settings)
    .map(([k, v]) => `${k} ${v || '""'}`)
    .join(', ');

export function report(r: {
  s: PeerSettings;
  measured: Measured[];
  evidence: Evidence;
  /** The Redis each BullMQ side ran on (one level's; every level's had the same settings). */
  redis: Record<BullmqPeer, RedisServer>;
  quick: boolean;
  cores: number;
}): ScenarioResult {
  const { s, measured, evidence, quick, cores } = r;
  const rows: (string | number)[][] = [];
  const metrics: Record<string, number> = {};
  const targets: ScenarioTarget[] = [];
  const main = s.series[0]!;
  let zero: Record<Side, Figures> | undefined;
  let ceiling = NaN; // Switchyard's 0-ms throughput: what the server and workflow worker sustain at all
  for (const series of s.series) {
    // The first series' metrics are unsuffixed; the others say their slots.
    const suffix = series === main ? '' : `Slots${series.slots}`;
    for (const l of series.latencies) {
      const of = (side: Side) => figures(measured.filter((m) => m.side === side && m.slots === series.slots && m.latencyMs === l));
      const f = { bullmq: of('bullmq'), bullmqAlways: of('bullmqAlways'), switchyard: of('switchyard') };
      if (series === main && l === 0) [zero, ceiling] = [f, f.switchyard.jobsPerSec];
      const level = `${s.workers} × ${series.slots}`;
      for (const side of SIDES) {
        const x = f[side];
        rows.push([
          level,
          l,
          LABEL[side],
          x.jobs,
          round(x.jobsPerSec),
          opt(x.e2e?.p50),
          opt(x.e2e?.p99),
          opt(x.rate),
          cpuText(x),
          round(x.diskKbPerJob, 1),
        ]);
        metrics[`${side}JobsPerSec${l}${suffix}`] = x.jobsPerSec;
        if (x.e2e) Object.assign(metrics, { [`${side}E2eP50Ms${l}${suffix}`]: x.e2e.p50, [`${side}E2eP99Ms${l}${suffix}`]: x.e2e.p99 });
      }
      // Switchyard over each BullMQ side: `throughputRatio` (everysec) as in earlier runs, `throughputRatioAlways` at equal durability.
      const ratio: Record<BullmqPeer, number> = {
        bullmq: f.switchyard.jobsPerSec / f.bullmq.jobsPerSec,
        bullmqAlways: f.switchyard.jobsPerSec / f.bullmqAlways.jobsPerSec,
      };
      for (const peer of Object.keys(APPENDFSYNC) as BullmqPeer[]) {
        metrics[`throughputRatio${peer === 'bullmq' ? '' : 'Always'}${l}${suffix}`] = ratio[peer];
        const [sy, bull] = [f.switchyard.e2e, f[peer].e2e];
        const dp50 = sy && bull ? `+${round(sy.p50 - bull.p50)} ms` : '';
        rows.push([level, l, `Switchyard / BullMQ ${APPENDFSYNC[peer]}`, '', `${round(ratio[peer], 3)} ×`, dp50, '', '', '', '']);
      }
      const ideal = l ? (s.workers * series.slots * 1000) / l : Infinity;
      const capped = ideal > 0.8 * ceiling;
      targets.push({
        name: `throughput, ${level} slots, ${l} ms inference`,
        target: l >= 50 ? 'Switchyard ≥ 0.95 × BullMQ at equal durability (appendfsync always)' : "reported: the engine's own cost per job",
        measured:
          `${round(ratio.bullmqAlways, 3)} × (${round(f.switchyard.jobsPerSec)} vs ${round(f.bullmqAlways.jobsPerSec)} jobs/s; ` +
          `BullMQ everysec ${round(f.bullmq.jobsPerSec)}, ${round(ratio.bullmq, 3)} ×` +
          (l ? `; the slots could do ${round(ideal)}${capped ? `, above Switchyard's 0-ms ceiling of ${round(ceiling)}` : ''})` : ')'),
        met: l >= 50 && !quick ? ratio.bullmqAlways >= 0.95 : null,
      });
    }
  }
  const z = zero!;
  metrics.historyEvents = evidence.steps.length;
  metrics.temporalCpuMsPerJob0 = z.switchyard.cpuMsPerJob.temporal!;
  metrics.redisCpuMsPerJob0 = z.bullmq.cpuMsPerJob.redis!;
  metrics.redisAlwaysCpuMsPerJob0 = z.bullmqAlways.cpuMsPerJob.redis!;
  const stepMs = (which: (type: string) => boolean) => evidence.steps.reduce((t, e) => (which(e.type) ? t + e.ms : t), 0);
  const perJob = (side: Side) => {
    const e = evidence.syscalls[side]!;
    return Object.entries(e.counts)
      .map(([name, n]) => `${name} ${round(n / e.jobs, 1)}`)
      .join(', ');
  };
  const fsyncs = evidence.syscalls.switchyard && (evidence.syscalls.switchyard.counts.fsync ?? 0) / evidence.syscalls.switchyard.jobs;
  if (fsyncs) metrics.temporalFsyncsPerJob0 = fsyncs;
  const calls = evidence.persistence;
  const isRead = (op: string) => /^(visibility:)?(Get|Read|List)/.test(op);
  const callText = (which: typeof calls) => which.map((p) => `${p.operation} ${round(p.perJob, 1)} (${round(p.meanMs, 1)} ms)`).join(', ');
  const writes = calls.filter((p) => !isRead(p.operation) && p.perJob >= 0.1);
  const reads = calls.filter((p) => isRead(p.operation) && p.perJob >= 0.1);
  const perJobSum = (which: typeof calls) => which.reduce((t, p) => t + p.perJob, 0);
  if (calls.length) Object.assign(metrics, { persistenceWritesPerJob0: perJobSum(writes), persistenceReadsPerJob0: perJobSum(reads) });

  return {
    settings: {
      inference: 'synthetic provider (src/inference/synthetic.ts), a timer per job, no jitter; the same code on both sides',
      series: s.series.map((x) => `${s.workers} worker processes × ${x.slots} slots on each side: ${x.latencies.join(', ')} ms`),
      switchyard:
        'temporal server start-dev with a file-backed SQLite (as `switchyard up`), 1 workflow worker process, the API process (no API keys); jobs submitted with POST /v1/jobs, completion awaited with the Temporal client (the workflow result, a long poll)',
      bullmq: `bullmq ${BULLMQ_VERSION}, ${r.redis.bullmq.version.split(' ').slice(0, 3).join(' ')}, a Redis of its own per side and inference time; Queue.add with a job id, completion heard through QueueEvents; ${JSON.stringify(BULLMQ_SETTINGS)}`,
      redis: { bullmq: r.redis.bullmq.settings, bullmqAlways: r.redis.bullmqAlways.settings },
      throughput: `closed loop, max(${s.minInFlight}, 2 × the slots) jobs in flight; ${s.rounds} rounds per side and inference time of min(${s.jobsPerRound}, ${s.roundSeconds} s at the slots' ideal rate) jobs, after ${s.warmupJobs} warm-up jobs; rounds alternate A B C C B A`,
      latency: `open loop at half the lowest of the sides' throughputs, the same rate and count (≤ ${s.latencyJobs}) on every side; first series only`,
      e2e: 'from the submit call to the client hearing the job completed, both measured in the benchmark process',
    },
    columns: [
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
    ],
    rows,
    metrics,
    targets,
    notes: [
      `Durability. Switchyard: every state change of a job (accepted, each task scheduled, started and completed, the result) is committed to the Temporal server's SQLite file before the server acknowledges it, with ${SQLITE_PRAGMAS.join(', ')} (as \`switchyard up\` runs it: the write-ahead log fsynced on every commit), so an acknowledged job survives a crash of any process or of the machine. ${LABEL.bullmqAlways} — ${settingsText(r.redis.bullmqAlways.settings)} — is at the same durability: Redis fsyncs the AOF before it replies, so an acknowledged job survives a crash of the machine too; these are the rows to compare. ${LABEL.bullmq} — ${settingsText(r.redis.bullmq.settings)} — is what BullMQ's production guide recommends: the AOF is fsynced once a second, so a crash of the machine can lose about the last second of acknowledged jobs and results. In either mode a crash of redis-server alone loses nothing written to the kernel.`,
      `Each side runs ${s.workers} worker processes × the slots. Switchyard also runs what its architecture needs: the Temporal server, one workflow worker process and the API process; each BullMQ side needs only its redis-server. All of it shares this machine's ${cores} cores with the load generator.`,
      `At 0 ms, where the time goes. A Switchyard job's history has ${evidence.steps.length} events; at the latency phase's rate, the median ms before each was: ${evidence.steps.map((e) => `${e.type} ${round(e.ms)}`).join(', ')} — ${round(stepMs(() => true))} ms from accepted to completed, ${round(stepMs((t) => t.endsWith('TaskStarted')))} ms of it before the …TaskStarted events (a scheduled task committed, handed to matching, picked up by a polling worker) and ${round(stepMs((t) => t.endsWith('TaskCompleted')))} ms before the …TaskCompleted events (the worker's turn, its answer committed). Every state change is committed, with the mutable state, task and visibility rows, in SQLite transactions through the dev server's single SQLite connection, one after another. CPU per job (ms): Switchyard — ${cpuText(z.switchyard)}; BullMQ everysec — ${cpuText(z.bullmq)}; BullMQ always — ${cpuText(z.bullmqAlways)}. The Temporal server used ${pct(z.switchyard.temporal)} of a core and wrote ${round(z.switchyard.diskKbPerJob, 1)} KB to disk per job (/proc/<pid>/io); redis-server ${round(z.bullmq.diskKbPerJob, 2)} KB with everysec, ${round(z.bullmqAlways.diskKbPerJob, 2)} KB with always. The whole machine was busy ${pct(z.switchyard.busy / cores)} of its ${cores} cores during Switchyard's rounds (I/O wait ${pct(z.switchyard.iowait / cores)}), ${pct(z.bullmq.busy / cores)} during BullMQ everysec's, ${pct(z.bullmqAlways.busy / cores)} during BullMQ always's (I/O wait ${pct(z.bullmqAlways.iowait / cores)}).`,
      calls.length
        ? `Persistence calls per 0-ms job at the latency phase's rate (the Temporal server's own metrics; mean ms per call in brackets, waiting for the database included): ${round(perJobSum(writes), 1)} writes — ${callText(writes)}; ${round(perJobSum(reads), 1)} reads — ${callText(reads)}. The dev server gives SQLite a single connection, so all of these queue one behind another: ${round(calls.reduce((t, p) => t + p.perJob * p.meanMs, 0))} ms of persistence per job.`
        : "The Temporal server's persistence calls were not counted (its metrics endpoint was not found).",
      SIDES.every((side) => evidence.syscalls[side])
        ? `System calls per 0-ms job, counted with strace over ${evidence.syscalls.switchyard!.jobs} extra jobs per side (not timed): ${SIDES.map((side) => `${STORE[side]} — ${perJob(side)}`).join('; ')}. With the write-ahead log and synchronous=FULL an SQLite commit fsyncs the log once (a checkpoint adds the database's); Redis with appendfsync always fsyncs once per event-loop turn that wrote, however many clients' commands it served.`
        : 'System calls of the stores were not counted (quick run, or strace is not installed).',
      `Processes outside each side (the other sides' idle processes included) used ${pct(z.switchyard.other)} of a core during Switchyard's 0-ms rounds, ${pct(z.bullmq.other)} during BullMQ everysec's and ${pct(z.bullmqAlways.other)} during BullMQ always's: the higher, the noisier the figures.`,
      "Throughput is each closed-loop round's completion rate over the middle 80 % of its completions (no ramp-up, no tail), averaged over the rounds. Latency comes from the open-loop phase, not the closed loop, where it is only in-flight / throughput (Little's law).",
    ],
  };
}

/**
 * embedded-sqlite: jobs/s of the embedded dev server under three SQLite settings, side by side — SQLite's
 * default (rollback journal, synchronous=FULL), write-ahead log with synchronous=FULL (what `switchyard up`
 * runs), and write-ahead log with synchronous=NORMAL (faster, but the last commits can be lost on a power
 * cut). Each round starts a fresh server and stack and pushes 0-ms jobs through it in a closed loop, so
 * the server's persistence is what limits the rate. Rounds alternate the settings.
 */
import { completedJobs, jobsQuery, waitForCompleted } from '../../testkit/jobs';
import { assertNoErrors, closedLoop } from '../lib/load';
import type { Scenario, ScenarioTarget } from '../lib/scenario';
import { startBenchStack } from '../../testkit/bench-stack';
import { round, steadyRate, summarize } from '../lib/stats';
import { jobBody, rawSubmitter, syntheticPool } from '../lib/submit';
import { SQLITE_PRAGMAS } from '../../src/local/dev-server';

const SUBMIT_CONCURRENCY = 32;
const POOL = 'zero';

const VARIANTS = [
  { name: 'rollback journal, synchronous=FULL (SQLite default)', pragmas: [] as readonly string[] },
  { name: 'WAL, synchronous=FULL (switchyard up)', pragmas: SQLITE_PRAGMAS },
  { name: 'WAL, synchronous=NORMAL (not durable on power loss)', pragmas: ['journal_mode=wal', 'synchronous=NORMAL'] },
];

const SETTINGS = {
  full: { rounds: 3, jobs: 500 },
  quick: { rounds: 1, jobs: 30 },
};

async function measureRound(pragmas: readonly string[], jobs: number, log: (l: string) => void): Promise<number> {
  const stack = await startBenchStack({ pools: { [POOL]: syntheticPool(20, 0) }, poolWorkers: { [POOL]: 2 }, sqlitePragmas: pragmas, log });
  try {
    const submit = rawSubmitter(stack, jobBody(POOL));
    const load = await closedLoop({ concurrency: SUBMIT_CONCURRENCY, count: jobs, fire: () => submit() });
    assertNoErrors('submitting', load);
    const query = jobsQuery(stack.workflowTaskQueue);
    await waitForCompleted(stack.client, query, jobs, 60_000 + jobs * 200);
    const closed = [...(await completedJobs(stack.client, query)).values()];
    return steadyRate(closed.map((j) => j.closeMs));
  } finally {
    await stack.stop();
  }
}

export const embeddedSqlite: Scenario = {
  name: 'embedded-sqlite',
  description: "jobs/s of the embedded dev server under SQLite's default journal, WAL + FULL sync (used), and WAL + NORMAL sync",
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const rates = VARIANTS.map(() => [] as number[]);
    for (let r = 0; r < s.rounds; r++) {
      for (const [i, v] of VARIANTS.entries()) {
        const rate = await measureRound(v.pragmas, s.jobs, log);
        rates[i]!.push(rate);
        log(`round ${r + 1}, ${v.name}: ${round(rate)} jobs/s`);
      }
    }
    const median = rates.map((r) => summarize(r).p50);
    const base = median[0]!;
    const rows = VARIANTS.map((v, i) => [
      v.name,
      rates[i]!.map((x) => round(x)).join(' · '),
      round(median[i]!),
      round(median[i]! / base, 2),
    ]);
    const targets: ScenarioTarget[] = [
      {
        name: 'WAL + FULL vs the default journal',
        target: '> 1× at the same durability',
        measured: `${round(median[1]! / base, 2)}×`,
        met: quick ? null : median[1]! > base,
      },
    ];
    return {
      settings: {
        jobs: `${s.jobs} per round, ${SUBMIT_CONCURRENCY} starts in flight (Temporal client, as the API starts them)`,
        rounds: `${s.rounds} per setting, alternating`,
        inference: 'synthetic, 0 ms, 2 worker processes × 20 slots, 1 workflow worker',
        server: 'temporal server start-dev, a fresh file-backed SQLite per round',
        rate: 'completions per second over the middle 80 % of close times',
      },
      columns: ['SQLite setting', 'jobs/s per round', 'median jobs/s', 'vs default'],
      rows,
      metrics: {
        defaultJobsPerSec: median[0]!,
        walFullJobsPerSec: median[1]!,
        walNormalJobsPerSec: median[2]!,
        walFullRatio: median[1]! / base,
      },
      targets,
      notes: [
        'FULL syncs the log at every commit in both journal modes, so a committed job survives a power cut either way; WAL needs fewer syncs per commit (one append, no journal file to create and delete).',
        'NORMAL in WAL mode skips the sync at commit: after a power cut (not a process crash) the last commits can be gone — accepted jobs lost — so it is shown for scale, not used.',
      ],
    };
  },
};

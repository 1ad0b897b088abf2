/**
 * `npm run bench -- <scenario> [--quick]`: runs one scenario, prints its table, and records it in
 * bench/results (or $BENCH_RESULTS_DIR). Exits non-zero on failure; whatever it started is stopped,
 * on failure and on Ctrl-C too.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo } from './lib/machine';
import { runInterruptHandlers } from '../testkit/interrupts';
import { summaryText, writeResults, type RunRecord } from './lib/results';
import { SCENARIOS } from './scenarios';

const USAGE = `npm run bench -- <scenario> [--quick]

${SCENARIOS.map((s) => `  ${s.name.padEnd(12)} ${s.description}`).join('\n')}

  --quick       a short form (under a minute) that proves the scenario runs; its numbers are not results
Results: bench/results/<scenario>-<date>.{json,md} (quick runs: bench/results/quick/); BENCH_RESULTS_DIR overrides.`;

const log = (line: string) => console.error(`[bench ${new Date().toISOString().slice(11, 23)}] ${line}`);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const scenario = SCENARIOS.find((s) => s.name === positionals[0]);
  if (!scenario || positionals.length !== 1) {
    console.error(positionals[0] ? `unknown scenario "${positionals[0]}"\n\n${USAGE}` : USAGE);
    return 2;
  }
  const quick = values.quick ?? false;
  const startedAt = new Date();
  const machine = await machineInfo();
  log(`${scenario.name}${quick ? ' (quick)' : ''} on ${machine.cores} cores, load ${machine.loadAverage1m}`);
  const result = await scenario.run({ quick, log });
  const run: RunRecord = {
    scenario: scenario.name,
    description: scenario.description,
    quick,
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine,
    result,
  };
  console.log(summaryText(run));
  const dir = path.resolve(process.env.BENCH_RESULTS_DIR || path.join(__dirname, 'results'));
  for (const file of writeResults(dir, run)) log(`wrote ${file}`);
  return 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping everything this run started`);
    void runInterruptHandlers().finally(() => process.exit(130));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error(`bench failed: ${(err as Error)?.stack ?? String(err)}`);
    await runInterruptHandlers();
    process.exit(1);
  },
);

/** Writes a run's result as JSON (for tools) and markdown (for people), and prints its table. */
import fs from 'node:fs';
import path from 'node:path';
import type { ScenarioResult } from './scenario';

export interface RunRecord {
  scenario: string;
  description: string;
  quick: boolean;
  startedAt: string;
  durationS: number;
  machine: Record<string, string | number>;
  result: ScenarioResult;
}

const cell = (v: unknown) => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [columns, columns.map(() => '---'), ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

function targetsTable(result: ScenarioResult): string {
  const verdict = (met: boolean | null) => (met === null ? 'n/a' : met ? 'met' : 'missed');
  return markdownTable(
    ['target', 'wanted', 'measured', ''],
    result.targets.map((t) => [t.name, t.target, t.measured, verdict(t.met)]),
  );
}

export function renderMarkdown(run: RunRecord): string {
  const { result } = run;
  return [
    `# ${run.scenario}${run.quick ? ' (quick: proves the scenario runs; not a result)' : ''}`,
    '',
    run.description,
    '',
    `Run ${run.startedAt}, ${run.durationS} s.`,
    '',
    '## Machine',
    '',
    markdownTable(['', ''], Object.entries(run.machine)),
    '',
    '## Settings',
    '',
    markdownTable(
      ['', ''],
      Object.entries(result.settings).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
    ),
    '',
    '## Results',
    '',
    markdownTable(result.columns, result.rows),
    '',
    ...(result.targets.length ? ['## Targets', '', targetsTable(result), ''] : []),
    '## Notes',
    '',
    ...result.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/** `<dir>/<scenario>-<YYYY-MM-DD>.{json,md}`; quick runs go to `<dir>/quick/`. */
export function writeResults(dir: string, run: RunRecord): string[] {
  const target = run.quick ? path.join(dir, 'quick') : dir;
  fs.mkdirSync(target, { recursive: true });
  const base = path.join(target, `${run.scenario}-${run.startedAt.slice(0, 10)}`);
  fs.writeFileSync(`${base}.json`, JSON.stringify(run, null, 2) + '\n');
  fs.writeFileSync(`${base}.md`, renderMarkdown(run));
  return [`${base}.json`, `${base}.md`];
}

/** What the console shows at the end of a run. */
export function summaryText(run: RunRecord): string {
  return [
    markdownTable(run.result.columns, run.result.rows),
    '',
    ...(run.result.targets.length ? [targetsTable(run.result), ''] : []),
    ...run.result.notes.map((n) => `- ${n}`),
  ].join('\n');
}

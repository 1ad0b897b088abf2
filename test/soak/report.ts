/** The soak's count: per kind of item, how many were accepted, completed, failed, lost and done twice. */
import type { Entry, Outcome } from './workload';

export interface Row {
  kind: string;
  accepted: number;
  succeeded: number;
  failed: number;
  lost: number;
  twice: number;
}

const COLUMNS = ['accepted', 'succeeded', 'failed', 'lost', 'twice'] as const;

/** One row per kind and a total; an item still open when the soak stopped waiting is lost. */
export function countOutcomes(entries: Entry[], outcomes: Map<Entry, Outcome>, kinds: string[]): Row[] {
  const rows = kinds.map((kind) => {
    const mine = entries.filter((e) => e.kind === kind).map((e) => outcomes.get(e) ?? 'open');
    const count = (...of: Outcome[]) => mine.filter((o) => of.includes(o)).length;
    return {
      kind,
      accepted: mine.length,
      succeeded: count('succeeded'),
      failed: count('failed'),
      lost: count('open', 'missing'),
      twice: count('twice'),
    };
  });
  const total: Row = { kind: 'total', accepted: 0, succeeded: 0, failed: 0, lost: 0, twice: 0 };
  for (const row of rows) for (const c of COLUMNS) total[c] += row[c];
  return [...rows, total];
}

export function table(rows: Row[]): string {
  const width = Math.max(...rows.map((r) => r.kind.length), 'kind'.length);
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(width) : c.padStart(10))).join('  ');
  return [line(['kind', ...COLUMNS]), ...rows.map((r) => line([r.kind, ...COLUMNS.map((c) => String(r[c]))]))].join('\n');
}

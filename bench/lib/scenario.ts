/** What every benchmark scenario provides and returns; bench/run.ts prints and records the result. */

export interface ScenarioTarget {
  name: string;
  /** The target, e.g. "≥ 0.95 × raw". */
  target: string;
  measured: string;
  /** null when the run could not tell (e.g. a quick run, or a ceiling in the way). */
  met: boolean | null;
}

export interface ScenarioResult {
  /** Everything that shaped the numbers: counts, rates, pool settings. */
  settings: Record<string, unknown>;
  columns: string[];
  rows: (string | number)[][];
  /** Headline numbers by name, for comparisons across runs and for tests. */
  metrics: Record<string, number>;
  targets: ScenarioTarget[];
  notes: string[];
}

export interface ScenarioOptions {
  /** A short form that proves the scenario works (tests); its numbers are not results. */
  quick: boolean;
  log: (line: string) => void;
}

export interface Scenario {
  name: string;
  description: string;
  run(opts: ScenarioOptions): Promise<ScenarioResult>;
}

/**
 * Schemathesis, a property-based tester of OpenAPI documents, from the Python package index: installed
 * into `<toolsDir>/schemathesis` with pip on first use (like moto), run as `python3 -m schemathesis`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { installPythonTool } from './python-tool';

export const SCHEMATHESIS_VERSION = '4.32.5';
const SCHEMATHESIS = {
  distribution: 'schemathesis',
  version: SCHEMATHESIS_VERSION,
  requirements: [`schemathesis==${SCHEMATHESIS_VERSION}`],
  purpose: 'The API contract is tested with',
};

export interface SchemathesisRun {
  /** The process's exit code: 0 when every check passed. */
  code: number;
  /** What it printed, stdout and stderr interleaved: its summary names each failure. */
  output: string;
}

/** Runs `schemathesis <args>` to its end; a run that outlives `timeoutMs` is killed and reported as failed. */
export async function runSchemathesis(args: string[], timeoutMs: number): Promise<SchemathesisRun> {
  const { python, dir } = await installPythonTool(SCHEMATHESIS);
  const child = spawn(python, ['-m', 'schemathesis.cli', ...args], {
    env: {
      ...process.env,
      // Its hooks (schemathesis_hooks.py beside this file) say which answers the document explains in words.
      PYTHONPATH: [dir, __dirname, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
      SCHEMATHESIS_HOOKS: 'schemathesis_hooks',
      // Plain output for a log: no colours, no progress bars redrawn in place, no telemetry.
      NO_COLOR: '1',
      SCHEMATHESIS_TELEMETRY: 'false',
      COLUMNS: '120',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  clearTimeout(timer);
  return { code, output };
}

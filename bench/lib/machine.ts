/** The machine a run was measured on: numbers mean little without it. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { resolveTemporalBinary } from '../../src/local/binaries';

const ROOT = path.resolve(__dirname, '../..');

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

function gitCommit(): string {
  try {
    return `${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain']) ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

export async function machineInfo(): Promise<Record<string, string | number>> {
  const config = loadConfig();
  const cli = await resolveTemporalBinary('cli', {
    explicitPath: config.temporal.cliPath,
    toolsDir: config.toolsDir,
    searchPath: config.searchPath,
    log: () => undefined,
  });
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    temporalCli: cli.version,
    commit: gitCommit(),
    // Other work on the machine skews every number: this says how busy it was when the run began.
    loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

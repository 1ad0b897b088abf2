/**
 * The local multi-service cluster (`switchyard cluster up`, src/local/cluster) for a test run or a benchmark:
 * used as it is when it runs, else brought up the way a user does and stopped again by `release()`; and its
 * processes by name, for CPU and disk accounting.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { clusterStatus } from '../src/local/cluster/cluster';
import type { ClusterState } from '../src/local/cluster/state';

const BIN = path.resolve(__dirname, '../bin/switchyard');

export interface LocalCluster {
  /** `<data dir>/cluster`: what src/local/cluster/restart.ts takes. */
  dir: string;
  state: ClusterState;
  /** Whether it ran before: then release() leaves it running. */
  wasUp: boolean;
  /** Stops the cluster if this call started it. */
  release(): Promise<void>;
}

/** Runs `switchyard <args>` to its end with its output on this process's; resolves with its exit code. */
function runSwitchyard(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export async function useLocalCluster(log: (line: string) => void): Promise<LocalCluster> {
  const { dir } = loadConfig().cluster;
  // The UI is for people: a running cluster without one is used as it is.
  const wasUp = (await clusterStatus(dir))?.processes.every((p) => p.up || p.name === 'ui') ?? false;
  if (wasUp) log('the local cluster is running; it is used as it is and left running');
  else if ((await runSwitchyard(['cluster', 'up'])) !== 0) throw new Error('switchyard cluster up failed');
  const found = await clusterStatus(dir);
  if (!found) throw new Error('switchyard cluster up succeeded but left no state');
  return {
    dir,
    state: found.state,
    wasUp,
    release: async () => {
      if (!wasUp) await runSwitchyard(['cluster', 'down']);
    },
  };
}

/** The cluster's running processes: each Temporal service as `temporal-<service>`, and PostgreSQL with its backends. */
export async function clusterProcesses(dir: string): Promise<{ name: string; pid: number; withChildren?: boolean }[]> {
  const found = await clusterStatus(dir);
  return (found?.processes ?? [])
    .filter((p) => p.up && p.pid !== null && p.name !== 'ui')
    .map((p) =>
      p.name === 'postgres' ? { name: 'postgres', pid: p.pid!, withChildren: true } : { name: `temporal-${p.name}`, pid: p.pid! },
    );
}

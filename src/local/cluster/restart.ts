/**
 * Parts of the running local cluster stopped and started again while the rest runs on: one Temporal service
 * (a crash with SIGKILL, or a clean stop) and PostgreSQL under the services. What an operator does in an
 * upgrade, and what the fault tests do mid-run (test/cluster/faults.test.ts). Each keeps state.json current.
 */
import path from 'node:path';
import { isAlive, stopPids } from './pids';
import { isPostgresRunning, postgresOf, postgresPid, startPostgres, stopPostgres } from './postgres';
import { startServices } from './services';
import { clusterPaths, readState, SERVICES, writeState, type ClusterPaths, type ClusterState, type ServiceName } from './state';

const STOP_GRACE_MS = 20_000;

function runningCluster(dir: string): { paths: ClusterPaths; state: ClusterState } {
  const paths = clusterPaths(path.resolve(dir));
  const state = readState(paths);
  if (!state) throw new Error(`no local cluster in ${paths.root}: switchyard cluster up`);
  return { paths, state };
}

/** Ends one service with `signal` (SIGKILL: a crash, nothing handed over; SIGTERM: a clean stop) and resolves once it is gone. */
export async function stopService(dir: string, service: ServiceName, signal: NodeJS.Signals): Promise<void> {
  const { paths, state } = runningCluster(dir);
  const { pid } = state.services[service];
  if (pid === null || !isAlive(pid, state.serverBin)) throw new Error(`Temporal ${service} of the local cluster is not running`);
  await stopPids([pid], state.serverBin, STOP_GRACE_MS, signal);
  state.services[service].pid = null;
  writeState(paths, state);
}

/** Starts every service that is not running on the ports it had, and resolves once the cluster serves; returns those started. */
export async function startStoppedServices(dir: string): Promise<ServiceName[]> {
  const { paths, state } = runningCluster(dir);
  const stopped = SERVICES.filter((s) => !isAlive(state.services[s].pid, state.serverBin));
  await startServices(paths, state, stopped, { port: state.postgres.port, password: postgresOf(paths).password });
  return stopped;
}

/** Stops PostgreSQL (`pg_ctl stop -m fast`: open sessions are ended); the Temporal services run on without it. */
export async function stopClusterPostgres(dir: string): Promise<void> {
  const { paths, state } = runningCluster(dir);
  if (!(await stopPostgres(postgresOf(paths)))) throw new Error(`PostgreSQL of the local cluster is not running`);
  writeState(paths, { ...state, postgres: { ...state.postgres, pid: null } });
}

/** Starts PostgreSQL again on its port; resolves once it accepts connections. */
export async function startClusterPostgres(dir: string, log: (line: string) => void): Promise<void> {
  const { paths, state } = runningCluster(dir);
  const pg = postgresOf(paths);
  if (await isPostgresRunning(pg)) return;
  await startPostgres(pg, state.postgres.port, log);
  writeState(paths, { ...state, postgres: { ...state.postgres, pid: postgresPid(paths) } });
}

/**
 * Starting Temporal services of the local cluster as daemons of the server in `state`, each on its ports in
 * `state` with a config of its own, and waiting until the cluster serves. Used by `cluster up` for whatever
 * does not run, and to bring back a service that was stopped or crashed.
 */
import path from 'node:path';
import { startDaemon, type Daemon } from './daemon';
import { waitUntilListening, waitUntilServing } from './readiness';
import { writeServerConfig } from './server-config';
import { writeState, type ClusterPaths, type ClusterState, type ServiceName } from './state';

/** Starts `services` (in SERVICES order) and resolves once the cluster serves; their pids are in state.json from the start. */
export async function startServices(
  paths: ClusterPaths,
  state: ClusterState,
  services: readonly ServiceName[],
  postgres: { port: number; password: string },
): Promise<Daemon[]> {
  const daemons: Daemon[] = [];
  const start = (service: ServiceName) => {
    const config = writeServerConfig(paths.serverConfig(service), { service, ports: state.services, postgres });
    const daemon = startDaemon(service, state.serverBin, ['--config-file', config, '--allow-no-auth', 'start', '--service', service], {
      logFile: path.join(paths.logs, `${service}.log`),
      cwd: paths.root,
    });
    daemons.push(daemon);
    state.services[service].pid = daemon.pid;
    // Written at each start, so `cluster down` can stop what started even if it never became ready.
    writeState(paths, state);
    return daemon;
  };
  const [first, ...rest] = services;
  if (!first) return daemons;
  // One process first: each writes the cluster's metadata when it is new or its config changed, and
  // several doing so at once fail on the version check (SaveClusterMetadata … version mismatch).
  await waitUntilListening(start(first), state.services[first].grpc);
  for (const service of rest) start(service);
  await waitUntilServing(state, daemons);
  return daemons;
}

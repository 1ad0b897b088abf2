/**
 * `switchyard cluster up | down | status` (`npm run cluster -- up`): a local multi-service Temporal cluster on
 * PostgreSQL (src/local/cluster), the namespace and search attributes set up on it. It keeps running after
 * `up` returns; `npm start -- --cluster` (or TEMPORAL_ADDRESS) points Switchyard at it.
 */
import type { Config } from '../config';
import { ActionNeeded } from '../errors';
import { clusterStatus, startCluster, stopCluster } from '../local/cluster/cluster';
import { NUM_HISTORY_SHARDS } from '../local/cluster/server-config';
import type { ClusterState } from '../local/cluster/state';
import { CLUSTER_RETENTION_DAYS } from '../temporal/namespace';
import { setup } from './setup';

const USAGE = 'switchyard cluster up [--no-ui] | down | status';

export async function cluster(config: Config, args: string[], say: (line: string) => void = console.log): Promise<number> {
  switch (args[0]) {
    case 'up':
      return up(config, args.includes('--no-ui'), say);
    case 'down':
      await stopCluster({ dir: config.cluster.dir, log: say });
      say('the local cluster is stopped');
      return 0;
    case 'status':
      return status(config, say);
    default:
      console.error(USAGE);
      return 2;
  }
}

async function up(config: Config, noUi: boolean, say: (line: string) => void): Promise<number> {
  const t0 = Date.now();
  const { state, started } = await startCluster({
    dir: config.cluster.dir,
    toolsDir: config.toolsDir,
    toolsCacheDir: config.toolsCacheDir,
    searchPath: config.searchPath,
    namespace: config.temporal.namespace,
    port: config.cluster.port,
    postgresPort: config.cluster.postgresPort,
    ui: !noUi,
    log: say,
  });
  await setup(clusterConfig(config, state), say, { createNamespace: { retentionDays: CLUSTER_RETENTION_DAYS } });
  say(
    `\nThe local Temporal cluster is up (${started.length ? `started ${started.join(', ')}` : 'it was running'}; ` +
      `${((Date.now() - t0) / 1000).toFixed(1)} s)\n` +
      `  Temporal     ${state.address}   namespace ${state.namespace}   server ${state.version}, ${NUM_HISTORY_SHARDS} history shards\n` +
      `  Temporal UI  ${state.ui ? `http://127.0.0.1:${state.ui.port}` : 'not run (set TEMPORAL_UI_URL to a UI of your own for job links)'}\n` +
      `  Data, logs   ${config.cluster.dir}\n\n` +
      `  npm start -- --cluster          (or TEMPORAL_ADDRESS=${state.address})\n` +
      '  switchyard cluster status | down',
  );
  return 0;
}

async function status(config: Config, say: (line: string) => void): Promise<number> {
  const found = await clusterStatus(config.cluster.dir);
  if (!found) {
    say(`no local cluster in ${config.cluster.dir}: switchyard cluster up`);
    return 1;
  }
  const { state, processes } = found;
  say(`local cluster: Temporal ${state.version} at ${state.address}, namespace ${state.namespace}`);
  for (const p of processes)
    say(`  ${p.name.padEnd(9)} ${(p.up ? 'up' : 'down').padEnd(5)} pid ${String(p.pid ?? '-').padEnd(8)} ${p.address}`);
  return processes.every((p) => p.up) ? 0 : 3;
}

/** The configuration with Temporal pointed at the running cluster (and its UI, when it runs one). */
export function clusterConfig(config: Config, state: ClusterState): Config {
  const uiUrl = state.ui ? `http://127.0.0.1:${state.ui.port}` : config.temporal.uiUrlSetting;
  return { ...config, temporal: { ...config.temporal, external: true, address: state.address, uiUrl } };
}

/** For `up --cluster`: the configuration pointed at the local cluster, which must be running. */
export async function onLocalCluster(config: Config): Promise<Config> {
  const found = await clusterStatus(config.cluster.dir);
  // The UI is for people: jobs run without it.
  const down = found ? found.processes.filter((p) => !p.up && p.name !== 'ui').map((p) => p.name) : ['all of it'];
  if (!found || down.length)
    throw new ActionNeeded(`the local cluster is not running (down: ${down.join(', ')}); start it with \`switchyard cluster up\``);
  return clusterConfig(config, found.state);
}

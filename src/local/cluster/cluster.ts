/**
 * The local multi-service Temporal cluster: PostgreSQL, then frontend, history, matching and worker as
 * separate processes of the server built from its Go module. `startCluster` brings up what is not running
 * and waits until the cluster serves; `stopCluster` ends it all; `clusterStatus` says what runs. The
 * namespace and search attributes are the caller's (`switchyard cluster up` runs `setup`).
 */
import path from 'node:path';
import type { GoBuildOptions } from './go-build';
import { isAlive, stopPids } from './pids';
import { PortPicker, servicePorts } from './ports';
import { configuredPort, findPostgres, initPostgres, isPostgresRunning, postgresPid, startPostgres, stopPostgres } from './postgres';
import { DYNAMIC_CONFIG_FILE } from './server-config';
import { startServices } from './services';
import { clusterPaths, readState, SERVICES, writeState, type ClusterPaths, type ClusterState, type ServiceName } from './state';
import { dynamicConfigWarnings, ensureTemporalServer, migrateSchemas } from './temporal-server';
import { ensureUiServer, startUi } from './ui';

const STOP_GRACE_MS = 20_000;

export interface ClusterOptions {
  /** `<data dir>/cluster`. */
  dir: string;
  toolsDir: string;
  /** Where the Go builds are kept by version, outside the clone (config.toolsCacheDir). */
  toolsCacheDir: string;
  searchPath: string;
  namespace: string;
  /** Configured ports; unset, the last ones or free ones. */
  port?: number;
  postgresPort?: number;
  /** Run the Temporal UI beside it (built on first use; the cluster runs without it when that fails). */
  ui: boolean;
  log: (line: string) => void;
}

const goBuild = (opts: ClusterOptions): GoBuildOptions => ({
  toolsDir: opts.toolsDir,
  cacheDir: opts.toolsCacheDir,
  searchPath: opts.searchPath,
  log: opts.log,
});

export interface StartedCluster {
  state: ClusterState;
  /** How long the server build took, or null when the binaries were there. */
  builtMs: number | null;
  /** Services this call started (the others were running). */
  started: ServiceName[];
}

export async function startCluster(opts: ClusterOptions): Promise<StartedCluster> {
  const paths = clusterPaths(path.resolve(opts.dir));
  findPostgres(); // before a long build: say at once when PostgreSQL is missing
  const bin = await ensureTemporalServer(goBuild(opts));
  for (const w of await dynamicConfigWarnings(bin, DYNAMIC_CONFIG_FILE)) opts.log(`${DYNAMIC_CONFIG_FILE}: ${w}`);
  const previous = readState(paths);
  const picker = new PortPicker();

  const pg = await initPostgres(paths, opts.log);
  const pgRunning = await isPostgresRunning(pg);
  const runningPort = pgRunning ? configuredPort(paths) : undefined;
  const pgPort =
    runningPort !== undefined ? picker.keep(runningPort) : await picker.pick('PostgreSQL', opts.postgresPort, previous?.postgres.port);
  await startPostgres(pg, pgPort, opts.log);
  await migrateSchemas(bin, { port: pgPort, password: pg.password }, opts.log);

  const sameServer = previous?.serverBin === bin.server;
  if (previous && !sameServer) {
    // Services of another server version (before a version bump) make way for this one's.
    const pids = SERVICES.map((s) => previous.services[s].pid).filter((p): p is number => p !== null);
    await stopPids(pids, previous.serverBin, STOP_GRACE_MS);
  }
  const running = new Set(SERVICES.filter((s) => sameServer && isAlive(previous.services[s].pid, bin.server)));
  const ports = await servicePorts(picker, previous, running, opts.port);
  const state: ClusterState = {
    version: bin.version,
    serverBin: bin.server,
    namespace: opts.namespace,
    address: `127.0.0.1:${ports.frontend.grpc}`,
    postgres: { port: pgPort, pid: postgresPid(paths) },
    services: Object.fromEntries(
      SERVICES.map((s) => [s, { ...ports[s], pid: running.has(s) ? previous!.services[s].pid : null }]),
    ) as ClusterState['services'],
    ui: previous?.ui ?? null,
  };
  const t0 = Date.now();
  const started = SERVICES.filter((s) => !running.has(s));
  await startServices(paths, state, started, { port: pgPort, password: pg.password });
  if (started.length) opts.log(`Temporal services ${started.join(', ')} serving in ${Date.now() - t0} ms (logs in ${paths.logs})`);
  state.ui = opts.ui ? await runUi(opts, paths, state, previous, picker) : null;
  writeState(paths, state);
  return { state, builtMs: bin.builtMs, started };
}

/** The UI's state: the running one kept, else started; null (with a warning) when it cannot be built or started. */
async function runUi(
  opts: ClusterOptions,
  paths: ClusterPaths,
  state: ClusterState,
  previous: ClusterState | null,
  picker: PortPicker,
): Promise<ClusterState['ui']> {
  const prev = previous?.ui;
  if (prev && isAlive(prev.pid, prev.bin)) {
    if (previous?.address === state.address) return { ...prev, port: picker.keep(prev.port) };
    await stopPids([prev.pid!], prev.bin, STOP_GRACE_MS); // it talks to a frontend address that is gone
  }
  try {
    const bin = await ensureUiServer(goBuild(opts));
    const port = await picker.pick('Temporal UI', undefined, prev?.port);
    const t0 = Date.now();
    const daemon = await startUi(bin, paths, { address: state.address, port, namespace: state.namespace });
    opts.log(`Temporal UI serving at http://127.0.0.1:${port} in ${Date.now() - t0} ms`);
    return { port, pid: daemon.pid, bin };
  } catch (err) {
    opts.log(`warning: the cluster runs without the Temporal UI: ${(err as Error).message}`);
    return null;
  }
}

/** Stops every process of the cluster: the services (SIGTERM, SIGKILL after a grace), then PostgreSQL. */
export async function stopCluster(opts: Pick<ClusterOptions, 'dir' | 'log'>): Promise<void> {
  const paths = clusterPaths(path.resolve(opts.dir));
  const state = readState(paths);
  if (state) {
    const pids = SERVICES.map((s) => state.services[s].pid).filter((p): p is number => p !== null);
    const alive: string[] = SERVICES.filter((s) => isAlive(state.services[s].pid, state.serverBin));
    if (state.ui && isAlive(state.ui.pid, state.ui.bin)) alive.push('ui');
    if (alive.length) opts.log(`stopping ${alive.join(', ')}`);
    await Promise.all([
      stopPids(pids, state.serverBin, STOP_GRACE_MS),
      state.ui?.pid ? stopPids([state.ui.pid], state.ui.bin, STOP_GRACE_MS) : undefined,
    ]);
    for (const s of SERVICES) state.services[s].pid = null;
    if (state.ui) state.ui.pid = null;
  }
  let bin: string | undefined;
  try {
    bin = findPostgres();
  } catch {
    // Without PostgreSQL installed there is none of ours to stop.
  }
  if (bin && (await stopPostgres({ bin, paths }))) opts.log('stopped PostgreSQL');
  if (state) writeState(paths, { ...state, postgres: { ...state.postgres, pid: null } });
}

export interface ProcessStatus {
  name: string;
  pid: number | null;
  address: string;
  up: boolean;
}

/** Each process of the cluster as state.json knows it, and whether it runs; null when the cluster never ran here. */
export async function clusterStatus(dir: string): Promise<{ state: ClusterState; processes: ProcessStatus[] } | null> {
  const paths = clusterPaths(path.resolve(dir));
  const state = readState(paths);
  if (!state) return null;
  // Without PostgreSQL installed, none of ours runs.
  const pgUp = await Promise.resolve()
    .then(() => isPostgresRunning({ bin: findPostgres(), paths }))
    .catch(() => false);
  const processes: ProcessStatus[] = [
    { name: 'postgres', pid: pgUp ? postgresPid(paths) : null, address: `127.0.0.1:${state.postgres.port}`, up: pgUp },
    ...SERVICES.map((s) => {
      const { pid, grpc } = state.services[s];
      const up = isAlive(pid, state.serverBin);
      return { name: s, pid: up ? pid : null, address: `127.0.0.1:${grpc}`, up };
    }),
  ];
  if (state.ui) {
    const up = isAlive(state.ui.pid, state.ui.bin);
    processes.push({ name: 'ui', pid: up ? state.ui.pid : null, address: `http://127.0.0.1:${state.ui.port}`, up });
  }
  return { state, processes };
}

/**
 * A Switchyard stack for one benchmark: its own Temporal dev server (file-backed SQLite in a temp dir,
 * as `switchyard up` runs it), or a server that runs already (the local cluster), under a Stack
 * (./stack.ts) of real worker and API processes, set up as a user runs them: no API keys, warn-level logs.
 * `stop()` ends what it started; so does an interrupt or the bench process exiting.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { loadConfig, type PoolSettings } from '../src/config';
import { resolveTemporalBinary } from '../src/local/binaries';
import { pickFreePort, startDevServer, type DevServer } from '../src/local/dev-server';
import { poolTaskQueue, workflowTaskQueue } from '../src/temporal/task-queues';
import { onInterrupt } from './interrupts';
import { Stack } from './stack';
import { eventually } from './wait';

const NAMESPACE = 'default';
const READY_TIMEOUT_MS = 90_000;

export interface BenchStackOptions {
  pools: Record<string, PoolSettings>;
  /** Inference worker processes per pool to start with (default 1 each); change later with startWorkers / stopWorkers. */
  poolWorkers?: Record<string, number>;
  /** Workflow worker processes (default 1). */
  workflowWorkers?: number;
  /** Start the HTTP API too (default false). */
  api?: boolean;
  /** API processes with `api` (default 1), each on a port of its own. */
  apiProcesses?: number;
  /** A running Temporal server to use instead of a dev server of the stack's own (e.g. the local cluster). */
  server?: RunningServer;
  /** The dev server's SQLite pragmas (default: what `switchyard up` uses). */
  sqlitePragmas?: readonly string[];
  /** Dynamic config values for the dev server beyond what `switchyard up` gives it. */
  dynamicConfig?: readonly string[];
  /** Extra environment for the Switchyard processes. */
  env?: Record<string, string>;
  log: (line: string) => void;
}

/** A process to account CPU and disk writes to; `withChildren` counts the processes it starts too (PostgreSQL's backends). */
export interface TrackedProcess {
  name: string;
  pid: number;
  withChildren?: boolean;
}

export interface RunningServer {
  address: string;
  /** Its processes, for CPU accounting. */
  processes(): TrackedProcess[];
}

export interface BenchStack {
  temporalAddress: string;
  /** Set when the API was started: the first API process's. */
  apiUrl: string | null;
  /** Every API process's. */
  apiUrls: string[];
  prefix: string;
  client: Client;
  workflowTaskQueue: string;
  poolTaskQueue(pool: string): string;
  /** The environment the Switchyard processes run with: `loadConfig(env)` is their configuration. */
  env: NodeJS.ProcessEnv;
  /** Starts `n` more inference worker processes of `pool` and waits until each polls. */
  startWorkers(pool: string, n: number): Promise<void>;
  /** Stops (drains) every inference worker process of `pool`. */
  stopWorkers(pool: string): Promise<void>;
  /** Every running process of the stack by role, the server's included, for CPU accounting. */
  processes(): TrackedProcess[];
  stop(): Promise<void>;
}

async function startServer(dir: string, opts: BenchStackOptions): Promise<{ server: DevServer; cliPath: string; running: RunningServer }> {
  const config = loadConfig();
  const cli = await resolveTemporalBinary('cli', {
    explicitPath: config.temporal.cliPath,
    toolsDir: config.toolsDir,
    searchPath: config.searchPath,
    log: opts.log,
  });
  const server = await startDevServer({
    cliPath: cli.path,
    port: await pickFreePort(),
    uiPort: null,
    dbFile: path.join(dir, 'temporal.sqlite'),
    namespace: NAMESPACE,
    logFile: path.join(dir, 'temporal.log'),
    sqlitePragmas: opts.sqlitePragmas,
    dynamicConfig: opts.dynamicConfig,
    log: opts.log,
  });
  return {
    server,
    cliPath: cli.path,
    running: { address: server.address, processes: () => [{ name: 'temporal', pid: server.process.pid }] },
  };
}

export async function startBenchStack(opts: BenchStackOptions): Promise<BenchStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-'));
  let server: DevServer | undefined;
  let stack: Stack | undefined;
  let stopping: Promise<void> | undefined;

  // Unregistered only once done, so an interrupt during a stop waits for it rather than exiting under it.
  const stop = () =>
    (stopping ??= (async () => {
      await stack?.stop();
      await server?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      unregister();
    })());
  const unregister = onInterrupt(stop);

  try {
    const started = opts.server ? undefined : await startServer(dir, opts);
    server = started?.server;
    const temporal = opts.server ?? started!.running;
    const apiPorts = await Promise.all(Array.from({ length: opts.api ? (opts.apiProcesses ?? 1) : 0 }, () => pickFreePort()));
    const s = new Stack({
      pools: opts.pools,
      env: {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: NAMESPACE,
        TEMPORAL_API_KEY: '',
        TEMPORAL_TLS: '',
        TEMPORAL_CLI_PATH: started?.cliPath ?? '',
        SWITCHYARD_WORKER_POOLS: '',
        SWITCHYARD_API_KEYS: '', // off: the API listens on loopback only
        SWITCHYARD_HEARTBEAT_TIMEOUT_MS: '', // empty is unset: the default, not the tests' short timeout
        SWITCHYARD_SHUTDOWN_GRACE_MS: '2000',
        API_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        ...opts.env,
      },
    });
    stack = s;
    const client = await s.temporal();

    // Workers log at info: their ready line is an info line, and they log nothing per job below debug.
    const startWorker = (args: string[]) => s.worker(args, { LOG_LEVEL: 'info' });
    const startWorkers = async (pool: string, n: number) => {
      if (!(pool in opts.pools)) throw new Error(`no pool "${pool}" in this stack`);
      await Promise.all(Array.from({ length: n }, () => startWorker(['--pool', pool])));
    };
    const stopWorkers = async (pool: string) => {
      await Promise.all(
        s
          .processes()
          .filter((p) => p.name === `pool:${pool}`)
          .map((p) => p.stop()),
      );
    };

    const startApi = async (port: number) => {
      const url = `http://127.0.0.1:${port}`;
      // At warn the API prints no ready line (it would log every request at info), so ask it.
      const api = s.launch(['api'], { API_PORT: String(port) });
      const answers = eventually(
        `the API at ${url}`,
        () =>
          fetch(`${url}/readyz`).then(
            (r) => r.ok || undefined,
            () => undefined,
          ),
        READY_TIMEOUT_MS,
      );
      await Promise.race([answers, api.ready]);
    };
    await Promise.all([
      ...Array.from({ length: opts.workflowWorkers ?? 1 }, () => startWorker(['--workflows'])),
      ...Object.keys(opts.pools).map((pool) => startWorkers(pool, opts.poolWorkers?.[pool] ?? 1)),
      ...apiPorts.map((port) => startApi(port)),
    ]);

    const apiUrls = apiPorts.map((port) => `http://127.0.0.1:${port}`);
    return {
      temporalAddress: temporal.address,
      apiUrl: apiUrls[0] ?? null,
      apiUrls,
      prefix: s.prefix,
      client,
      workflowTaskQueue: workflowTaskQueue(s.prefix),
      poolTaskQueue: (pool) => poolTaskQueue(s.prefix, pool),
      env: s.env,
      startWorkers,
      stopWorkers,
      processes: () => [...temporal.processes(), ...s.processes().map((p) => ({ name: p.name, pid: p.pid }))],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A Switchyard stack for one benchmark: its own Temporal dev server (file-backed SQLite in a temp dir,
 * as `switchyard up` runs it), and real worker and API processes started through bin/switchyard.
 * `stop()` ends all of it; so does an interrupt or the bench process exiting.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type PoolSettings } from '../src/config';
import { resolveTemporalBinary } from '../src/local/binaries';
import { pickFreePort, startDevServer, type DevServer } from '../src/local/dev-server';
import { poolTaskQueue, workflowTaskQueue } from '../src/temporal/task-queues';
import { eventually } from './wait';
import { onInterrupt, spawnSwitchyard, type Child } from '../src/local/processes';

const NAMESPACE = 'default';
const READY_TIMEOUT_MS = 90_000;
const WORKER_READY = /"msg":"worker ready"/;

export interface BenchStackOptions {
  pools: Record<string, PoolSettings>;
  /** Inference worker processes per pool to start with (default 1 each); change later with startWorkers / stopWorkers. */
  poolWorkers?: Record<string, number>;
  /** Workflow worker processes (default 1). */
  workflowWorkers?: number;
  /** Start the HTTP API too (default false). */
  api?: boolean;
  /** The dev server's SQLite pragmas (default: what `switchyard up` uses). */
  sqlitePragmas?: readonly string[];
  /** Extra environment for the Switchyard processes. */
  env?: Record<string, string>;
  log: (line: string) => void;
}

export interface BenchStack {
  temporalAddress: string;
  /** Set when the API was started. */
  apiUrl: string | null;
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
  /** Every running process of the stack by role, for CPU accounting. */
  processes(): { name: string; pid: number }[];
  stop(): Promise<void>;
}

/** Rejects with `what` if `promise` takes longer than the start-up limit. */
function withinStartup<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not start within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export async function startBenchStack(opts: BenchStackOptions): Promise<BenchStack> {
  const config = loadConfig();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-'));
  const prefix = `bench${randomBytes(3).toString('hex')}`;
  const children = new Map<Child, string>(); // child → role: "workflows", "pool:<name>" or "api"
  let server: DevServer | undefined;
  let client: Client | undefined;
  let stopping: Promise<void> | undefined;

  // Unregistered only once done, so an interrupt during a stop waits for it rather than exiting under it.
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.allSettled([...children.keys()].map((c) => c.stop()));
      await client?.connection.close().catch(() => undefined);
      await server?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      unregister();
    })());
  const unregister = onInterrupt(stop);

  try {
    const cli = await resolveTemporalBinary('cli', {
      explicitPath: config.temporal.cliPath,
      toolsDir: config.toolsDir,
      searchPath: config.searchPath,
      log: opts.log,
    });
    server = await startDevServer({
      cliPath: cli.path,
      port: await pickFreePort(),
      uiPort: null,
      dbFile: path.join(dir, 'temporal.sqlite'),
      namespace: NAMESPACE,
      logFile: path.join(dir, 'temporal.log'),
      sqlitePragmas: opts.sqlitePragmas,
      log: opts.log,
    });
    const apiPort = await pickFreePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: NAMESPACE,
      TEMPORAL_API_KEY: '',
      TEMPORAL_TLS: '',
      TEMPORAL_CLI_PATH: cli.path,
      SWITCHYARD_TASK_QUEUE_PREFIX: prefix,
      SWITCHYARD_POOLS: JSON.stringify(opts.pools),
      SWITCHYARD_WORKER_POOLS: '',
      SWITCHYARD_API_KEYS: '', // off: the API listens on loopback only
      SWITCHYARD_DATA_DIR: dir,
      SWITCHYARD_SHUTDOWN_GRACE_MS: '2000',
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      LOG_LEVEL: 'warn',
      ...opts.env,
    };
    const temporal = new Client({ connection: await Connection.connect({ address: server.address }), namespace: NAMESPACE });
    client = temporal;

    // Workers log at info: their ready line is an info line, and they log nothing per job below debug.
    const workerEnv = { ...env, LOG_LEVEL: 'info' };
    const startRole = async (role: string, args: string[], n: number) => {
      const started = Array.from({ length: n }, () => spawnSwitchyard(role, ['worker', ...args], workerEnv, WORKER_READY));
      for (const c of started) children.set(c, role);
      await withinStartup(`${n} ${role} worker(s)`, Promise.all(started.map((c) => c.ready)));
    };
    const startWorkers = (pool: string, n: number) => {
      if (!(pool in opts.pools)) throw new Error(`no pool "${pool}" in this stack`);
      return startRole(`pool:${pool}`, ['--pool', pool], n);
    };
    const stopWorkers = async (pool: string) => {
      const of = [...children].filter(([, role]) => role === `pool:${pool}`).map(([c]) => c);
      await Promise.all(of.map((c) => c.stop()));
      for (const c of of) children.delete(c);
    };

    const startApi = async (url: string) => {
      // At warn the API prints no ready line (it would log every request at info), so ask it.
      const api = spawnSwitchyard('api', ['api'], env, /(?!)/);
      children.set(api, 'api');
      const answers = eventually(`the API at ${url}`, () => fetch(`${url}/readyz`).then((r) => r.ok || undefined, () => undefined), READY_TIMEOUT_MS);
      await Promise.race([answers, api.exited.then(() => api.ready)]);
    };
    const apiUrl = opts.api ? `http://127.0.0.1:${apiPort}` : null;
    await Promise.all([
      startRole('workflows', ['--workflows'], opts.workflowWorkers ?? 1),
      ...Object.keys(opts.pools).map((pool) => startWorkers(pool, opts.poolWorkers?.[pool] ?? 1)),
      ...(apiUrl ? [startApi(apiUrl)] : []),
    ]);

    const devServer = server;
    return {
      temporalAddress: server.address,
      apiUrl,
      prefix,
      client: temporal,
      workflowTaskQueue: workflowTaskQueue(prefix),
      poolTaskQueue: (pool) => poolTaskQueue(prefix, pool),
      env,
      startWorkers,
      stopWorkers,
      processes: () => [
        { name: 'temporal', pid: devServer.process.pid ?? -1 },
        ...[...children].map(([c, role]) => ({ name: role, pid: c.pid })),
      ],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Runs `temporal server start-dev` as a process of the kit (./processes.ts) for the no-external-server
 * setup. With a db file the state (and so every job) survives restarts; with `restart` the kit starts it
 * again on the same port and file whenever it dies, and workers and API reconnect on their own.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { startProcess, type LocalProcess } from './processes';
import { searchAttributeFlags } from '../temporal/search-attributes';

export interface DevServerOptions {
  cliPath: string;
  port: number;
  /** null = headless (no Web UI). */
  uiPort: number | null;
  /** The codec server the Web UI decodes payloads with (the API's /codec), if any. */
  codecEndpoint?: string;
  /** null = in-memory; everything is lost when the process ends. */
  dbFile: string | null;
  namespace: string;
  log?: (line: string) => void;
  /** SQLite pragmas for a file-backed server; SQLITE_PRAGMAS unless given (benchmarks compare others). */
  sqlitePragmas?: readonly string[];
  /** Dynamic config values beyond DYNAMIC_CONFIG, `KEY=VALUE` (benchmarks try server settings). */
  dynamicConfig?: readonly string[];
  /** Server output is appended here; without it, it is discarded (only the tail is kept for error messages). */
  logFile?: string;
  /** Start it again (same port, same db file, with the kit's backoff) whenever it dies once it has served. */
  restart?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: LocalProcess;
  /** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited (and is not restarted). */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

/** Features the job service relies on; some are off by default in the dev server. */
export const DYNAMIC_CONFIG = [
  'frontend.enableUpdateWorkflowExecution=true',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  'matching.enableFairness=true',
  // Priority and fairness order tasks within a partition; one server on one machine gains nothing
  // from four, and with one the order is exact and task-queue stats cover the whole queue.
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  // Task-queue statistics are cached 5 s by default (seconds here): 1 s lets the autoscaler see a burst within a tick or two.
  'matching.TaskQueueInfoByBuildIdTTL=1',
];

/**
 * Write-ahead logging with a sync on every commit: as durable as SQLite's default rollback journal (a
 * committed job survives a power cut), with fewer syncs per commit, so the embedded server sustains
 * more jobs per second (see bench/README, "The embedded server's SQLite settings").
 */
export const SQLITE_PRAGMAS: readonly string[] = ['journal_mode=wal', 'synchronous=FULL'];

export function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Fails fast if the port is taken: otherwise readiness could succeed against some other server on it. */
function assertPortFree(port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`${what} port ${HOST}:${port} is not free (${err.code ?? err.message}); is another Temporal dev server running?`)),
    );
    server.listen(port, HOST, () => server.close(() => resolve()));
  });
}

export function devServerArgs(
  opts: Pick<DevServerOptions, 'port' | 'uiPort' | 'codecEndpoint' | 'dbFile' | 'namespace' | 'sqlitePragmas' | 'dynamicConfig'>,
): string[] {
  const pragmas = opts.sqlitePragmas ?? SQLITE_PRAGMAS;
  return [
    'server',
    'start-dev',
    '--ip',
    HOST,
    '--port',
    String(opts.port),
    ...(opts.uiPort === null ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
    ...(opts.uiPort !== null && opts.codecEndpoint ? ['--ui-codec-endpoint', opts.codecEndpoint] : []),
    ...(opts.dbFile === null ? [] : ['--db-filename', opts.dbFile, ...pragmas.flatMap((p) => ['--sqlite-pragma', p])]),
    '--namespace',
    opts.namespace,
    '--log-level',
    'warn',
    ...searchAttributeFlags(),
    ...[...DYNAMIC_CONFIG, ...(opts.dynamicConfig ?? [])].flatMap((kv) => ['--dynamic-config-value', kv]),
  ];
}

function portAcceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function isServing(port: number, namespace: string): Promise<boolean> {
  // A cheap TCP probe first: a gRPC connect to a closed port sits in reconnect backoff for ~1 s.
  if (!(await portAcceptsTcp(port))) return false;
  const address = `${HOST}:${port}`;
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1_000 });
    await connection.withDeadline(Date.now() + 2_000, () => connection!.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/** How a process that ended before it served ended, from the kit's status: an exit code, a spawn failure or a signal. */
const endedHow = (status: string): string =>
  /^-?\d+$/.test(status) ? `exited with code ${status}` : status.startsWith('failed') ? status : `was killed by ${status}`;

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const address = `${HOST}:${opts.port}`;
  const uiUrl = opts.uiPort === null ? null : `http://${HOST}:${opts.uiPort}`;
  await assertPortFree(opts.port, 'gRPC');
  if (opts.uiPort !== null) await assertPortFree(opts.uiPort, 'Web UI');
  if (opts.dbFile !== null) fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  if (opts.logFile) fs.mkdirSync(path.dirname(path.resolve(opts.logFile)), { recursive: true });

  const logStream = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const where = `(namespace ${opts.namespace}, UI ${uiUrl ?? 'off'}, db ${opts.dbFile ?? 'in-memory'})`;
  const server = startProcess(opts.cliPath, devServerArgs(opts), {
    name: 'temporal',
    // In its own process group, so a terminal's Ctrl-C reaches only our launcher, which stops the server
    // last — after the workers have drained and reported their results to it.
    detached: true,
    readyProbe: () => isServing(opts.port, opts.namespace),
    readyTimeoutMs: READY_TIMEOUT_MS,
    onReady: ({ restarts, ms }) => log(`Temporal dev server ${restarts ? 'ready again' : 'ready'} at ${address} in ${ms} ms ${where}`),
    onLine: (line) => logStream?.write(`${line}\n`),
    note: log,
    restart: opts.restart ? 'once-ready' : false,
    stopGraceMs: STOP_GRACE_MS,
  });
  const logClosed = server.exited.then(() => new Promise<void>((resolve) => (logStream ? logStream.end(resolve) : resolve())));
  const stop = async () => {
    await server.stop();
    await logClosed;
  };

  try {
    await server.ready;
  } catch {
    const status = server.exitStatus;
    await stop();
    const why = status === undefined ? `was not ready at ${address} within ${READY_TIMEOUT_MS / 1000} s` : endedHow(status);
    const tail = server
      .tail()
      .split('\n')
      .filter((l) => l.trim());
    throw new Error(
      `Temporal dev server (${opts.cliPath}) ${why}.` +
        (tail.length ? `\nLast lines of its output:\n${tail.map((l) => `  ${l}`).join('\n')}` : '') +
        (opts.logFile ? `\nFull log: ${opts.logFile}` : ''),
    );
  }
  return { address, uiUrl, process: server, stop };
}

/**
 * The cluster's PostgreSQL: Debian's `postgresql` package, its own data directory (initialised on first
 * use), its own socket directory and a loopback port. PostgreSQL refuses to run as root, so as root every
 * command runs as the `postgres` user (`runuser -u postgres --`) on files that user owns.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ActionNeeded } from '../../errors';
import type { ClusterPaths } from './state';

const run = promisify(execFile);
const PG_ROOT = '/usr/lib/postgresql';
const TOOLS = ['initdb', 'pg_ctl', 'postgres'] as const;
const OS_USER = 'postgres';
/** The superuser initdb creates; the Temporal server and its SQL tool log in as it, with the password below. */
export const PG_USER = 'postgres';

export interface Postgres {
  bin: string;
  paths: ClusterPaths;
  password: string;
}

/** The newest installed `/usr/lib/postgresql/<version>/bin` that has initdb, pg_ctl and postgres. */
export function findPostgres(): string {
  const versions = (fs.existsSync(PG_ROOT) ? fs.readdirSync(PG_ROOT) : [])
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(PG_ROOT, v, 'bin');
    if (TOOLS.every((t) => fs.existsSync(path.join(bin, t)))) return bin;
  }
  throw new ActionNeeded(
    `PostgreSQL is not installed: no ${PG_ROOT}/<version>/bin with ${TOOLS.join(', ')}. ` +
      "Install Debian's package: apt-get install postgresql",
  );
}

const asRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL tool as the user that may run it. */
async function pgTool(bin: string, tool: string, args: string[]): Promise<string> {
  const exe = path.join(bin, tool);
  const [cmd, argv] = asRoot() ? ['runuser', ['-u', OS_USER, '--', exe, ...args]] : [exe, args];
  try {
    const { stdout, stderr } = await run(cmd, argv, { timeout: 120_000 });
    return `${stdout}${stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number; message: string };
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
    throw Object.assign(new Error(`${tool} ${args.join(' ')} failed (${e.code ?? e.message})${out ? `:\n${out}` : ''}`), {
      exitCode: e.code,
    });
  }
}

/** Creates `dir` with `mode`, owned by the postgres user when running as root. */
function ownDir(dir: string, mode: number): void {
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chmodSync(dir, mode);
  if (asRoot()) chownToPostgres(dir);
}

function chownToPostgres(file: string): void {
  const { uid, gid } = postgresUser();
  fs.chownSync(file, uid, gid);
}

let cachedUser: { uid: number; gid: number } | undefined;
function postgresUser(): { uid: number; gid: number } {
  if (cachedUser) return cachedUser;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${OS_USER}:`));
  if (!line) throw new ActionNeeded(`running as root, PostgreSQL needs the "${OS_USER}" user (Debian's postgresql package creates it)`);
  const [, , uid, gid] = line.split(':');
  return (cachedUser = { uid: Number(uid), gid: Number(gid) });
}

/** The password of the cluster's superuser: made on first use and kept (mode 600) beside the data. */
function passwordOf(paths: ClusterPaths): string {
  const file = path.join(paths.root, 'postgres-password');
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(18).toString('hex'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

/** The cluster's PostgreSQL: the installed binaries, its files, and its password (made on first use). */
export function postgresOf(paths: ClusterPaths): Postgres {
  const bin = findPostgres();
  fs.mkdirSync(paths.root, { recursive: true });
  return { bin, paths, password: passwordOf(paths) };
}

/** Creates the data directory with initdb unless it holds a database already. */
export async function initPostgres(paths: ClusterPaths, log: (line: string) => void): Promise<Postgres> {
  const pg = postgresOf(paths);
  const { bin, password } = pg;
  if (fs.existsSync(path.join(paths.pgData, 'PG_VERSION'))) return pg;

  ownDir(paths.pgData, 0o700);
  // initdb reads the password from a file the postgres user can read; it is removed right after.
  const pwfile = path.join(paths.pgData, '..', `.pwfile-${process.pid}`);
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (asRoot()) chownToPostgres(pwfile);
  try {
    log(`PostgreSQL: initialising ${paths.pgData} (${bin})`);
    await pgTool(bin, 'initdb', [
      '-D',
      paths.pgData,
      '-U',
      PG_USER,
      `--pwfile=${pwfile}`,
      '--auth-local=scram-sha-256',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--no-locale',
    ]);
  } catch (err) {
    throw new Error(`${(err as Error).message}` + (asRoot() ? `\n(the "${OS_USER}" user must be able to reach ${paths.pgData})` : ''), {
      cause: err,
    });
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  // Our settings in a file of their own, rewritten on each start (the port may change).
  fs.appendFileSync(path.join(paths.pgData, 'postgresql.conf'), "\ninclude_if_exists = 'switchyard.conf'\n");
  return pg;
}

function writeSettings(pg: Postgres, port: number): void {
  ownDir(pg.paths.pgSocket, 0o755);
  const file = path.join(pg.paths.pgData, 'switchyard.conf');
  fs.writeFileSync(
    file,
    [
      '# Written by `switchyard cluster up` on every start.',
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${pg.paths.pgSocket.replace(/'/g, "''")}'`,
      // Four Temporal services with up to 12 connections each, the SQL tool, and room to spare.
      'max_connections = 100',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  if (asRoot()) chownToPostgres(file);
}

export async function isPostgresRunning(pg: Pick<Postgres, 'bin' | 'paths'>): Promise<boolean> {
  if (!fs.existsSync(path.join(pg.paths.pgData, 'PG_VERSION'))) return false;
  try {
    await pgTool(pg.bin, 'pg_ctl', ['-D', pg.paths.pgData, 'status']);
    return true;
  } catch {
    return false;
  }
}

/** Starts it on `port` and waits until it accepts connections; a running one is left as it is. */
export async function startPostgres(pg: Postgres, port: number, log: (line: string) => void): Promise<void> {
  if (await isPostgresRunning(pg)) return;
  writeSettings(pg, port);
  fs.mkdirSync(pg.paths.logs, { recursive: true });
  const logFile = path.join(pg.paths.logs, 'postgres.log');
  fs.appendFileSync(logFile, '');
  if (asRoot()) chownToPostgres(logFile);
  const t0 = Date.now();
  try {
    await pgTool(pg.bin, 'pg_ctl', ['-D', pg.paths.pgData, '-l', logFile, '-w', '-t', '60', 'start']);
  } catch (err) {
    throw new Error(`PostgreSQL did not start; see ${logFile}\n${(err as Error).message}`, { cause: err });
  }
  log(`PostgreSQL: running on 127.0.0.1:${port} in ${Date.now() - t0} ms (log ${logFile})`);
}

/** The port the running PostgreSQL was given (from our settings file), if known. */
export function configuredPort(paths: ClusterPaths): number | undefined {
  try {
    const m = /^port = (\d+)$/m.exec(fs.readFileSync(path.join(paths.pgData, 'switchyard.conf'), 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The postmaster's pid, from postmaster.pid, while it runs. */
export function postgresPid(paths: ClusterPaths): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(paths.pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** `pg_ctl stop -m fast`: ends sessions, checkpoints and exits. */
export async function stopPostgres(pg: Pick<Postgres, 'bin' | 'paths'>): Promise<boolean> {
  if (!(await isPostgresRunning(pg))) return false;
  await pgTool(pg.bin, 'pg_ctl', ['-D', pg.paths.pgData, '-m', 'fast', '-w', '-t', '60', 'stop']);
  return true;
}

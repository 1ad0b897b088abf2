/**
 * A throwaway local Redis for the BullMQ scenario: Debian's `redis-server` on a free loopback port with
 * its own temp dir, configured as BullMQ's "Going to production" guide recommends (AOF persistence,
 * `maxmemory-policy noeviction`), with the AOF's fsync mode as asked. `stop()` shuts it down gracefully
 * and removes the dir; it never outlives the process that started it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pickFreePort } from '../../src/local/dev-server';
import { killOnExit, terminate } from '../../src/local/child-process';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 10_000;

/**
 * When Redis fsyncs its append-only file. `everysec` is BullMQ's and Redis's recommendation: a crash of
 * the machine can lose about the last second of acknowledged writes (Redis's docs: up to 2 s when the
 * disk is slow). `always` fsyncs before it replies (one fsync per event-loop turn, for every client
 * served in it), so an acknowledged write survives a machine crash: the durability of Switchyard's
 * embedded server, which fsyncs every SQLite commit. A crash of redis-server alone loses nothing in
 * either mode that was written to the kernel.
 */
export type Appendfsync = 'always' | 'everysec';

/**
 * The settings, recorded with the results. RDB snapshots are off: AOF is the durability mechanism, and a
 * fork for a snapshot mid-run would only add noise.
 */
function redisSettings(appendfsync: Appendfsync): Readonly<Record<string, string>> {
  return { appendonly: 'yes', appendfsync, 'maxmemory-policy': 'noeviction', save: '' };
}

export interface RedisServer {
  host: string;
  port: number;
  pid: number;
  /** `redis-server --version`, e.g. `Redis server v=7.0.15 …`. */
  version: string;
  settings: Readonly<Record<string, string>>;
  process: ChildProcess;
  /** SIGTERM (Redis's graceful shutdown: final AOF fsync), SIGKILL after 10 s; removes the temp dir. */
  stop(): Promise<void>;
}

/** The `redis-server` binary on PATH, or an error that says how to install it. */
export function findRedisServer(searchPath = process.env.PATH ?? ''): string {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'redis-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  throw new Error("redis-server was not found on PATH: install Debian's redis-server: apt-get install -y redis-server");
}

/** Sends PING over a raw socket; true when Redis answers +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export async function startRedis(opts: { appendfsync: Appendfsync; log?: (line: string) => void }): Promise<RedisServer> {
  const settings = redisSettings(opts.appendfsync);
  const bin = findRedisServer();
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const port = await pickFreePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--protected-mode',
    'yes',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    path.join(dir, 'redis.log'),
    '--loglevel',
    'warning',
    ...Object.entries(settings).flatMap(([k, v]) => [`--${k}`, v]),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  killOnExit(child);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => ((exitInfo ??= `failed to start: ${err.message}`), resolve()));
    child.once('exit', (code, signal) => ((exitInfo ??= signal ? `killed by ${signal}` : `exited with code ${code}`), resolve()));
  });
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  const stop = async () => {
    if (exitInfo === undefined) await terminate(child, exited, STOP_GRACE_MS);
    cleanup();
  };

  const started = Date.now();
  while (exitInfo === undefined && !(await ping(port))) {
    if (Date.now() - started > READY_TIMEOUT_MS) {
      await stop();
      throw new Error(`redis-server did not answer PING on ${HOST}:${port} within ${READY_TIMEOUT_MS} ms\n${stderr}`);
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
  }
  if (exitInfo !== undefined) {
    const log = fs.existsSync(path.join(dir, 'redis.log')) ? fs.readFileSync(path.join(dir, 'redis.log'), 'utf8').slice(-2000) : '';
    cleanup();
    throw new Error(`redis-server ${exitInfo}\n${stderr}${log}`);
  }
  opts.log?.(
    `redis-server (appendfsync ${opts.appendfsync}) ready at ${HOST}:${port} in ${Date.now() - started} ms (pid ${child.pid}, ${version})`,
  );
  return { host: HOST, port, pid: child.pid!, version, settings, process: child, stop };
}

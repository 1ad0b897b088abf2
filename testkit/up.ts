/**
 * `switchyard up` (what `npm start` runs) as a real process for tests and the soak: on free ports of its own,
 * in a process group of its own (so whatever happens, its whole tree can be ended at once), with its banner
 * read back; and the processes it runs, found by role under it and killed there.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { pickFreePort } from '../src/local/dev-server';
import { processName, READY_LINES } from '../src/local/processes';
import { spawnSwitchyard, type ProcessHandle } from './stack';
import { eventually, WAIT_LIMIT_MS } from './wait';

export interface Ports {
  grpc: number;
  ui: number;
  api: number;
}

export async function freePorts(): Promise<Ports> {
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await pickFreePort());
  const [grpc, ui, api] = [...ports] as [number, number, number];
  return { grpc, ui, api };
}

/** The environment that puts `up` on these ports (its own dev server: no TEMPORAL_ADDRESS). */
export const upPortsEnv = (ports: Ports): Record<string, string> => ({
  SWITCHYARD_DEV_SERVER_PORT: String(ports.grpc),
  SWITCHYARD_DEV_UI_PORT: String(ports.ui),
  API_PORT: String(ports.api),
});

export interface Banner {
  text: string;
  apiUrl: string;
  temporal: string;
  uiUrl: string;
  /** The banner's `curl -X POST` example, taken apart. */
  curl: { url: string; headers: Record<string, string>; body: string };
}

export function parseBanner(lines: string[]): Banner {
  const from = lines.findIndex((l) => l.startsWith('Switchyard is up'));
  const text = lines.slice(from, lines.findIndex((l, i) => i > from && l.startsWith('Ctrl-C stops everything')) + 1).join('\n');
  const field = (label: string) => {
    const value = new RegExp(`^  ${label} +(\\S+)`, 'm').exec(text)?.[1];
    if (!value) throw new Error(`no "${label}" in the banner:\n${text}`);
    return value;
  };
  const curl = /curl -s -X POST (\S+)((?: -H '[^']*')+) \\\n +-d '([^']*)'/.exec(text);
  if (!curl) throw new Error(`no curl example in the banner:\n${text}`);
  const headers = Object.fromEntries([...curl[2]!.matchAll(/-H '([^:]+): ([^']*)'/g)].map((h) => [h[1]!, h[2]!]));
  return {
    text,
    apiUrl: field('API'),
    temporal: field('Temporal'),
    uiUrl: field('Temporal UI'),
    curl: { url: curl[1]!, headers, body: curl[3]! },
  };
}

export interface Up {
  process: ProcessHandle;
  pid: number;
  banner: Banner;
  readyMs: number;
}

/** Starts `up` in a process group of its own and waits for its banner; if it never comes, ends the group. */
export async function launchUp(env: NodeJS.ProcessEnv): Promise<Up> {
  const startedAt = Date.now();
  const proc = spawnSwitchyard(['up'], env, { detached: true });
  try {
    await proc.waitForLine(/^Ctrl-C stops everything/);
  } catch (err) {
    killGroup(proc);
    throw err;
  }
  return { process: proc, pid: proc.pid, banner: parseBanner(proc.lines), readyMs: Date.now() - startedAt };
}

/**
 * Ctrl-C: SIGINT to `up` alone (`again`: a second one once it is stopping); resolves with its exit code
 * (or signal) once it has exited.
 */
export async function interrupt(up: Up, opts: { again?: boolean } = {}): Promise<{ exit: string; ms: number }> {
  const sentAt = Date.now();
  up.process.kill('SIGINT');
  if (opts.again) {
    await up.process.waitForLine(/^SIGINT: stopping/);
    up.process.kill('SIGINT');
  }
  const exit = await eventually('`up` to exit after SIGINT', () => up.process.exitStatus);
  return { exit, ms: Date.now() - sentAt };
}

/**
 * Ends `p`'s process group: `up` and everything it started. Its dev server leads a group of its own (so a
 * terminal's Ctrl-C reaches only `up`, src/local/dev-server.ts): that one is found under `up` and ended too.
 */
export function killGroup(p: ProcessHandle): void {
  const servers = childrenOf(p.pid).filter((c) => roleOf(c) === 'temporal dev server');
  for (const leader of [p.pid, ...servers.map((s) => s.pid)]) {
    try {
      process.kill(-leader, 'SIGKILL');
    } catch {
      // the group is gone: nothing left to end
    }
  }
}

export interface Proc {
  pid: number;
  cmd: string;
}

/** Direct children of `pid`, optionally only those whose command line matches `pattern` (pgrep -f). */
export function childrenOf(pid: number, pattern?: string): Proc[] {
  try {
    const out = execFileSync('pgrep', ['-a', '-P', String(pid), ...(pattern ? ['-f', pattern] : [])], { encoding: 'utf8' });
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => ({ pid: Number(line.slice(0, line.indexOf(' '))), cmd: line.slice(line.indexOf(' ') + 1) }));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

export const descendantsOf = (pid: number): Proc[] => childrenOf(pid).flatMap((c) => [c, ...descendantsOf(c.pid)]);

/** What a child of `up` is: `worker --pool local`, `api`, … or `temporal dev server`; undefined for helpers. */
export const roleOf = ({ cmd }: Proc): string | undefined =>
  /bin\/switchyard (.+)$/.exec(cmd)?.[1] ?? (/ server start-dev /.test(cmd) ? 'temporal dev server' : undefined);

/** The one child of `up` in `role` (as roleOf names it), if it runs now. */
export const childInRole = (up: Up, role: string): Proc | undefined => childrenOf(up.pid).find((c) => roleOf(c) === role);

/** The line `up` prints once a restarted child in `role` serves again: its ready line, behind its name. */
function backLine(role: string): RegExp {
  if (role === 'temporal dev server') return /^Temporal dev server ready again at /;
  const args = role.split(' ');
  return new RegExp(`^\\[${processName(args)}\\] .*${READY_LINES[args[0] as 'worker' | 'api'].source}`);
}

/**
 * SIGKILLs the child of `up` in `role` (as roleOf names it); `back` resolves once `up` has started it again and
 * it serves, with the milliseconds from the kill. Undefined when no child runs in that role.
 */
export function killInRole(up: Up, role: string, timeoutMs = WAIT_LIMIT_MS): { pid: number; back: Promise<number> } | undefined {
  const victim = childInRole(up, role);
  if (!victim) return undefined;
  const from = up.process.lines.length;
  const killedAt = Date.now();
  process.kill(victim.pid, 'SIGKILL');
  return { pid: victim.pid, back: up.process.waitForLine(backLine(role), timeoutMs, from).then(() => Date.now() - killedAt) };
}

/** Running, not a zombie (an exited child whose parent has not collected it counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

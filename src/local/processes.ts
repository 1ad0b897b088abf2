/**
 * The processes a benchmark starts, and the promise that they end with it: `stop()` for the normal
 * path, `onInterrupt` handlers for Ctrl-C / SIGTERM, and a last SIGKILL on exit for anything left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const BIN = path.resolve(__dirname, '../../bin/switchyard');
const STOP_GRACE_MS = 15_000;
const TAIL_LINES = 30;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Makes sure `child` does not outlive this process, whatever way it ends. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

const interruptHandlers = new Set<() => Promise<void>>();

/** Runs `stop` if the run is interrupted; returns the function that unregisters it. */
export function onInterrupt(stop: () => Promise<void>): () => void {
  interruptHandlers.add(stop);
  return () => interruptHandlers.delete(stop);
}

export async function runInterruptHandlers(): Promise<void> {
  await Promise.allSettled([...interruptHandlers].map((stop) => stop()));
}

export interface Child {
  name: string;
  pid: number;
  /** Resolves when it prints a line matching `readyLine`; rejects if it exits first. */
  ready: Promise<void>;
  exited: Promise<void>;
  /** The last lines it printed, for error messages. */
  tail(): string;
  /** SIGTERM (workers drain), SIGKILL if it has not ended after a grace period. */
  stop(): Promise<void>;
}

/** Starts `bin/switchyard <args>`; `onLine` sees each line it prints as it comes, for a scenario that times them. */
export function spawnSwitchyard(name: string, args: string[], env: NodeJS.ProcessEnv, readyLine: RegExp, onLine?: (line: string) => void): Child {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  const lines: string[] = [];
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (readyLine.test(line)) markReady();
      onLine?.(line);
      lines.push(line);
      lines.splice(0, Math.max(0, lines.length - TAIL_LINES));
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tail = () => lines.join('\n');
  const readyOrExit = Promise.race([ready, exited.then(() => Promise.reject(new Error(`${name} exited while starting; its output:\n${tail()}`)))]);
  readyOrExit.catch(() => undefined); // an exit after start-up, when nobody waits for readiness, is no error
  return {
    name,
    pid: child.pid ?? -1,
    ready: readyOrExit,
    exited,
    tail,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

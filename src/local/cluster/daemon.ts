/**
 * A process of the local cluster: started detached, in a session of its own, with its output appended to a
 * log file, so it keeps running after `switchyard cluster up` has returned; `down` stops it by its pid.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Daemon {
  name: string;
  pid: number;
  logFile: string;
  /** Set once it has exited (while this process still runs): its exit code or signal. */
  exited(): string | undefined;
  /** The last lines of its log. */
  tail(lines?: number): string;
}

export function startDaemon(name: string, command: string, args: string[], opts: { logFile: string; cwd: string }): Daemon {
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const fd = fs.openSync(opts.logFile, 'a');
  const from = fs.fstatSync(fd).size;
  // Variables meant for Switchyard's Temporal client (TEMPORAL_ADDRESS, …) are not the server's business.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
  const child = spawn(command, args, { cwd: opts.cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  child.unref();
  let status: string | undefined;
  child.once('exit', (code, signal) => (status = signal ?? `code ${code}`));
  child.once('error', (err) => (status = err.message));
  return {
    name,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    exited: () => status,
    tail: (lines = 15) => tailOf(opts.logFile, lines, from),
  };
}

/** The last lines of `file` written after byte `from` (what this run of a process wrote). */
export function tailOf(file: string, lines: number, from = 0): string {
  try {
    const size = fs.statSync(file).size;
    const start = Math.max(from, size - 256 * 1024);
    const buf = Buffer.alloc(size - start);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, buf, 0, buf.length, start);
    fs.closeSync(fd);
    const text = buf.toString('utf8');
    // The server logs JSON with stack traces: a line's start says enough.
    return text
      .split('\n')
      .filter(Boolean)
      .slice(-lines)
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
      .join('\n');
  } catch {
    return '';
  }
}

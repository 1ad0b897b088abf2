/**
 * What a process writes to disk, for saying where a job's cost goes: /proc/<pid>/io counters (free to
 * read, no effect on the process), and an optional strace count of write/sync system calls over a
 * window (strace slows the traced process a lot, so only counts from such a window are used, never
 * its timings as results). Linux only; elsewhere both answer undefined.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childrenOf } from './cpu';

/**
 * Bytes the process has caused to be written to storage (page cache writeback included), from /proc/<pid>/io.
 * With its children, theirs too (PostgreSQL's backends): an ended child's bytes are in its parent's count.
 */
export function diskWriteBytes(pid: number, withChildren = false): number | undefined {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/io`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('write_bytes: '));
    const own = line === undefined ? undefined : Number(line.slice('write_bytes: '.length));
    if (own === undefined || !withChildren) return own;
    return childrenOf(pid).reduce((sum, child) => sum + (diskWriteBytes(child) ?? 0), own);
  } catch {
    return undefined;
  }
}

export type SyscallCounts = Record<string, number>;
export const TRACED_SYSCALLS = ['fsync', 'fdatasync', 'pwrite64', 'write'];

/**
 * Counts `TRACED_SYSCALLS` made by every thread of `pid` while `during` runs; undefined without strace
 * (or when it cannot attach).
 */
export async function straceCounts(pid: number, during: () => Promise<void>): Promise<SyscallCounts | undefined> {
  if (spawnSync('strace', ['-V']).status !== 0) return undefined;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-strace-')), 'summary');
  const tracer = spawn('strace', ['-f', '-c', '-o', out, '-e', `trace=${TRACED_SYSCALLS.join(',')}`, '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => tracer.once('exit', () => resolve()));
  try {
    // strace says "Process N attached" once per thread; give it a moment to reach all of them.
    await new Promise<void>((resolve) => {
      tracer.stderr.on('data', () => setTimeout(resolve, 300));
      void exited.then(resolve);
    });
    await during();
  } finally {
    tracer.kill('SIGINT'); // detaches and writes the summary
    await exited;
  }
  try {
    const counts: SyscallCounts = {};
    // Rows: "% time  seconds  usecs/call  calls  [errors]  syscall"
    for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
      const cols = line.trim().split(/\s+/);
      const name = cols[cols.length - 1]!;
      if (TRACED_SYSCALLS.includes(name)) counts[name] = Number(cols[3]);
    }
    return counts;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}

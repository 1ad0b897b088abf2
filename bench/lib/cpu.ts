/**
 * CPU time of the stack's processes from /proc, so a run can say where the time went (server, workers,
 * API) without a profiler. Linux only; elsewhere the samples are empty.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  try {
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces): state is [0], ppid [1]. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The processes `pid` started that run now. */
export function childrenOf(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && statFields(entry)?.[1] === String(pid))
    .map(Number);
}

/**
 * User + system CPU seconds of one process, or undefined when it is gone. With its children: theirs too, and
 * those of children that have ended (cutime, cstime), so a short-lived backend's time is not lost.
 */
function cpuSeconds(pid: number, withChildren: boolean): number | undefined {
  const fields = statFields(pid);
  if (!fields) return undefined;
  // utime, stime, cutime, cstime are the 12th to 15th fields after the name.
  const ticks = (f: string[], all: boolean) => Number(f[11]) + Number(f[12]) + (all ? Number(f[13]) + Number(f[14]) : 0);
  let total = ticks(fields, withChildren);
  for (const child of withChildren ? childrenOf(pid) : []) {
    const f = statFields(child);
    if (f) total += ticks(f, true);
  }
  return total / clockTicks();
}

/** Seconds the whole machine spent busy (all cores) and waiting for I/O, from /proc/stat. */
function machineSeconds(): { machine: number; iowait: number } | undefined {
  try {
    const [, ...fields] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const [user = 0, nice = 0, system = 0, , iowait = 0, irq = 0, softirq = 0, steal = 0] = fields.map(Number);
    return { machine: (user + nice + system + irq + softirq + steal) / clockTicks(), iowait: iowait / clockTicks() };
  } catch {
    return undefined;
  }
}
const MACHINE_KEYS = ['machine', 'iowait'];

export interface CpuSample {
  at: number;
  /** CPU seconds by process name (processes sharing a name are summed), plus `machine` (all busy time) and `iowait`. */
  seconds: Map<string, number>;
}

export function sampleCpu(processes: readonly { name: string; pid: number; withChildren?: boolean }[]): CpuSample {
  const seconds = new Map<string, number>();
  for (const { name, pid, withChildren = false } of [...processes, { name: 'bench', pid: process.pid }]) {
    const s = cpuSeconds(pid, withChildren);
    if (s !== undefined) seconds.set(name, (seconds.get(name) ?? 0) + s);
  }
  for (const [key, value] of Object.entries(machineSeconds() ?? {})) seconds.set(key, value);
  return { at: performance.now(), seconds };
}

/**
 * Per process name, CPU seconds used between two samples (a process started in between counts from 0);
 * `other` is what the rest of the machine used meanwhile — other work that skews the numbers.
 * `iowait` is time cores sat idle waiting for the disk (SQLite's fsyncs show up here).
 */
export function cpuUsed(before: CpuSample, after: CpuSample): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of after.seconds) out[name] = s - (before.seconds.get(name) ?? 0);
  if (out.machine !== undefined) {
    const ours = Object.entries(out).reduce((sum, [name, s]) => (MACHINE_KEYS.includes(name) ? sum : sum + s), 0);
    out.other = Math.max(0, out.machine - ours);
  }
  return out;
}

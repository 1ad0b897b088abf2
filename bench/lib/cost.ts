/**
 * What a load cost the processes that served it: CPU by process name (./cpu.ts) and the bytes their store
 * wrote to disk (/proc/<pid>/io, ./syscalls.ts), sampled right before and right after the load.
 */
import { cpuUsed, sampleCpu } from './cpu';
import type { LoadResult } from './load';
import { diskWriteBytes } from './syscalls';

export interface LoadCost<T = LoadResult> {
  /** What the load returned. */
  load: T;
  /** CPU seconds by process name (the bench process as `bench`), with the machine's `machine`, `iowait` and `other`. */
  cpu: Record<string, number>;
  /** Bytes the store wrote to disk; NaN where /proc cannot tell. */
  diskBytes: number;
  wallS: number;
}

export async function measureCost<T = LoadResult>(
  processes: readonly { name: string; pid: number }[],
  storePid: number,
  load: () => Promise<T>,
): Promise<LoadCost<T>> {
  const [cpu0, io0] = [sampleCpu(processes), diskWriteBytes(storePid)];
  const result = await load();
  const [cpu1, io1] = [sampleCpu(processes), diskWriteBytes(storePid)];
  return { load: result, cpu: cpuUsed(cpu0, cpu1), diskBytes: (io1 ?? NaN) - (io0 ?? NaN), wallS: (cpu1.at - cpu0.at) / 1000 };
}

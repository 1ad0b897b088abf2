/**
 * The soak's faults: SIGKILL of a process `up` runs — a worker, the API, the Temporal dev server — at random
 * moments, a bounded number of them, each waiting until `up` has started the last victim again and it serves.
 */
import { killInRole, type Up } from '../../testkit/up';

/** A process that is not back within this is a failure of the soak in itself. */
const BACK_WITHIN_MS = 300_000;

/** Roles as testkit/up.ts names the children of `up`; the first faults go round them, so each dies at least once. */
export const VICTIMS = ['worker --pool remote', 'api', 'temporal dev server', 'worker --workflows', 'worker --pool local'] as const;

export interface Fault {
  /** Milliseconds from the start of the soak. */
  at: number;
  role: (typeof VICTIMS)[number];
  /** From the kill until `up` said it serves again. */
  backMs?: number;
}

/** `count` faults at random moments between 10 % and 80 % of `durationMs`, in order. */
export function planFaults(count: number, durationMs: number, random = Math.random): Fault[] {
  const times = Array.from({ length: count }, () => durationMs * (0.1 + 0.7 * random())).sort((a, b) => a - b);
  return times.map((at, i) => ({ at: Math.round(at), role: VICTIMS[i < VICTIMS.length ? i : Math.floor(random() * VICTIMS.length)]! }));
}

/** Kills the process in `fault.role` and resolves once `up` has it serving again. */
export async function inflict(up: Up, fault: Fault, log: (line: string) => void): Promise<void> {
  const killed = killInRole(up, fault.role, BACK_WITHIN_MS);
  if (!killed) return log(`no ${fault.role} running to kill`);
  log(`SIGKILL ${fault.role} (pid ${killed.pid})`);
  fault.backMs = await killed.back;
  log(`${fault.role} serves again ${fault.backMs} ms after the kill`);
}

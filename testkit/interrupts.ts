/**
 * What a benchmark run must stop if it is interrupted (Ctrl-C, SIGTERM) or fails: bench/run.ts runs
 * these handlers; stacks and scenarios register theirs for as long as they run.
 */
const interruptHandlers = new Set<() => Promise<void>>();

/** Runs `stop` if the run is interrupted; returns the function that unregisters it. */
export function onInterrupt(stop: () => Promise<void>): () => void {
  interruptHandlers.add(stop);
  return () => interruptHandlers.delete(stop);
}

export async function runInterruptHandlers(): Promise<void> {
  await Promise.allSettled([...interruptHandlers].map((stop) => stop()));
}

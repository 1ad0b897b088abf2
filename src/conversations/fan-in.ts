/**
 * How a stage's handlers decide the stage: given what each handler has done so far, is the stage still
 * undecided, succeeded or failed, and which handlers still running are no longer needed. Pure: the
 * conversation workflow asks it after every handler outcome.
 */
import type { HandlerStatus } from './contract';
import type { FanIn } from './pipeline';

export interface FanInDecision {
  result: 'pending' | 'succeeded' | 'failed';
  /** Indexes of handlers still pending or running whose outcome can no longer change the result. */
  cancel: number[];
}

/** Successes a stage needs: all its handlers, one, or the quorum. */
function successesNeeded(fanIn: FanIn, handlers: number): number {
  if (fanIn === 'all') return handlers;
  if (fanIn === 'first-success') return 1;
  return fanIn.quorum;
}

/**
 * `all` waits for every handler even after a failure (each outcome is recorded), so it never cancels;
 * the others stop as soon as the result is known: enough successes, or too few handlers left to reach them.
 */
export function decideFanIn(fanIn: FanIn, handlers: readonly HandlerStatus[]): FanInDecision {
  const unsettled = handlers.flatMap((h, i) => (h === 'pending' || h === 'running' ? [i] : []));
  const succeeded = handlers.filter((h) => h === 'succeeded').length;
  const needed = successesNeeded(fanIn, handlers.length);
  if (fanIn === 'all') {
    if (unsettled.length) return { result: 'pending', cancel: [] };
    return { result: succeeded === handlers.length ? 'succeeded' : 'failed', cancel: [] };
  }
  if (succeeded >= needed) return { result: 'succeeded', cancel: unsettled };
  if (succeeded + unsettled.length < needed) return { result: 'failed', cancel: unsettled };
  return { result: 'pending', cancel: [] };
}

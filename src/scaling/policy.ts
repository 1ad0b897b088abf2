/**
 * The scaling policy: a pure function from a pool's load signal, its settings, the previous state and
 * the time to the number of worker processes it wants. No I/O; the autoscaler calls it on every tick and
 * keeps the state, the API calls it without history.
 *
 * Rules, in order:
 * 1. Running calls want ceil(busy / slotsPerWorker) workers. Unknown busy slots are estimated: none when
 *    nothing was dispatched for ~30 s and no backlog waits for a worker; otherwise every polling worker's
 *    slots (a backlog behind free slots would have been dispatched), which holds the current count.
 * 2. The backlog — plus what the add and dispatch rates will add within `lookaheadMs` — wants
 *    ceil(backlog / targetBacklogPerWorker) workers. A call older than `maxBacklogAgeMs` wants one more
 *    worker than are polling.
 * 3. Work held back by a limit (pause, open breaker, token window, queue rate limit) asks for nothing: the
 *    backlog does not count and busy slots (calls waiting for tokens hold one) cannot add workers. A
 *    backlog that is not paused keeps one worker, which the limit needs to make progress.
 * 4. The result is bounded by minWorkers and maxWorkers.
 * 5. Scale-up is immediate. Scale-down goes only to the highest recommendation of the last
 *    `scaleDownAfterMs` (as Kubernetes' HPA does), so a noisy signal does not flap, and — by rule 1 — only
 *    to as many workers as the busy slots need.
 */
import type { LoadSignal, ScalingSettings } from './signal';

/** Recommendations within the stabilization window that could still be its highest: newest last, workers decreasing. */
export interface PolicyState {
  recommendations: { at: number; workers: number }[];
}

export interface Decision {
  desiredWorkers: number;
  state: PolicyState;
  reason: string;
}

export const NO_HISTORY: PolicyState = { recommendations: [] };

/** Dispatches per second (30-second average) below which the pool counts as idle: none in the last ~30 s. */
export const IDLE_DISPATCH_RATE = 1 / 60;

export function decide(signal: LoadSignal, settings: ScalingSettings, previous: PolicyState, now: number): Decision {
  const { workers, why } = recommend(signal, settings);
  const bounded = Math.min(settings.maxWorkers, Math.max(settings.minWorkers, workers));
  const bound =
    bounded > workers ? `; minWorkers ${settings.minWorkers}` : bounded < workers ? `; capped at maxWorkers ${settings.maxWorkers}` : '';

  const since = now - settings.scaleDownAfterMs;
  const kept = previous.recommendations.filter((r) => r.at > since && r.workers > bounded);
  const state = { recommendations: [...kept, { at: now, workers: bounded }] };
  // The window may hold more than a lowered maxWorkers allows.
  const desiredWorkers = Math.min(settings.maxWorkers, Math.max(bounded, ...kept.map((r) => r.workers)));
  const held =
    desiredWorkers > bounded
      ? `; holding ${desiredWorkers}, the highest recommendation of the last ${settings.scaleDownAfterMs / 1000} s`
      : '';
  return { desiredWorkers, state, reason: `${why}${bound}${held}` };
}

function recommend(signal: LoadSignal, settings: ScalingSettings): { workers: number; why: string } {
  const { queue, slotsPerWorker, workersPolling, heldBack } = signal;
  if (!queue && signal.busySlots === null) return { workers: workersPolling, why: 'no task-queue statistics: keeping the workers polling' };
  const backlog = queue?.backlog ?? 0;
  const idle = (queue?.dispatchRate ?? 0) < IDLE_DISPATCH_RATE && (backlog === 0 || heldBack !== null);
  const busy = signal.busySlots ?? (idle ? 0 : workersPolling * slotsPerWorker);
  const busyWhy = signal.busySlots === null ? (idle ? 'idle' : `busy slots unknown, assuming all ${busy} busy`) : `${busy} busy slots`;
  const forRunning = Math.ceil(busy / slotsPerWorker);

  if (heldBack) {
    const workers = Math.max(Math.min(forRunning, workersPolling), backlog > 0 && heldBack !== 'paused' ? 1 : 0);
    return { workers, why: `held back by ${heldBack}: backlog ${backlog} does not count; ${busyWhy} want ${workers}` };
  }

  const growth = queue ? Math.max(0, queue.addRate - queue.dispatchRate) * (settings.lookaheadMs / 1000) : 0;
  const expected = backlog + growth;
  const forBacklog = Math.ceil(expected / settings.targetBacklogPerWorker);
  const old = queue !== null && backlog > 0 && queue.backlogAgeMs > settings.maxBacklogAgeMs;
  const forAge = old ? workersPolling + 1 : 0;
  const workers = Math.max(forRunning, forBacklog, forAge);

  const backlogWhy = `backlog ${backlog}${growth > 0 ? ` (+${Math.round(growth)} expected in ${settings.lookaheadMs / 1000} s)` : ''} at ${settings.targetBacklogPerWorker} per worker wants ${forBacklog}`;
  const ageWhy = old ? `; oldest call waited ${Math.round(queue.backlogAgeMs / 1000)} s, wants ${forAge}` : '';
  return { workers, why: `${busyWhy} want ${forRunning}; ${backlogWhy}${ageWhy}` };
}

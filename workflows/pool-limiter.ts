import { allHandlersFinished, condition, continueAsNew, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { advance, describeLimiter, exchange, newLimiter, nextChanges } from '../src/inference/limiter-state';
import {
  limiterExchangeUpdate,
  limiterStateQuery,
  type PoolLimiterInput,
  type PoolLimiterWorkflow,
} from '../src/inference/limiter-contract';

const MAX_UPDATES_PER_RUN = 1000;
const MAX_HISTORY_EVENTS = 10_000;
/** Showing the window's expiry is worth at most one timer this often. */
const WINDOW_REFRESH_MS = 5_000;
/**
 * Limiter runs started before reported Retry-Afters held every call replay their earlier updates without the hold:
 * with it, their grants, probes and so timers would differ from their histories. Updates after the upgrade hold.
 */
const RETRY_AFTER_HOLD = 'retry-after-hold';

/**
 * One limiter (a pool's, or one shared by pools on the same provider account): the token window, the
 * circuit breaker and the provider's latest Retry-After, which every worker of those pools asks before
 * calling the provider. It runs for as long as it is used, continuing as new to keep its history short,
 * and answers from memory: no activities, time is workflow time.
 */
export async function poolLimiter(input: PoolLimiterInput): ReturnType<PoolLimiterWorkflow> {
  const data = input.carried ?? newLimiter(input.limiter);
  let settings = input.settings;
  let updates = 0;
  const maxUpdates = input.maxUpdatesPerRun ?? MAX_UPDATES_PER_RUN;

  setHandler(limiterExchangeUpdate, (batch) => {
    updates++;
    settings = batch.settings;
    return exchange(data, batch, Date.now(), patched(RETRY_AFTER_HOLD));
  });
  setHandler(limiterStateQuery, () => describeLimiter(data, settings, Date.now()));

  const timeToContinue = () =>
    updates >= maxUpdates || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= MAX_HISTORY_EVENTS;

  // No answer needs a timer (each is computed when asked); wake-ups only let a query see the breaker go
  // half-open, a Retry-After's hold end and the window empty without traffic — the first two on time, the
  // window coarsely.
  const wakeAt = (now: number) => {
    const next = nextChanges(data, now);
    const times = [next.breaker, next.retryAfter, next.window === undefined ? undefined : Math.max(next.window, now + WINDOW_REFRESH_MS)];
    const due = times.filter((t): t is number => t !== undefined);
    return due.length ? Math.min(...due) : Infinity;
  };
  while (!timeToContinue()) {
    const planned = wakeAt(Date.now());
    const sooner = () => timeToContinue() || wakeAt(Date.now()) < planned;
    if (planned === Infinity) await condition(sooner);
    else await condition(sooner, Math.max(1, planned - Date.now()));
    advance(data, settings, Date.now());
  }
  await condition(allHandlersFinished);
  return continueAsNew<typeof poolLimiter>({ ...input, settings, carried: data });
}

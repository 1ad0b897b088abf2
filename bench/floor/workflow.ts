/**
 * Temporal's floor: the least a one-call job can be on Temporal — a workflow whose only step is one
 * activity, with no timers, search attributes, memo or summaries. 11 history events.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface FloorActivities {
  /** Waits `ms`, as a synthetic inference call does. */
  work(ms: number): Promise<void>;
}

export async function bareWorkflow(ms: number, eagerActivity: boolean): Promise<void> {
  const { work } = proxyActivities<FloorActivities>({ startToCloseTimeout: '1 minute', allowEagerDispatch: eagerActivity });
  await work(ms);
}

/**
 * The pool limiter workflow as both sides see it: its name, input and the update and query the
 * limiter client and the pools API use. Pure code: the workflow imports it too.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Admission, LimiterBatch, LimiterData, LimiterSettings, LimiterState } from './limiter-state';

/** The workflow type: `workflows/pool-limiter.ts` exports a function of this name and shape. */
export const POOL_LIMITER_WORKFLOW = 'poolLimiter';
export type PoolLimiterWorkflow = (input: PoolLimiterInput) => Promise<never>;

export interface PoolLimiterInput {
  limiter: string;
  settings: LimiterSettings;
  /** The state of the previous run, after continue-as-new. */
  carried?: LimiterData;
  /** Updates per run before it continues as new (Temporal accepts at most 2000 per run). */
  maxUpdatesPerRun?: number;
}

/** Settle outcomes of finished calls and admit new ones, in one round trip. */
export const limiterExchangeUpdate = defineUpdate<Admission[], [LimiterBatch]>('limiterExchange');
export const limiterStateQuery = defineQuery<LimiterState>('limiterState');

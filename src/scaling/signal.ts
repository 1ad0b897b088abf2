/**
 * A pool's load signal: what its scaling policy (./policy.ts) decides from. Built from what
 * GET /v1/pools/:name reads — the activity task queue's stats and pollers (DescribeTaskQueue), the pause,
 * the queue's rate limit, the limiter's token window and breaker — plus the busy slots of the pool's
 * workers, which Temporal's task-queue API does not report: the caller passes them when it has them
 * (one that reads the workers' slot metrics; the process autoscaler does not yet) and null otherwise.
 */
import { z } from 'zod';
import type { PoolConfig } from '../config';

export const heldBackSchema = z
  .enum(['paused', 'breaker', 'token-limit', 'rate-limit'])
  .nullable()
  .describe('The limit holding waiting calls back, so that more workers would not run them sooner; null when none does');

export const loadSignalSchema = z.object({
  workersPolling: z.number().int().describe('Worker processes that polled the pool recently'),
  slotsPerWorker: z.number().int().describe("Concurrent calls per worker process (the pool's concurrency)"),
  queue: z
    .object({ backlog: z.number().int(), backlogAgeMs: z.number(), addRate: z.number(), dispatchRate: z.number() })
    .nullable()
    .describe("The pool's task-queue statistics; null if the server does not report them"),
  busySlots: z.number().int().nullable().describe("Calls running on the pool's workers; null when not known (the API does not know them)"),
  heldBack: heldBackSchema,
});

export type LoadSignal = z.infer<typeof loadSignalSchema>;
export type HeldBack = NonNullable<LoadSignal['heldBack']>;

/** What the signal is built from: the parts of the pool resource it reads, and what only the caller knows. */
export interface SignalSources {
  concurrency: number;
  queue: LoadSignal['queue'];
  workers: { lastAccessAt: string | null }[];
  paused: boolean;
  breakerState: 'closed' | 'open' | 'half-open' | null;
  tokens: { perMinute: number; available: number } | null;
  effectiveRequestsPerSecond: number | null;
  /** The server's own "a rate limit blocked dispatches within ~30 s" (TaskQueueStats.rateLimitingActive). */
  rateLimitingActive: boolean;
  busySlots: number | null;
}

/**
 * An idle worker long-polls about once a minute, and the server lists a poller for minutes after its last
 * poll; one not seen for longer than this has stopped.
 */
export const POLLER_SEEN_WITHIN_MS = 90_000;
/** Below this share of the budget left, calls wait for the token window rather than for a worker. */
const TOKEN_HEADROOM = 0.05;
/** Dispatching at this share of the queue's rate limit means the limit, not the workers, sets the pace. */
const RATE_LIMIT_SATURATION = 0.9;

export function loadSignal(src: SignalSources, now: number): LoadSignal {
  return {
    workersPolling: src.workers.filter((w) => w.lastAccessAt !== null && now - Date.parse(w.lastAccessAt) <= POLLER_SEEN_WITHIN_MS).length,
    slotsPerWorker: src.concurrency,
    queue: src.queue,
    busySlots: src.busySlots,
    heldBack: heldBackBy(src),
  };
}

function heldBackBy(src: SignalSources): HeldBack | null {
  if (src.paused || src.effectiveRequestsPerSecond === 0) return 'paused';
  // Half-open lets only probes through: more workers would not call the provider more.
  if (src.breakerState !== null && src.breakerState !== 'closed') return 'breaker';
  if (src.tokens && src.tokens.available < src.tokens.perMinute * TOKEN_HEADROOM) return 'token-limit';
  const rps = src.effectiveRequestsPerSecond;
  const atRateLimit = rps !== null && src.queue !== null && src.queue.dispatchRate >= rps * RATE_LIMIT_SATURATION;
  if (src.rateLimitingActive || atRateLimit) return 'rate-limit';
  return null;
}

/** A pool's scaling settings with their pool-dependent defaults filled in. */
export type ScalingSettings = Omit<PoolConfig['scaling'], 'targetBacklogPerWorker'> & { targetBacklogPerWorker: number };

export function scalingSettingsOf(pool: PoolConfig): ScalingSettings {
  return { ...pool.scaling, targetBacklogPerWorker: pool.scaling.targetBacklogPerWorker ?? pool.concurrency };
}

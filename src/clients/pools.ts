/**
 * A pool as operators see it, read from Temporal: its activity task queue's backlog, rates, pollers and
 * rate limit (DescribeTaskQueue), its limiter's token window and breaker (the limiter workflow's query),
 * and whether it is paused. Pausing sets the queue's rate limit to 0 (UpdateTaskQueueConfig), which
 * stops all dispatch on it across the fleet; resuming unsets it, and the pool's own requestsPerSecond
 * (a worker option the server applies whenever no API limit is set) holds again.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { limiterOf, type PoolConfig } from '../config';
import { limiterSettingsOf, neverUsedLimiter, type LimiterState } from '../inference/limiter-state';
import { decide, NO_HISTORY } from '../scaling/policy';
import { loadSignal, loadSignalSchema, scalingSettingsOf } from '../scaling/signal';
import { limiterStateQuery } from '../inference/limiter-contract';
import { isoTime } from '../temporal/proto';
import { limiterWorkflowId, poolTaskQueue } from '../temporal/task-queues';

const tokensSchema = z.object({ perMinute: z.number(), reservedInWindow: z.number(), available: z.number() });
const breakerSchema = z.object({
  enabled: z.boolean(),
  state: z.enum(['closed', 'open', 'half-open']),
  openUntil: z.iso.datetime().nullable(),
  recentFailures: z.number().int().describe('Throttled or unavailable answers within the breaker window'),
  opened: z.number().int().describe('Times the breaker opened since the limiter started'),
});

export const poolResourceSchema = z.object({
  name: z.string(),
  taskQueue: z.string().describe("The pool's activity task queue"),
  settings: z.object({
    provider: z.string(),
    model: z.string().nullable(),
    concurrency: z.number().int().describe('Concurrent calls per worker process'),
    rateLimit: z.object({ requestsPerSecond: z.number().nullable(), tokensPerMinute: z.number().nullable() }),
    breaker: z.object({
      enabled: z.boolean(),
      failureThreshold: z.number(),
      windowMs: z.number(),
      minOpenMs: z.number(),
      maxOpenMs: z.number(),
      probes: z.number(),
    }),
    batch: z.object({ maxSize: z.number().int(), maxWaitMs: z.number().int() }),
    limiter: z.string().describe('The limiter holding the token budget and breaker; pools on one provider account may share one'),
    scaling: z.object({
      minWorkers: z.number().int(),
      maxWorkers: z.number().int(),
      targetBacklogPerWorker: z.number().int(),
      scaleDownAfterMs: z.number().int(),
      maxBacklogAgeMs: z.number().int(),
      lookaheadMs: z.number().int(),
    }),
  }),
  queue: z
    .object({
      backlog: z.number().int().describe('Inference calls waiting for a worker (approximate)'),
      backlogAgeMs: z.number().describe('How long the oldest waiting call has waited'),
      addRate: z.number().describe('Calls added per second (30-second average)'),
      dispatchRate: z.number().describe('Calls dispatched to workers per second (30-second average)'),
    })
    .nullable()
    .describe("Temporal's task-queue statistics; null if the server does not report them"),
  workers: z
    .array(z.object({ identity: z.string(), lastAccessAt: z.iso.datetime().nullable() }))
    .describe('Worker processes polling the pool'),
  rateLimit: z.object({
    requestsPerSecond: z.number().nullable().describe('Configured for the pool'),
    effectiveRequestsPerSecond: z.number().nullable().describe('What the server enforces now (0 while paused)'),
    source: z
      .enum(['api', 'worker', 'system'])
      .nullable()
      .describe('api: set through the API (a pause); worker: the pool setting; system: the default'),
    tokens: tokensSchema.nullable().describe('The token window now; null without a token limit or while the limiter cannot be asked'),
  }),
  breaker: breakerSchema.nullable().describe('null while the limiter cannot be asked'),
  limiter: z.object({
    name: z.string(),
    state: z
      .enum(['active', 'never-used', 'not-needed', 'unavailable'])
      .describe(
        'never-used: no call has asked it yet; not-needed: no token limit, no breaker and a local provider; unavailable: it did not answer',
      ),
    retryAfterUntil: z.iso
      .datetime()
      .nullable()
      .describe('Until when every call waits because the provider answered with a Retry-After; null when none holds or it cannot be asked'),
  }),
  paused: z.boolean(),
  pause: z.object({ reason: z.string(), since: z.iso.datetime().nullable() }).nullable(),
  scaling: z
    .object({
      desiredWorkers: z
        .number()
        .int()
        .describe('What the scaling policy recommends now, from this signal alone (the autoscaler adds the stabilization window)'),
      workersPolling: z.number().int(),
      reason: z.string(),
      signal: loadSignalSchema,
    })
    .describe("The pool's load signal and the worker processes it wants (docs/scaling.md: Load signal and scaling policy)"),
  links: z.object({ self: z.string(), pause: z.string(), resume: z.string() }),
});

export type PoolResource = z.infer<typeof poolResourceSchema>;

const ACTIVITY = temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;
const SOURCES: Record<number, PoolResource['rateLimit']['source']> = {
  [temporal.api.enums.v1.RateLimitSource.RATE_LIMIT_SOURCE_API]: 'api',
  [temporal.api.enums.v1.RateLimitSource.RATE_LIMIT_SOURCE_WORKER]: 'worker',
  [temporal.api.enums.v1.RateLimitSource.RATE_LIMIT_SOURCE_SYSTEM]: 'system',
};
export const DEFAULT_PAUSE_REASON = 'paused by operator';
/** A limiter that does not answer within this is shown as unavailable rather than holding up the answer. */
const LIMITER_QUERY_TIMEOUT_MS = 3000;

type TaskQueueDescription = temporal.api.workflowservice.v1.IDescribeTaskQueueResponse;

export class PoolClient {
  constructor(
    private readonly client: Client,
    private readonly opts: { taskQueuePrefix: string; pools: Record<string, PoolConfig> },
  ) {}

  async list(): Promise<PoolResource[]> {
    return Promise.all(Object.keys(this.opts.pools).map((name) => this.describe(name, this.opts.pools[name]!)));
  }

  /** The pool, or null if no pool has that name. */
  async get(name: string): Promise<PoolResource | null> {
    const pool = this.poolNamed(name);
    return pool && this.describe(name, pool);
  }

  /** Stops dispatch on the pool's queue; jobs wait in it. Pausing a paused pool changes nothing. */
  async pause(name: string, reason = DEFAULT_PAUSE_REASON): Promise<PoolResource | null> {
    return this.setPaused(name, { rateLimit: { requestsPerSecond: 0 }, reason });
  }

  /** Lets the pool's queue dispatch again. Resuming a pool that is not paused changes nothing. */
  async resume(name: string): Promise<PoolResource | null> {
    // No rate limit in the update removes the API's limit.
    return this.setPaused(name, { reason: 'resumed by operator' });
  }

  private async setPaused(
    name: string,
    update: temporal.api.workflowservice.v1.UpdateTaskQueueConfigRequest.IRateLimitUpdate,
  ): Promise<PoolResource | null> {
    const pool = this.poolNamed(name);
    if (!pool) return null;
    const paused = pauseOf(await this.describeQueue(name)) !== null;
    if (paused !== (update.rateLimit !== undefined)) {
      await this.client.workflowService.updateTaskQueueConfig({
        namespace: this.client.options.namespace,
        identity: this.client.options.identity,
        taskQueue: poolTaskQueue(this.opts.taskQueuePrefix, name),
        taskQueueType: ACTIVITY,
        updateQueueRateLimit: update,
      });
    }
    return this.describe(name, pool);
  }

  private poolNamed(name: string): PoolConfig | null {
    return Object.hasOwn(this.opts.pools, name) ? this.opts.pools[name]! : null;
  }

  private describeQueue(name: string): Promise<TaskQueueDescription> {
    return this.client.workflowService.describeTaskQueue({
      namespace: this.client.options.namespace,
      taskQueue: { name: poolTaskQueue(this.opts.taskQueuePrefix, name) },
      taskQueueType: ACTIVITY,
      reportStats: true,
      reportConfig: true,
    });
  }

  private async describe(name: string, pool: PoolConfig): Promise<PoolResource> {
    const limiter = limiterOf(name, pool);
    const [queue, limiterView] = await Promise.all([this.describeQueue(name), this.limiterView(limiter, pool)]);
    const stats = queue.stats;
    const pause = pauseOf(queue);
    const effective = queue.effectiveRateLimit;
    const self = `/v1/pools/${name}`;
    const queueStats = stats
      ? {
          backlog: Number(stats.approximateBacklogCount ?? 0),
          backlogAgeMs: optionalTsToMs(stats.approximateBacklogAge) ?? 0,
          addRate: stats.tasksAddRate ?? 0,
          dispatchRate: stats.tasksDispatchRate ?? 0,
        }
      : null;
    const workers = (queue.pollers ?? []).map((p) => ({ identity: p.identity ?? '', lastAccessAt: isoTime(p.lastAccessTime) }));
    const effectiveRequestsPerSecond = effective ? (effective.requestsPerSecond ?? 0) : null;
    const now = Date.now();
    const signal = loadSignal(
      {
        concurrency: pool.concurrency,
        queue: queueStats,
        workers,
        paused: pause !== null,
        breakerState: limiterView.state?.breaker.state ?? null,
        tokens: limiterView.state?.tokens ?? null,
        effectiveRequestsPerSecond,
        rateLimitingActive: stats?.rateLimitingActive ?? false,
        // Slot usage is not in Temporal's task-queue stats; the policy estimates it.
        busySlots: null,
      },
      now,
    );
    const scaling = scalingSettingsOf(pool);
    const decision = decide(signal, scaling, NO_HISTORY, now);
    return {
      name,
      taskQueue: poolTaskQueue(this.opts.taskQueuePrefix, name),
      settings: {
        provider: pool.provider,
        model: 'model' in pool ? pool.model : null,
        concurrency: pool.concurrency,
        rateLimit: { requestsPerSecond: pool.rateLimit.requestsPerSecond ?? null, tokensPerMinute: pool.rateLimit.tokensPerMinute ?? null },
        breaker: pool.breaker,
        batch: pool.batch,
        limiter,
        scaling,
      },
      queue: queueStats,
      workers,
      rateLimit: {
        requestsPerSecond: pool.rateLimit.requestsPerSecond ?? null,
        effectiveRequestsPerSecond,
        source: SOURCES[effective?.rateLimitSource ?? 0] ?? null,
        tokens: limiterView.state?.tokens ?? null,
      },
      breaker: limiterView.state?.breaker ?? null,
      limiter: { name: limiter, state: limiterView.status, retryAfterUntil: limiterView.state?.retryAfterUntil ?? null },
      paused: pause !== null,
      pause,
      scaling: { desiredWorkers: decision.desiredWorkers, workersPolling: signal.workersPolling, reason: decision.reason, signal },
      links: { self, pause: `${self}/pause`, resume: `${self}/resume` },
    };
  }

  /** The limiter's state from its workflow; a limiter no call has asked yet has none and shows its configured limits. */
  private async limiterView(
    limiter: string,
    pool: PoolConfig,
  ): Promise<{ status: PoolResource['limiter']['state']; state: LimiterState | null }> {
    const settings = limiterSettingsOf(pool);
    const unused = neverUsedLimiter(limiter, settings ?? { tokensPerMinute: null, breaker: pool.breaker });
    if (!settings) return { status: 'not-needed', state: unused };
    const handle = this.client.workflow.getHandle(limiterWorkflowId(this.opts.taskQueuePrefix, limiter));
    try {
      const state = await this.client.withDeadline(Date.now() + LIMITER_QUERY_TIMEOUT_MS, () => handle.query(limiterStateQuery));
      return { status: 'active', state };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { status: 'never-used', state: unused };
      return { status: 'unavailable', state: null };
    }
  }
}

/** The pause on a queue: an API rate limit of 0. */
function pauseOf(queue: TaskQueueDescription): PoolResource['pause'] {
  const limit = queue.config?.queueRateLimit;
  if (!limit?.rateLimit || (limit.rateLimit.requestsPerSecond ?? 0) !== 0) return null;
  return { reason: limit.metadata?.reason || DEFAULT_PAUSE_REASON, since: isoTime(limit.metadata?.updateTime) };
}

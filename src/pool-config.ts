/**
 * What a pool is, as zod schemas: its provider and the settings of its flow control (rate and token
 * limits, breaker, batching) and scaling. Pure; `src/config.ts` reads SWITCHYARD_POOLS through it.
 */
import { z } from 'zod';

/** Pool and limiter names: they become parts of task-queue and workflow ids. */
export const POOL_NAME = /^[a-z][a-z0-9-]{0,39}$/;

const ms = z.number().int().min(0).max(600_000);

/** Fleet-wide limits of a pool, enforced across all its workers (docs/flow-control.md). */
const rateLimit = z.strictObject({
  /** Activity dispatches per second for the whole pool: Temporal's task-queue rate limit. */
  requestsPerSecond: z.number().positive().max(100_000).optional(),
  /** LLM tokens per rolling minute for the whole pool (or its shared limiter): reserved before a call, reconciled after. */
  tokensPerMinute: z.number().int().min(1).max(1_000_000_000).optional(),
});

/** The pool-wide circuit breaker: a burst of throttling or unavailability pauses calls to the provider. */
const breakerFor = (enabledByDefault: boolean) => {
  const schema = z.strictObject({
    enabled: z.boolean().default(enabledByDefault),
    /** Throttled/unavailable answers within `windowMs` that open the breaker. */
    failureThreshold: z.number().int().min(1).max(1000).default(3),
    windowMs: ms.min(100).default(10_000),
    /** Shortest and longest open period; a provider's Retry-After is honoured within these bounds. */
    minOpenMs: ms.min(100).default(1000),
    maxOpenMs: ms.min(100).default(60_000),
    /** Calls let through to test the provider once the open period ends. */
    probes: z.number().int().min(1).max(100).default(1),
  });
  return schema.default(schema.parse({}));
};

/** Dynamic batching: concurrent calls for the same task and model become one provider call. */
const batching = z.strictObject({
  /** 1 turns batching off. */
  maxSize: z.number().int().min(1).max(2048).default(1),
  /** How long the first call of a batch waits for company. */
  maxWaitMs: ms.max(10_000).default(10),
});

/**
 * How many worker processes a pool wants, from its load signal (docs/scaling.md, "Load signal and scaling
 * policy"; src/scaling/policy.ts). Read by the autoscaler and shown at GET /v1/pools/:name.
 */
const scaling = z
  .strictObject({
    minWorkers: z.number().int().min(0).max(1000).default(1),
    maxWorkers: z.number().int().min(1).max(1000).default(4),
    /** Calls allowed to wait per worker before another is wanted; unset, the pool's concurrency. */
    targetBacklogPerWorker: z.number().int().min(1).max(100_000).optional(),
    /** Stabilization window: a scale-down happens only once every recommendation within it was as low. */
    scaleDownAfterMs: ms.default(60_000),
    /** A call waiting longer than this asks for one more worker than are polling. */
    maxBacklogAgeMs: ms.min(1000).default(30_000),
    /** The backlog expected this far ahead at the current add and dispatch rates counts too (about a worker's start-up). */
    lookaheadMs: ms.max(60_000).default(5000),
  })
  .refine((s) => s.minWorkers <= s.maxWorkers, 'scaling.minWorkers is above scaling.maxWorkers');

/**
 * How a worker process of the pool decides how many calls to run at once: `fixed` runs `concurrency`
 * (right for GPUs and rate-limited APIs, which CPU and memory say nothing about); `resource-based` lets
 * Temporal's tuner add slots while the process's CPU and memory stay under their targets, from
 * `minimumSlots` up to `concurrency` (right for CPU-bound local models).
 */
const slots = z.discriminatedUnion('tuner', [
  z.strictObject({ tuner: z.literal('fixed') }),
  z.strictObject({
    tuner: z.literal('resource-based'),
    targetCpuUsage: z.number().gt(0).max(1).default(0.8),
    targetMemoryUsage: z.number().gt(0).max(1).default(0.8),
    minimumSlots: z.number().int().min(1).max(1000).default(1),
    /** Least time between two slots handed out while the tuner watches what the last one costs. */
    rampThrottleMs: ms.max(10_000).default(50),
  }),
]);

const poolBase = {
  /** Concurrent activities per worker process of this pool (the most, with a resource-based tuner). */
  concurrency: z.number().int().min(1).max(1000).default(8),
  slots: slots.default({ tuner: 'fixed' }),
  rateLimit: rateLimit.default({}),
  /** On by default for remote providers, whose throttling it exists for. */
  breaker: breakerFor(false),
  batch: batching.default(batching.parse({})),
  /**
   * Name of the limiter this pool's token budget and breaker live in. Pools that share a provider
   * account (one API key) name the same limiter; by default each pool has its own.
   */
  limiter: z.string().regex(POOL_NAME).optional(),
  scaling: scaling.default(scaling.parse({})),
};
const localPool = z.strictObject({ provider: z.literal('local'), ...poolBase });
const openaiPool = z.strictObject({
  provider: z.literal('openai'),
  ...poolBase,
  breaker: breakerFor(true),
  baseUrl: z.url({ protocol: /^https?$/ }),
  model: z.string().min(1),
  embeddingModel: z.string().min(1).optional(),
  apiKey: z.string().min(1).optional(),
  requestTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
});
/** Benchmarks and tests only: a pool whose "inference" is a timed wait (see src/inference/synthetic.ts). */
const syntheticPool = z.strictObject({
  provider: z.literal('synthetic'),
  ...poolBase,
  latencyMs: ms.default(100),
  /** Each call adds a uniform random extra wait in [0, jitterMs]. */
  jitterMs: ms.default(0),
  /**
   * A call with n items costs fixedMs + perItemMs × n on top of latencyMs. `concurrency` models a device
   * (a GPU server) that serves that many calls at once per worker process, queueing the rest; unset, calls never wait for each other.
   */
  callCost: z
    .strictObject({ fixedMs: ms.default(0), perItemMs: ms.default(0), concurrency: z.number().int().min(1).max(1000).optional() })
    .default({ fixedMs: 0, perItemMs: 0 }),
});
export const poolSchema = z.discriminatedUnion('provider', [localPool, openaiPool, syntheticPool]);
export type PoolConfig = z.infer<typeof poolSchema>;
/** Pool settings as written in SWITCHYARD_POOLS, defaults not yet applied. */
export type PoolSettings = z.input<typeof poolSchema>;

/** The limiter (token budget and breaker) a pool's calls go through: its own unless it names a shared one. */
export function limiterOf(poolName: string, pool: PoolConfig): string {
  return pool.limiter ?? poolName;
}

/** Pools that share a limiter must agree on what it enforces. */
export function sharedLimiterConflicts(pools: Record<string, PoolConfig>): string[] {
  const seen = new Map<string, { pool: string; rules: string }>();
  const problems: string[] = [];
  for (const [name, pool] of Object.entries(pools)) {
    const limiter = limiterOf(name, pool);
    const rules = JSON.stringify({ tokensPerMinute: pool.rateLimit.tokensPerMinute, breaker: pool.breaker });
    const first = seen.get(limiter);
    if (!first) seen.set(limiter, { pool: name, rules });
    else if (first.rules !== rules) {
      problems.push(
        `SWITCHYARD_POOLS: pools "${first.pool}" and "${name}" share limiter "${limiter}" but set different rateLimit.tokensPerMinute or breaker`,
      );
    }
  }
  return problems;
}

/** A worker runs at most `concurrency` calls of a pool at once, so a larger batch could never fill and every batch would wait out maxWaitMs. */
export function unfillableBatches(pools: Record<string, PoolConfig>): string[] {
  return Object.entries(pools)
    .filter(([, pool]) => pool.batch.maxSize > pool.concurrency)
    .map(
      ([name, pool]) =>
        `SWITCHYARD_POOLS: pool "${name}" has batch.maxSize ${pool.batch.maxSize} above its concurrency ${pool.concurrency}; a batch can never hold more calls than a worker runs at once`,
    );
}

/** A resource-based tuner starts at `minimumSlots` and grows to `concurrency`, so the one cannot exceed the other. */
export function invertedSlotBounds(pools: Record<string, PoolConfig>): string[] {
  return Object.entries(pools)
    .filter(([, pool]) => pool.slots.tuner === 'resource-based' && pool.slots.minimumSlots > pool.concurrency)
    .map(([name, pool]) => `SWITCHYARD_POOLS: pool "${name}" has slots.minimumSlots above its concurrency ${pool.concurrency}`);
}

/**
 * The one place the environment is read. Every variable is parsed by zod into a typed Config; a bad
 * value stops start-up with a message that names the variable. The README's config table lists them.
 */
import path from 'node:path';
import { z } from 'zod';

const POOL_NAME = /^[a-z][a-z0-9-]{0,39}$/;
const TENANT = /^[a-z0-9][a-z0-9-]{0,39}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,4})$/;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const ms = z.number().int().min(0).max(600_000);

/** Fleet-wide limits of a pool, enforced across all its workers (see README, "Flow control"). */
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
 * How many worker processes a pool wants, from its load signal (see README, "Load signal and scaling
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

const poolBase = {
  /** Concurrent activities per worker process of this pool. */
  concurrency: z.number().int().min(1).max(1000).default(8),
  rateLimit: rateLimit.default({}),
  /** On by default for remote providers, whose throttling it exists for. */
  breaker: breakerFor(false),
  batch: batching.default(batching.parse({})),
  /**
   * Name of the limiter this pool's token budget and breaker live in. Pools that share a provider
   * account (one API key) name the same limiter; by default each pool has its own.
   */
  limiter: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/).optional(),
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

/** A variable holding JSON; `shape` says what it should hold when it is not JSON at all. */
const json = (shape: string) =>
  z.string().transform((raw, ctx) => {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a JSON object of ${shape}` });
      return z.NEVER;
    }
  });

const pools = json('pool name → pool settings').pipe(
  z
    .record(z.string().regex(POOL_NAME, 'pool names are lowercase letters, digits and dashes'), poolSchema)
    .refine((p) => Object.keys(p).length > 0, 'at least one pool is needed'),
);

/** `tenant:key,tenant:key` — API keys and the tenant each one acts as. */
const apiKeys = z.string().transform((raw, ctx) => {
  const keys: { tenant: string; key: string }[] = [];
  for (const entry of raw.split(',').map((e) => e.trim()).filter(Boolean)) {
    const at = entry.indexOf(':');
    const tenant = entry.slice(0, at);
    const key = entry.slice(at + 1);
    if (at < 1 || !TENANT.test(tenant) || key.length < 16) {
      ctx.addIssue({ code: 'custom', message: 'entries are tenant:key, tenant [a-z0-9-], key ≥ 16 characters' });
      return z.NEVER;
    }
    keys.push({ tenant, key });
  }
  return keys;
});

/** `{"acme": {"weight": 5, "maxOpenJobs": 100}}` — per-tenant fairness weight and quota overrides. */
const tenantSettings = z.strictObject({
  /** Share of a pool's capacity relative to other tenants with work waiting (Temporal fairness weight). */
  weight: z.number().min(0.001).max(1000).optional(),
  /** Queued + running jobs allowed at once; 0 means no limit. */
  maxOpenJobs: z.number().int().min(0).max(10_000_000).optional(),
});
const tenants = json('tenant → { weight, maxOpenJobs }').pipe(
  z.record(z.string().regex(TENANT, 'tenants are lowercase letters, digits and dashes'), tenantSettings),
);

const list = z.string().transform((s) => s.split(',').map((p) => p.trim()).filter(Boolean));

const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_UI_URL: z.url().optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  TEMPORAL_TEST_SERVER_PATH: z.string().min(1).optional(),

  SWITCHYARD_DATA_DIR: z.string().min(1).default('.data'),
  SWITCHYARD_TOOLS_DIR: z.string().min(1).default('.tools'),
  SWITCHYARD_DEV_SERVER_PORT: int(1, 65535).default(7233),
  SWITCHYARD_DEV_UI_PORT: int(1, 65535).default(8233),
  SWITCHYARD_TASK_QUEUE_PREFIX: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/).default('switchyard'),

  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_PORT: int(0, 65535).default(3000),
  SWITCHYARD_API_KEYS: apiKeys.default([]),
  /** Keys that may manage pools (pause, resume) — operators, not tenants. */
  SWITCHYARD_OPERATOR_KEYS: list.pipe(z.array(z.string().min(16, 'operator keys are ≥ 16 characters'))).default([]),
  SWITCHYARD_TENANTS: tenants.default({}),
  SWITCHYARD_DEFAULT_TENANT_WEIGHT: z.coerce.number().min(0.001).max(1000).default(1),
  SWITCHYARD_DEFAULT_MAX_OPEN_JOBS: int(0, 10_000_000).default(0),
  SWITCHYARD_BODY_LIMIT_BYTES: int(1024, 50 * 1024 * 1024).default(1024 * 1024),

  SWITCHYARD_POOLS: pools.default({ local: poolSchema.parse({ provider: 'local', concurrency: 8 }) }),
  SWITCHYARD_WORKER_WORKFLOWS: bool.default(true),
  SWITCHYARD_WORKER_POOLS: list.default([]),
  SWITCHYARD_SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(30_000),
  /** host:port where a worker serves Prometheus metrics; unset, it serves none. */
  SWITCHYARD_WORKER_METRICS_ADDRESS: z.string().regex(HOST_PORT, 'host:port, e.g. 0.0.0.0:9464 ([::]:9464 for IPv6)').optional(),
  SWITCHYARD_HEARTBEAT_TIMEOUT_MS: int(1000, 600_000).default(10_000),

  SWITCHYARD_DEFAULT_MAX_ATTEMPTS: int(1, 100).default(5),
  SWITCHYARD_MAX_ATTEMPTS: int(1, 100).default(20),
  SWITCHYARD_DEFAULT_ATTEMPT_TIMEOUT_MS: int(100, 86_400_000).default(60_000),
  SWITCHYARD_MAX_ATTEMPT_TIMEOUT_MS: int(100, 86_400_000).default(15 * 60_000),
  SWITCHYARD_DEFAULT_DEADLINE_MS: int(1000, 30 * 86_400_000).default(60 * 60_000),
  SWITCHYARD_MAX_DEADLINE_MS: int(1000, 30 * 86_400_000).default(7 * 86_400_000),

  SWITCHYARD_API_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  SWITCHYARD_API_KEY: z.string().min(1).optional(),

  PATH: z.string().default(''),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type Config = ReturnType<typeof toConfig>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: Record<string, string | undefined> = process.env) {
  // An empty variable means "not set", as a shell user expects from `FOO= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`));
  }
  return toConfig(parsed.data);
}

/** The environment for a child process: this one's, with `overrides` on top (e.g. the dev server's address). */
export function childEnvironment(overrides: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}

function toConfig(e: z.infer<typeof envSchema>) {
  const dataDir = path.resolve(e.SWITCHYARD_DATA_DIR);
  const limits = {
    defaultMaxAttempts: e.SWITCHYARD_DEFAULT_MAX_ATTEMPTS,
    maxAttempts: e.SWITCHYARD_MAX_ATTEMPTS,
    defaultAttemptTimeoutMs: e.SWITCHYARD_DEFAULT_ATTEMPT_TIMEOUT_MS,
    maxAttemptTimeoutMs: e.SWITCHYARD_MAX_ATTEMPT_TIMEOUT_MS,
    defaultDeadlineMs: e.SWITCHYARD_DEFAULT_DEADLINE_MS,
    maxDeadlineMs: e.SWITCHYARD_MAX_DEADLINE_MS,
    heartbeatTimeoutMs: e.SWITCHYARD_HEARTBEAT_TIMEOUT_MS,
  };
  const problems: string[] = [];
  if (limits.defaultMaxAttempts > limits.maxAttempts) problems.push('SWITCHYARD_DEFAULT_MAX_ATTEMPTS: above SWITCHYARD_MAX_ATTEMPTS');
  if (limits.defaultAttemptTimeoutMs > limits.maxAttemptTimeoutMs)
    problems.push('SWITCHYARD_DEFAULT_ATTEMPT_TIMEOUT_MS: above SWITCHYARD_MAX_ATTEMPT_TIMEOUT_MS');
  if (limits.defaultDeadlineMs > limits.maxDeadlineMs) problems.push('SWITCHYARD_DEFAULT_DEADLINE_MS: above SWITCHYARD_MAX_DEADLINE_MS');
  for (const pool of e.SWITCHYARD_WORKER_POOLS) {
    if (!(pool in e.SWITCHYARD_POOLS)) problems.push(`SWITCHYARD_WORKER_POOLS: pool "${pool}" is not in SWITCHYARD_POOLS`);
  }
  problems.push(...sharedLimiterConflicts(e.SWITCHYARD_POOLS), ...unfillableBatches(e.SWITCHYARD_POOLS));
  if (Boolean(e.TEMPORAL_TLS_CERT_PATH) !== Boolean(e.TEMPORAL_TLS_KEY_PATH))
    problems.push('TEMPORAL_TLS_CERT_PATH / TEMPORAL_TLS_KEY_PATH: set both for mTLS, or neither');
  if (problems.length) throw new ConfigError(problems);

  const devAddress = `127.0.0.1:${e.SWITCHYARD_DEV_SERVER_PORT}`;
  return {
    temporal: {
      /** Set when an external server is configured; otherwise `up` starts the embedded dev server. */
      external: e.TEMPORAL_ADDRESS !== undefined,
      address: e.TEMPORAL_ADDRESS ?? devAddress,
      namespace: e.TEMPORAL_NAMESPACE,
      apiKey: e.TEMPORAL_API_KEY,
      tls: e.TEMPORAL_TLS || Boolean(e.TEMPORAL_API_KEY) || Boolean(e.TEMPORAL_TLS_CA_PATH) || Boolean(e.TEMPORAL_TLS_CERT_PATH),
      tlsCaPath: e.TEMPORAL_TLS_CA_PATH,
      tlsCertPath: e.TEMPORAL_TLS_CERT_PATH,
      tlsKeyPath: e.TEMPORAL_TLS_KEY_PATH,
      tlsServerName: e.TEMPORAL_TLS_SERVER_NAME,
      uiUrl: (e.TEMPORAL_UI_URL ?? `http://localhost:${e.SWITCHYARD_DEV_UI_PORT}`).replace(/\/+$/, ''),
      /** False when an external server is used without TEMPORAL_UI_URL: the UI links then point nowhere useful. */
      uiUrlKnown: e.TEMPORAL_UI_URL !== undefined || e.TEMPORAL_ADDRESS === undefined,
      cliPath: e.TEMPORAL_CLI_PATH,
      testServerPath: e.TEMPORAL_TEST_SERVER_PATH,
      taskQueuePrefix: e.SWITCHYARD_TASK_QUEUE_PREFIX,
    },
    devServer: {
      port: e.SWITCHYARD_DEV_SERVER_PORT,
      uiPort: e.SWITCHYARD_DEV_UI_PORT,
      dbFile: path.join(dataDir, 'temporal.sqlite'),
    },
    dataDir,
    toolsDir: path.resolve(e.SWITCHYARD_TOOLS_DIR),
    /** Where to look for the `temporal` binaries and python3. */
    searchPath: e.PATH,
    api: {
      host: e.API_HOST,
      port: e.API_PORT,
      keys: e.SWITCHYARD_API_KEYS,
      operatorKeys: e.SWITCHYARD_OPERATOR_KEYS,
      bodyLimitBytes: e.SWITCHYARD_BODY_LIMIT_BYTES,
    },
    pools: e.SWITCHYARD_POOLS,
    tenants: {
      overrides: e.SWITCHYARD_TENANTS,
      defaultWeight: e.SWITCHYARD_DEFAULT_TENANT_WEIGHT,
      defaultMaxOpenJobs: e.SWITCHYARD_DEFAULT_MAX_OPEN_JOBS,
    },
    worker: {
      workflows: e.SWITCHYARD_WORKER_WORKFLOWS,
      pools: e.SWITCHYARD_WORKER_POOLS,
      shutdownGraceMs: e.SWITCHYARD_SHUTDOWN_GRACE_MS,
      metricsAddress: e.SWITCHYARD_WORKER_METRICS_ADDRESS,
    },
    limits,
    /** Where the `switchyard submit | status | watch | cancel` commands send their requests. */
    cli: { apiUrl: e.SWITCHYARD_API_URL.replace(/\/+$/, ''), apiKey: e.SWITCHYARD_API_KEY },
    logLevel: e.LOG_LEVEL,
  };
}

/** The limiter (token budget and breaker) a pool's calls go through: its own unless it names a shared one. */
export function limiterOf(poolName: string, pool: PoolConfig): string {
  return pool.limiter ?? poolName;
}

/** Pools that share a limiter must agree on what it enforces. */
function sharedLimiterConflicts(pools: Record<string, PoolConfig>): string[] {
  const seen = new Map<string, { pool: string; rules: string }>();
  const problems: string[] = [];
  for (const [name, pool] of Object.entries(pools)) {
    const limiter = limiterOf(name, pool);
    const rules = JSON.stringify({ tokensPerMinute: pool.rateLimit.tokensPerMinute, breaker: pool.breaker });
    const first = seen.get(limiter);
    if (!first) seen.set(limiter, { pool: name, rules });
    else if (first.rules !== rules) {
      problems.push(`SWITCHYARD_POOLS: pools "${first.pool}" and "${name}" share limiter "${limiter}" but set different rateLimit.tokensPerMinute or breaker`);
    }
  }
  return problems;
}

/** A worker runs at most `concurrency` calls of a pool at once, so a larger batch could never fill and every batch would wait out maxWaitMs. */
function unfillableBatches(pools: Record<string, PoolConfig>): string[] {
  return Object.entries(pools)
    .filter(([, pool]) => pool.batch.maxSize > pool.concurrency)
    .map(([name, pool]) => `SWITCHYARD_POOLS: pool "${name}" has batch.maxSize ${pool.batch.maxSize} above its concurrency ${pool.concurrency}; a batch can never hold more calls than a worker runs at once`);
}

export interface TenantPolicy {
  weight: number;
  /** 0 means no limit. */
  maxOpenJobs: number;
}

export function tenantPolicy(tenants: Config['tenants'], tenant: string): TenantPolicy {
  const own = tenants.overrides[tenant];
  return { weight: own?.weight ?? tenants.defaultWeight, maxOpenJobs: own?.maxOpenJobs ?? tenants.defaultMaxOpenJobs };
}

/**
 * The one place the environment is read. Every variable is parsed by zod into a typed Config; a bad
 * value stops start-up with a message that names the variable. docs/configuration.md lists them.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_CHAT_PIPELINE, pipelineSchema, unknownPools } from './conversations/pipeline';
import { parseEncryptionKeys } from './crypto/key-ring';
import { SwitchyardError } from './errors';
import { isLoopbackAddress, parseCidr } from './net/addresses';
import { POOL_NAME, poolSchema, invertedSlotBounds, sharedLimiterConflicts, unfillableBatches } from './pool-config';

export { limiterOf, poolSchema, type PoolConfig, type PoolSettings } from './pool-config';

const TENANT = /^[a-z0-9][a-z0-9-]{0,39}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,4})$/;
/** As HOST_PORT, or port 0: any free port, which the process logs. */
const HOST_ANY_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(0|[1-9][0-9]{0,4})$/;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

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
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
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
  /** Signs this tenant's webhooks instead of SWITCHYARD_WEBHOOK_SECRET. */
  webhookSecret: z.string().min(16).optional(),
  /** API requests per second across the API's replicas; 0 means no limit. */
  requestsPerSecond: z.number().int().min(0).max(1_000_000).optional(),
});
const tenants = json('tenant → { weight, maxOpenJobs, webhookSecret, requestsPerSecond }').pipe(
  z.record(z.string().regex(TENANT, 'tenants are lowercase letters, digits and dashes'), tenantSettings),
);

/** `id:base64,id:base64` — payload and blob encryption keys; the first encrypts, all decrypt. */
const encryptionKeys = z.string().transform((raw, ctx) => {
  const { keys, problems } = parseEncryptionKeys(raw);
  for (const message of problems) ctx.addIssue({ code: 'custom', message });
  return problems.length ? z.NEVER : keys;
});

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);

const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_GRPC_COMPRESSION: z.enum(['gzip', 'none']).optional(),
  TEMPORAL_UI_URL: z.url().optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  TEMPORAL_TEST_SERVER_PATH: z.string().min(1).optional(),

  SWITCHYARD_DATA_DIR: z.string().min(1).default('.data'),
  SWITCHYARD_TOOLS_DIR: z.string().min(1).default('.tools'),
  /** Programs built from source (the local cluster's Temporal server and UI), by version, outside any clone. */
  SWITCHYARD_TOOLS_CACHE_DIR: z.string().min(1).optional(),
  SWITCHYARD_DEV_SERVER_PORT: int(1, 65535).default(7233),
  SWITCHYARD_DEV_UI_PORT: int(1, 65535).default(8233),
  /** The local cluster's frontend (gRPC) and PostgreSQL ports; unset, free ports picked on the first `cluster up` and kept. */
  SWITCHYARD_CLUSTER_PORT: int(1, 65535).optional(),
  SWITCHYARD_CLUSTER_POSTGRES_PORT: int(1, 65535).optional(),
  SWITCHYARD_TASK_QUEUE_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,39}$/)
    .default('switchyard'),

  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_PORT: int(0, 65535).default(3000),
  SWITCHYARD_API_KEYS: apiKeys.default([]),
  /** Keys that may manage pools (pause, resume) — operators, not tenants. */
  SWITCHYARD_OPERATOR_KEYS: list.pipe(z.array(z.string().min(16, 'operator keys are ≥ 16 characters'))).default([]),
  SWITCHYARD_TENANTS: tenants.default({}),
  SWITCHYARD_DEFAULT_TENANT_WEIGHT: z.coerce.number().min(0.001).max(1000).default(1),
  SWITCHYARD_DEFAULT_MAX_OPEN_JOBS: int(0, 10_000_000).default(0),
  SWITCHYARD_DEFAULT_REQUESTS_PER_SECOND: int(0, 1_000_000).default(100),
  /** How many API processes share the tenants' request rates: each enforces its share. */
  SWITCHYARD_API_REPLICAS: int(1, 1000).default(1),
  SWITCHYARD_BODY_LIMIT_BYTES: int(1024, 50 * 1024 * 1024).default(1024 * 1024),
  /** How long a client may take to send a whole request, headers and body. */
  SWITCHYARD_REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(60_000),
  /** host:port where the API serves Prometheus metrics, apart from its API port. */
  SWITCHYARD_API_METRICS_ADDRESS: z
    .string()
    .regex(HOST_ANY_PORT, 'host:port, e.g. 0.0.0.0:9464 ([::]:9464 for IPv6); port 0 for any free one')
    .default('127.0.0.1:9463'),

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
  /** Under Temporal's 2 MiB payload limit, with room for the codec's envelope and the rest of the start. */
  SWITCHYARD_MAX_JOB_INPUT_BYTES: int(1024, 4 * 1024 * 1024).default(1536 * 1024),

  /** Where documents, chunks and results are kept: a directory (`file`, the default) or an S3-compatible bucket. */
  SWITCHYARD_BLOB_STORE: z.enum(['file', 's3']).default('file'),
  SWITCHYARD_BLOB_DIR: z.string().min(1).optional(),
  SWITCHYARD_S3_BUCKET: z.string().min(3).optional(),
  SWITCHYARD_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  SWITCHYARD_S3_REGION: z.string().min(1).default('us-east-1'),
  SWITCHYARD_S3_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9._-]+\/)*$/, 'empty, or path segments each ending in /')
    .default(''),
  SWITCHYARD_S3_FORCE_PATH_STYLE: bool.default(false),
  /** Server-side encryption the S3 store asks for on every write: SSE-S3, SSE-KMS, or none (a server without it). */
  SWITCHYARD_S3_SSE: z.enum(['AES256', 'aws:kms', 'none']).default('AES256'),
  SWITCHYARD_S3_KMS_KEY_ID: z.string().min(1).optional(),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  SWITCHYARD_MAX_DOCUMENT_BYTES: int(1024, 1024 * 1024 * 1024).default(20 * 1024 * 1024),

  SWITCHYARD_BATCH_MAX_LINES: int(1, 100_000).default(50_000),
  SWITCHYARD_BATCH_MAX_BYTES: int(1024, 1024 * 1024 * 1024).default(200 * 1024 * 1024),
  /** Items per group: one activity runs a group and heartbeats its progress, so a retry repeats at most part of one. */
  SWITCHYARD_BATCH_GROUP_SIZE: int(1, 5000).default(500),
  /** Groups of one batch running at once: how much of its pool one batch may hold. */
  SWITCHYARD_BATCH_MAX_PARALLEL_GROUPS: int(1, 1000).default(4),

  SWITCHYARD_ENCRYPTION_KEYS: encryptionKeys.default([]),
  /** Compress payloads of at least SWITCHYARD_PAYLOAD_COMPRESSION_MIN_BYTES before they are encrypted. */
  SWITCHYARD_PAYLOAD_COMPRESSION: z.enum(['none', 'gzip', 'deflate']).default('none'),
  SWITCHYARD_PAYLOAD_COMPRESSION_MIN_BYTES: int(0, 64 * 1024 * 1024).default(4096),

  /** CIDRs outbound requests (document URLs, webhooks) may reach although they are loopback, private or link-local. */
  SWITCHYARD_OUTBOUND_ALLOW: list
    .pipe(z.array(z.string().refine((c) => parseCidr(c) !== undefined, 'CIDRs like 10.0.0.0/8 or ::1/128')))
    .default([]),
  SWITCHYARD_OUTBOUND_TIMEOUT_MS: int(100, 600_000).default(30_000),
  SWITCHYARD_WEBHOOK_SECRET: z.string().min(16, 'webhook secrets are ≥ 16 characters').optional(),

  /** The handler pipeline of conversations created without one (docs/conversations.md, "Pipelines"). */
  SWITCHYARD_CHAT_PIPELINE: json('chat pipeline { stages, targets }').pipe(pipelineSchema).optional(),

  SWITCHYARD_API_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  SWITCHYARD_API_KEY: z.string().min(1).optional(),

  PATH: z.string().default(''),
  XDG_CACHE_HOME: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type Config = ReturnType<typeof toConfig>;

export class ConfigError extends SwitchyardError {
  override readonly name = 'ConfigError';
  readonly code = 'invalid-config';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
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
    /** A job's workflow input as JSON (UTF-8): a job over it is refused before it starts. */
    maxInputBytes: e.SWITCHYARD_MAX_JOB_INPUT_BYTES,
  };
  const problems: string[] = [];
  if (limits.defaultMaxAttempts > limits.maxAttempts) problems.push('SWITCHYARD_DEFAULT_MAX_ATTEMPTS: above SWITCHYARD_MAX_ATTEMPTS');
  if (limits.defaultAttemptTimeoutMs > limits.maxAttemptTimeoutMs)
    problems.push('SWITCHYARD_DEFAULT_ATTEMPT_TIMEOUT_MS: above SWITCHYARD_MAX_ATTEMPT_TIMEOUT_MS');
  if (limits.defaultDeadlineMs > limits.maxDeadlineMs) problems.push('SWITCHYARD_DEFAULT_DEADLINE_MS: above SWITCHYARD_MAX_DEADLINE_MS');
  for (const pool of e.SWITCHYARD_WORKER_POOLS) {
    if (!(pool in e.SWITCHYARD_POOLS)) problems.push(`SWITCHYARD_WORKER_POOLS: pool "${pool}" is not in SWITCHYARD_POOLS`);
  }
  problems.push(
    ...sharedLimiterConflicts(e.SWITCHYARD_POOLS),
    ...unfillableBatches(e.SWITCHYARD_POOLS),
    ...invertedSlotBounds(e.SWITCHYARD_POOLS),
  );
  // The built-in default names the `local` pool; a configuration without one sets its own or passes a pipeline per conversation.
  const chatPipeline = e.SWITCHYARD_CHAT_PIPELINE ?? DEFAULT_CHAT_PIPELINE;
  for (const issue of e.SWITCHYARD_CHAT_PIPELINE ? unknownPools(chatPipeline, Object.keys(e.SWITCHYARD_POOLS)) : []) {
    problems.push(`SWITCHYARD_CHAT_PIPELINE ${issue.path.join('.')}: ${issue.message}`);
  }
  if (e.SWITCHYARD_S3_KMS_KEY_ID && e.SWITCHYARD_S3_SSE !== 'aws:kms')
    problems.push('SWITCHYARD_S3_KMS_KEY_ID: needs SWITCHYARD_S3_SSE=aws:kms');
  if (e.SWITCHYARD_BLOB_STORE === 's3' && !e.SWITCHYARD_S3_BUCKET)
    problems.push('SWITCHYARD_S3_BUCKET: needed with SWITCHYARD_BLOB_STORE=s3');
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
      /** gRPC compression of the workers' connections: gzip pays CPU on both ends to save bandwidth, which loopback does not need. */
      grpcCompression: e.TEMPORAL_GRPC_COMPRESSION ?? (isLoopbackAddress(e.TEMPORAL_ADDRESS ?? devAddress) ? 'none' : 'gzip'),
      /** Base of the jobs' UI links: TEMPORAL_UI_URL, else the dev server's UI; null (no links) for an external server without one. */
      uiUrl: uiUrlOf(e),
      /** TEMPORAL_UI_URL itself (null when unset), for a server whose UI is not the dev server's (`up --cluster`). */
      uiUrlSetting: e.TEMPORAL_UI_URL?.replace(/\/+$/, '') ?? null,
      cliPath: e.TEMPORAL_CLI_PATH,
      testServerPath: e.TEMPORAL_TEST_SERVER_PATH,
      taskQueuePrefix: e.SWITCHYARD_TASK_QUEUE_PREFIX,
      /** What every client and worker passes payloads through (src/temporal/codec.ts): compression, then encryption. */
      payloads: {
        keys: e.SWITCHYARD_ENCRYPTION_KEYS,
        compression: { algorithm: e.SWITCHYARD_PAYLOAD_COMPRESSION, minBytes: e.SWITCHYARD_PAYLOAD_COMPRESSION_MIN_BYTES },
      },
    },
    devServer: {
      port: e.SWITCHYARD_DEV_SERVER_PORT,
      uiPort: e.SWITCHYARD_DEV_UI_PORT,
      dbFile: path.join(dataDir, 'temporal.sqlite'),
    },
    /** `switchyard cluster`: its PostgreSQL data, generated server configs, logs and state.json live in `dir`. */
    cluster: {
      dir: path.join(dataDir, 'cluster'),
      port: e.SWITCHYARD_CLUSTER_PORT,
      postgresPort: e.SWITCHYARD_CLUSTER_POSTGRES_PORT,
    },
    dataDir,
    toolsDir: path.resolve(e.SWITCHYARD_TOOLS_DIR),
    toolsCacheDir: path.resolve(
      e.SWITCHYARD_TOOLS_CACHE_DIR ?? path.join(e.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'switchyard-tools'),
    ),
    /** Where to look for the `temporal` binaries and python3. */
    searchPath: e.PATH,
    api: {
      host: e.API_HOST,
      port: e.API_PORT,
      keys: e.SWITCHYARD_API_KEYS,
      operatorKeys: e.SWITCHYARD_OPERATOR_KEYS,
      bodyLimitBytes: e.SWITCHYARD_BODY_LIMIT_BYTES,
      requestTimeoutMs: e.SWITCHYARD_REQUEST_TIMEOUT_MS,
      metricsAddress: e.SWITCHYARD_API_METRICS_ADDRESS,
      replicas: e.SWITCHYARD_API_REPLICAS,
    },
    pools: e.SWITCHYARD_POOLS,
    tenants: {
      overrides: e.SWITCHYARD_TENANTS,
      defaultWeight: e.SWITCHYARD_DEFAULT_TENANT_WEIGHT,
      defaultMaxOpenJobs: e.SWITCHYARD_DEFAULT_MAX_OPEN_JOBS,
      defaultRequestsPerSecond: e.SWITCHYARD_DEFAULT_REQUESTS_PER_SECOND,
    },
    worker: {
      workflows: e.SWITCHYARD_WORKER_WORKFLOWS,
      pools: e.SWITCHYARD_WORKER_POOLS,
      shutdownGraceMs: e.SWITCHYARD_SHUTDOWN_GRACE_MS,
      metricsAddress: e.SWITCHYARD_WORKER_METRICS_ADDRESS,
    },
    limits,
    blobs:
      e.SWITCHYARD_BLOB_STORE === 's3'
        ? {
            kind: 's3' as const,
            bucket: e.SWITCHYARD_S3_BUCKET!,
            endpoint: e.SWITCHYARD_S3_ENDPOINT,
            region: e.SWITCHYARD_S3_REGION,
            prefix: e.SWITCHYARD_S3_PREFIX,
            forcePathStyle: e.SWITCHYARD_S3_FORCE_PATH_STYLE,
            serverSideEncryption:
              e.SWITCHYARD_S3_SSE === 'none' ? null : { algorithm: e.SWITCHYARD_S3_SSE, kmsKeyId: e.SWITCHYARD_S3_KMS_KEY_ID },
            credentials:
              e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
                ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY }
                : undefined,
          }
        : {
            kind: 'file' as const,
            dir: path.resolve(e.SWITCHYARD_BLOB_DIR ?? path.join(dataDir, 'blobs')),
            /** Blobs are sealed with the first and opened with any of these (src/crypto/sealed-blob.ts). */
            keys: e.SWITCHYARD_ENCRYPTION_KEYS,
          },
    documents: { maxBytes: e.SWITCHYARD_MAX_DOCUMENT_BYTES },
    /** A batch file's limits, checked whole before the batch is accepted, and the size of its groups. */
    batches: {
      maxLines: e.SWITCHYARD_BATCH_MAX_LINES,
      maxBytes: e.SWITCHYARD_BATCH_MAX_BYTES,
      groupSize: e.SWITCHYARD_BATCH_GROUP_SIZE,
      maxParallelGroups: e.SWITCHYARD_BATCH_MAX_PARALLEL_GROUPS,
    },
    outbound: {
      allow: e.SWITCHYARD_OUTBOUND_ALLOW,
      timeoutMs: e.SWITCHYARD_OUTBOUND_TIMEOUT_MS,
      maxBytes: e.SWITCHYARD_MAX_DOCUMENT_BYTES,
      maxRedirects: 5,
    },
    webhookSecret: e.SWITCHYARD_WEBHOOK_SECRET,
    chat: { pipeline: chatPipeline },
    /** Where the `switchyard submit | status | watch | cancel` commands send their requests. */
    cli: { apiUrl: e.SWITCHYARD_API_URL.replace(/\/+$/, ''), apiKey: e.SWITCHYARD_API_KEY },
    logLevel: e.LOG_LEVEL,
  };
}

function uiUrlOf(e: z.infer<typeof envSchema>): string | null {
  if (e.TEMPORAL_UI_URL !== undefined) return e.TEMPORAL_UI_URL.replace(/\/+$/, '');
  return e.TEMPORAL_ADDRESS === undefined ? `http://localhost:${e.SWITCHYARD_DEV_UI_PORT}` : null;
}

export interface TenantPolicy {
  weight: number;
  /** 0 means no limit. */
  maxOpenJobs: number;
  /** API requests per second across the API's replicas; 0 means no limit. */
  requestsPerSecond: number;
}

/** The secret that signs a tenant's webhooks, or undefined when none is configured (webhooks are refused then). */
export function webhookSecretOf(config: Pick<Config, 'tenants' | 'webhookSecret'>, tenant: string): string | undefined {
  return config.tenants.overrides[tenant]?.webhookSecret ?? config.webhookSecret;
}

export function tenantPolicy(tenants: Config['tenants'], tenant: string): TenantPolicy {
  const own = tenants.overrides[tenant];
  return {
    weight: own?.weight ?? tenants.defaultWeight,
    maxOpenJobs: own?.maxOpenJobs ?? tenants.defaultMaxOpenJobs,
    requestsPerSecond: own?.requestsPerSecond ?? tenants.defaultRequestsPerSecond,
  };
}

/**
 * A worker process: the workflow role and/or one worker per inference pool, all on one native
 * connection. Inference-only processes never load workflow code. SIGTERM drains: workers stop
 * polling and in-flight inference gets `shutdownGraceMs` to finish before it is cancelled.
 */
import { Client } from '@temporalio/client';
import { DefaultLogger, type LogEntry, type NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createBatchFinalizeActivities } from '../../activities/batch-finalize';
import { createChatActivities } from '../../activities/chat';
import { createPipelineActivities } from '../../activities/pipeline';
import { createBlobStore } from '../blobs';
import { type Config, limiterOf, webhookSecretOf } from '../config';
import { LimiterClient } from '../inference/limiter-client';
import { limiterSettingsOf } from '../inference/limiter-state';
import { createProvider } from '../inference/providers';
import type { Logger, LogLevel } from '../logger';
import { dataConverterOf } from '../temporal/codec';
import { connectWorker } from '../temporal/connection';
import { workflowBundle } from './workflow-bundle';
import { limiterWorkflowId, poolTaskQueue, workflowTaskQueue } from '../temporal/task-queues';
import { inferenceMetrics, prometheusTelemetry } from './metrics';
import { activitySlotOptions } from './slots';
import { WORKER_READY } from './ready-line';

export interface WorkerRoles {
  workflows: boolean;
  pools: string[];
}

const SDK_LEVELS: Record<string, LogLevel> = { TRACE: 'debug', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** Routes the SDK's logs (with workflow id, run id, activity attempt) into our JSON lines; serves metrics if asked. */
function installRuntime(log: Logger, level: Config['logLevel'], metricsAddress: string | undefined): void {
  const sdkLevel = level === 'debug' ? 'DEBUG' : level === 'info' ? 'INFO' : level === 'warn' ? 'WARN' : 'ERROR';
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, (entry: LogEntry) => log.log(SDK_LEVELS[entry.level] ?? 'info', entry.message, { ...entry.meta })),
    telemetryOptions: metricsAddress ? prometheusTelemetry(metricsAddress) : undefined,
  });
}

/**
 * The limiter clients of this process, one per limiter its pools use (pools sharing a limiter share
 * the client, so their calls coalesce into the same updates).
 */
function limiterClients(config: Config, connection: NativeConnection, log: Logger) {
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverterOf(config.temporal.payloads) });
  const clients = new Map<string, LimiterClient>();
  const forPool = (pool: string): LimiterClient | undefined => {
    const settings = limiterSettingsOf(config.pools[pool]!);
    if (!settings) return undefined; // no token limit, no breaker: nothing to ask
    const limiter = limiterOf(pool, config.pools[pool]!);
    if (!clients.has(limiter)) {
      const prefix = config.temporal.taskQueuePrefix;
      const options = {
        client,
        workflowId: limiterWorkflowId(prefix, limiter),
        taskQueue: workflowTaskQueue(prefix),
        limiter,
        settings,
        log,
      };
      clients.set(limiter, new LimiterClient(options));
    }
    return clients.get(limiter);
  };
  return { forPool, close: () => Promise.all([...clients.values()].map((c) => c.close())) };
}

export async function runWorker(config: Config, roles: WorkerRoles, log: Logger): Promise<void> {
  if (!roles.workflows && roles.pools.length === 0) throw new Error('nothing to run: give --workflows and/or --pool <name>');
  installRuntime(log, config.logLevel, config.worker.metricsAddress);
  const connection = await connectWorker(config.temporal);
  try {
    const common = {
      connection,
      namespace: config.temporal.namespace,
      shutdownGraceTime: config.worker.shutdownGraceMs,
      dataConverter: dataConverterOf(config.temporal.payloads),
    };
    const workers: Worker[] = [];
    const limiters = limiterClients(config, connection, log);
    const blobs = createBlobStore(config.blobs);
    const stepDeps = { blobs, outbound: config.outbound, webhookSecretOf: (tenant: string) => webhookSecretOf(config, tenant) };
    if (roles.workflows) {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: workflowTaskQueue(config.temporal.taskQueuePrefix),
          workflowBundle: { code: (await workflowBundle(log)).code },
          // The workflows' own steps run beside them: the document pipeline's (extraction, splitting,
          // aggregation, webhooks, cleanup), the conversations' (message records, deliveries) and a batch's finalization.
          activities: {
            ...createPipelineActivities(stepDeps),
            ...createChatActivities(stepDeps),
            ...createBatchFinalizeActivities(stepDeps),
          },
        }),
      );
    }
    for (const pool of roles.pools) {
      const settings = config.pools[pool];
      if (!settings) throw new Error(`unknown pool "${pool}"; pools: ${Object.keys(config.pools).join(', ')}`);
      const metrics = inferenceMetrics(Runtime.instance().metricMeter, pool);
      const provider = createProvider(settings, metrics.batch);
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: poolTaskQueue(config.temporal.taskQueuePrefix, pool),
          activities: createActivities({ provider, limiter: limiters.forPool(pool), metrics, blobs, concurrency: settings.concurrency }),
          ...activitySlotOptions(settings),
          // Temporal's task-queue rate limit: dispatches per second to all workers of the pool together.
          maxTaskQueueActivitiesPerSecond: settings.rateLimit.requestsPerSecond,
        }),
      );
    }
    log.log('info', WORKER_READY, {
      workflows: roles.workflows,
      pools: roles.pools,
      taskQueues: workers.map((w) => w.options.taskQueue),
      metrics: config.worker.metricsAddress ? `http://${config.worker.metricsAddress}/metrics` : 'off',
      pid: process.pid,
    });
    await Promise.all(workers.map((w) => w.run()));
    await limiters.close(); // the last calls' outcomes, so the limiter does not hold their estimates a minute longer
    log.log('info', 'worker drained and stopped', { pid: process.pid });
  } finally {
    await connection.close();
  }
}

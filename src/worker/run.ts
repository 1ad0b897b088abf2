/**
 * A worker process: the workflow role and/or one worker per inference pool, all on one native
 * connection. Inference-only processes never load workflow code. SIGTERM drains: workers stop
 * polling and in-flight inference gets `shutdownGraceMs` to finish before it is cancelled.
 */
import { bundleWorkflowCode, DefaultLogger, type LogEntry, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { Config } from '../config';
import { createProvider } from '../inference/providers';
import type { Logger, LogLevel } from '../logger';
import { connectWorker } from '../temporal/connection';
import { poolTaskQueue, workflowTaskQueue } from '../temporal/task-queues';

export interface WorkerRoles {
  workflows: boolean;
  pools: string[];
}

const SDK_LEVELS: Record<string, LogLevel> = { TRACE: 'debug', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** Routes the SDK's logs (with workflow id, run id, activity attempt) into our JSON lines. */
function installRuntime(log: Logger, level: Config['logLevel']): void {
  const sdkLevel = level === 'debug' ? 'DEBUG' : level === 'info' ? 'INFO' : level === 'warn' ? 'WARN' : 'ERROR';
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, (entry: LogEntry) =>
      log.log(SDK_LEVELS[entry.level] ?? 'info', entry.message, { ...entry.meta }),
    ),
  });
}

/** Bundles the workflow code with webpack's chatter at debug level: one summary line is enough. */
async function bundleWorkflows(log: Logger): Promise<{ code: string }> {
  const started = Date.now();
  const quiet = new DefaultLogger('WARN', (entry: LogEntry) => log.log(SDK_LEVELS[entry.level] ?? 'warn', entry.message));
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quiet });
  log.log('info', 'workflow bundle built', { bytes: code.length, ms: Date.now() - started });
  return { code };
}

export async function runWorker(config: Config, roles: WorkerRoles, log: Logger): Promise<void> {
  if (!roles.workflows && roles.pools.length === 0) throw new Error('nothing to run: give --workflows and/or --pool <name>');
  installRuntime(log, config.logLevel);
  const connection = await connectWorker(config.temporal);
  try {
    const common = {
      connection,
      namespace: config.temporal.namespace,
      shutdownGraceTime: config.worker.shutdownGraceMs,
    };
    const workers: Worker[] = [];
    if (roles.workflows) {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: workflowTaskQueue(config.temporal.taskQueuePrefix),
          workflowBundle: await bundleWorkflows(log),
        }),
      );
    }
    for (const pool of roles.pools) {
      const settings = config.pools[pool];
      if (!settings) throw new Error(`unknown pool "${pool}"; pools: ${Object.keys(config.pools).join(', ')}`);
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: poolTaskQueue(config.temporal.taskQueuePrefix, pool),
          activities: createActivities({ provider: createProvider(settings) }),
          maxConcurrentActivityTaskExecutions: settings.concurrency,
        }),
      );
    }
    log.log('info', 'worker ready', {
      workflows: roles.workflows,
      pools: roles.pools,
      taskQueues: workers.map((w) => w.options.taskQueue),
      pid: process.pid,
    });
    await Promise.all(workers.map((w) => w.run()));
    log.log('info', 'worker drained and stopped', { pid: process.pid });
  } finally {
    await connection.close();
  }
}


/**
 * `switchyard autoscale`: runs each pool's inference workers as local processes whose number follows
 * the pool's scaling policy (src/scaling/process-actuator.ts). With SWITCHYARD_WORKER_METRICS_ADDRESS it
 * serves its own metrics there (src/scaling/autoscaler-metrics.ts). SIGTERM/SIGINT drains the workers and exits.
 */
import { childEnvironment, type Config } from '../config';
import type { Logger } from '../logger';
import { createClient } from '../temporal/connection';
import { PoolClient } from '../clients/pools';
import { autoscalerRegistry, serveMetrics } from '../scaling/autoscaler-metrics';
import { ProcessActuator } from '../scaling/process-actuator';
import { AUTOSCALER_READY } from '../scaling/ready-line';

export async function autoscale(config: Config, log: Logger): Promise<number> {
  const client = createClient(config.temporal);
  const actuator = new ProcessActuator({
    pools: config.pools,
    poolClient: new PoolClient(client, { taskQueuePrefix: config.temporal.taskQueuePrefix, pools: config.pools }),
    env: childEnvironment({}),
    shutdownGraceMs: config.worker.shutdownGraceMs,
    metricsAddress: config.worker.metricsAddress,
    log,
    print: (line) => console.log(line),
  });
  const address = config.worker.metricsAddress;
  const metrics = address
    ? await serveMetrics(
        address,
        autoscalerRegistry(() => actuator.status()),
      )
    : null;
  actuator.start();
  log.log('info', AUTOSCALER_READY, { pools: Object.keys(config.pools), metrics: address ? `http://${address}/metrics` : 'off' });
  await new Promise<void>((resolve) => {
    // `on`: a second signal while draining must not kill the autoscaler and orphan its workers.
    process.on('SIGTERM', resolve);
    process.on('SIGINT', resolve);
  });
  log.log('info', 'autoscaler stopping: draining workers', { graceMs: config.worker.shutdownGraceMs });
  await actuator.stop();
  metrics?.close();
  metrics?.closeAllConnections();
  await client.connection.close();
  log.log('info', 'autoscaler stopped');
  return 0;
}

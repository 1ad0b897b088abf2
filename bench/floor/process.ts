/**
 * The floor's worker and client in one process, as an eager workflow start needs them. Forked by the
 * bench (./side.ts): each `run` message starts bare workflows under a load and is answered with their
 * ids and send times; `stop` drains the worker and ends the process.
 */
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { closedLoop, openLoop, type LoadResult } from '../lib/load';
import { bareWorkflow } from './workflow';

export interface FloorSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  slots: number;
  eagerStart: boolean;
  eagerActivity: boolean;
  /** gRPC compression of the connection (the SDK's default is gzip). */
  compression: 'gzip' | 'none';
}

/** One load: `inFlight` starts outstanding (closed loop) or `ratePerSec` arrivals (open loop). */
export interface FloorLoad {
  id: string;
  jobs: number;
  activityMs: number;
  inFlight?: number;
  ratePerSec?: number;
}

export type FloorRequest = { run: FloorLoad } | 'stop';
export type FloorReply = 'ready' | { id: string; ids: string[]; load: LoadResult };

async function main(settings: FloorSettings): Promise<void> {
  const connection = await NativeConnection.connect({ address: settings.address, grpcCompression: { codec: settings.compression } });
  const client = new Client({ connection, namespace: settings.namespace });
  const worker = await Worker.create({
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    workflowsPath: require.resolve('./workflow'),
    activities: { work: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) },
    maxConcurrentActivityTaskExecutions: settings.slots,
  });
  const reply = (message: FloorReply) => process.send!(message);
  let sent = 0;
  const run = async (load: FloorLoad) => {
    const ids: string[] = [];
    const fire = async (i: number) => {
      const workflowId = `floor-${settings.taskQueue}-${sent++}`;
      await client.workflow.start(bareWorkflow, {
        workflowId,
        taskQueue: settings.taskQueue,
        args: [load.activityMs, settings.eagerActivity],
        requestEagerStart: settings.eagerStart,
      });
      ids[i] = workflowId;
    };
    const result = await (load.ratePerSec
      ? openLoop({ ratePerSec: load.ratePerSec, count: load.jobs, fire })
      : closedLoop({ concurrency: load.inFlight ?? 1, count: load.jobs, fire }));
    reply({ id: load.id, ids, load: result });
  };
  const stopped = new Promise<void>((resolve) => process.on('message', (m: FloorRequest) => (m === 'stop' ? resolve() : void run(m.run))));
  const running = worker.runUntil(stopped);
  reply('ready');
  await running;
  await connection.close();
  process.disconnect(); // the IPC channel would keep the process alive
}

main(JSON.parse(process.argv[2]!) as FloorSettings).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

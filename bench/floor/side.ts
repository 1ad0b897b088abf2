/**
 * Temporal's floor as a benchmark side: a dev server set up as `switchyard up` runs it, and one forked
 * process (./process.ts) that is both the bare workflow's worker and the client that starts it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { LoadResult } from '../lib/load';
import { syntheticPool } from '../lib/submit';
import { startBenchStack } from '../../testkit/bench-stack';
import { onInterrupt } from '../../testkit/interrupts';
import type { FloorLoad, FloorReply, FloorRequest, FloorSettings } from './process';
import type { EngineSide } from '../lib/engine-side';

export interface FloorOptions {
  slots: number;
  eagerStart: boolean;
  eagerActivity: boolean;
  compression?: 'gzip' | 'none';
  dynamicConfig?: readonly string[];
  log: (line: string) => void;
}

export async function startFloorSide(opts: FloorOptions): Promise<EngineSide> {
  // A server with no Switchyard processes (the configuration wants a pool; none of its workers runs).
  const stack = await startBenchStack({
    pools: { unused: syntheticPool(1, 0) },
    poolWorkers: { unused: 0 },
    workflowWorkers: 0,
    dynamicConfig: opts.dynamicConfig,
    log: opts.log,
  });
  const settings: FloorSettings = {
    address: stack.temporalAddress,
    namespace: stack.client.options.namespace,
    taskQueue: `floor-${randomUUID()}`,
    slots: opts.slots,
    eagerStart: opts.eagerStart,
    eagerActivity: opts.eagerActivity,
    compression: opts.compression ?? 'gzip',
  };
  const child = fork(require.resolve('./process'), [JSON.stringify(settings)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const stop = async () => {
    unregister();
    await stopChild(child);
    await stack.stop();
  };
  const unregister = onInterrupt(stop);
  const replies = new Map<string, (reply: { ids: string[]; load: LoadResult }) => void>();
  child.on('message', (m: FloorReply) => typeof m === 'object' && replies.get(m.id)?.(m));
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', (m: FloorReply) => m === 'ready' && resolve());
      child.once('exit', (code) => reject(new Error(`the floor process exited (${code}) before it was ready`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const request = (m: FloorRequest) => child.send(m);
  return {
    serverPid: stack.processes()[0]!.pid,
    client: stack.client,
    query: `WorkflowType = 'bareWorkflow' AND TaskQueue = '${settings.taskQueue}'`,
    processes: () => [...stack.processes(), { name: 'floor worker + client', pid: child.pid ?? -1 }],
    run: (load) =>
      new Promise((resolve) => {
        const id = randomUUID();
        replies.set(id, resolve);
        const message: FloorLoad = {
          id,
          jobs: load.jobs,
          activityMs: load.activityMs,
          inFlight: load.inFlight,
          ratePerSec: load.ratePerSec,
        };
        request({ run: message });
      }),
    stop,
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.send('stop' satisfies FloorRequest);
  });
}

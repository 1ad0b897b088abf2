/**
 * When the cluster serves: every service's gRPC port is open and the frontend gets answers from history
 * and matching (they have joined the membership ring and own their shards and queues). Asked on the
 * server's own `temporal-system` namespace, which exists before any namespace of ours.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import type { Daemon } from './daemon';
import { acceptsTcp } from './pids';
import { SERVICES, type ClusterState } from './state';

const READY_TIMEOUT_MS = 120_000;
const SYSTEM_NAMESPACE = 'temporal-system';
const PROBE_ID = 'switchyard-cluster-readiness-probe';

/** Waits until `daemon` accepts connections on `port` (it has initialised); fails if it exits first. */
export async function waitUntilListening(daemon: Daemon, port: number): Promise<void> {
  for (const deadline = Date.now() + READY_TIMEOUT_MS; !(await acceptsTcp(port));) {
    const status = daemon.exited();
    if (status !== undefined) throw exitError(daemon, status);
    if (Date.now() > deadline)
      throw new Error(
        `Temporal ${daemon.name} did not listen on port ${port} within ${READY_TIMEOUT_MS / 1000} s; ${daemon.logFile} ends with:\n${daemon.tail()}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

const exitError = (d: Daemon, status: string) =>
  new Error(`Temporal ${d.name} exited (${status}) while starting; ${d.logFile} ends with:\n${d.tail()}`);

export async function waitUntilServing(state: ClusterState, daemons: Daemon[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    for (const d of daemons) {
      const status = d.exited();
      if (status !== undefined) throw exitError(d, status);
    }
    const why = await notServing(state);
    if (!why) return;
    if (Date.now() > deadline) {
      const logs = daemons.map((d) => `--- ${d.logFile}\n${d.tail(8)}`).join('\n');
      throw new Error(`the cluster was not serving within ${READY_TIMEOUT_MS / 1000} s: ${why}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** '' when it serves, else what is missing. */
async function notServing(state: ClusterState): Promise<string> {
  for (const s of SERVICES) {
    if (!(await acceptsTcp(state.services[s].grpc))) return `${s} does not accept connections on port ${state.services[s].grpc} yet`;
  }
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: state.address, connectTimeout: 2_000 });
    const service = connection.workflowService;
    await connection.withDeadline(Date.now() + 5_000, async () => {
      await service.getSystemInfo({});
      await service.describeTaskQueue({ namespace: SYSTEM_NAMESPACE, taskQueue: { name: PROBE_ID }, taskQueueType: 1 });
      await service
        .describeWorkflowExecution({ namespace: SYSTEM_NAMESPACE, execution: { workflowId: PROBE_ID } })
        .catch((err: unknown) => {
          // The answer that no such execution exists comes from the history service: it serves.
          if (!(isGrpcServiceError(err) && err.code === GrpcStatus.NOT_FOUND)) throw err;
        });
    });
    return '';
  } catch (err) {
    return `the frontend does not serve yet (${(err as Error).message})`;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

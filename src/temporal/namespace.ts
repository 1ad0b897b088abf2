/**
 * The namespace Switchyard runs in. A self-hosted server creates none of its own: `switchyard cluster up`
 * registers it with a retention; elsewhere it must exist (Temporal Cloud, a shared cluster).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { isGrpcServiceError, type ConnectionLike } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';

/** How long closed executions (finished jobs and their histories) stay on a namespace the cluster creates. */
export const CLUSTER_RETENTION_DAYS = 3;

export const isNotFound = (err: unknown) => isGrpcServiceError(err) && err.code === GrpcStatus.NOT_FOUND;

/** Registers `namespace` unless it exists; true when this call created it. */
export async function ensureNamespace(
  connection: Pick<ConnectionLike, 'workflowService'>,
  namespace: string,
  retentionDays: number,
): Promise<boolean> {
  const service = connection.workflowService;
  try {
    await service.describeNamespace({ namespace });
    return false;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    await service.registerNamespace({
      namespace,
      description: 'Switchyard jobs',
      workflowExecutionRetentionPeriod: msToTs(retentionDays * 86_400_000),
    });
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GrpcStatus.ALREADY_EXISTS) return false;
    throw err;
  }
}

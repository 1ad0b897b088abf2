/**
 * The job as both sides see it: what the API hands a workflow, what the workflow returns, and how a
 * Temporal execution's state reads as a job status. Pure code: workflows import it too.
 */
import { DOCUMENT_FAILURES } from '../documents/contract';

export const JOB_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const JOB_TYPES = ['inference', 'document'] as const;
export type JobType = (typeof JOB_TYPES)[number];
/**
 * The JobType search attribute of a batch's workflow. A batch is no job GET /v1/jobs lists (it has
 * /v1/batches), but it counts as one open job against its tenant's quota.
 */
export const BATCH_JOB_TYPE = 'batch';

/** The failure type of a job that ran out of time; such a job's status is `timed_out`. */
export const DEADLINE_EXCEEDED = 'JobDeadlineExceeded';
/** The failure type of a job whose inference waited longer than its `maxQueueMs` for a worker. */
export const QUEUE_TIMEOUT = 'JobQueueTimeout';
/** A review no one decided in time, with `onTimeout: fail`, is a timeout too. */
const TIMED_OUT_TYPES: readonly string[] = [DEADLINE_EXCEEDED, QUEUE_TIMEOUT, DOCUMENT_FAILURES.reviewTimedOut];

/** Non-retryable failure types: retrying cannot change the answer. */
export const NON_RETRYABLE_ERRORS = ['InvalidInput', 'ProviderRejected'] as const;

/** Temporal's execution status names, as the client SDK reports them. */
export type ExecutionStatusName =
  'UNSPECIFIED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TERMINATED' | 'CONTINUED_AS_NEW' | 'TIMED_OUT' | 'PAUSED' | 'UNKNOWN';

/**
 * A job's status from Temporal's own state: a running execution is `running` while one of its
 * activities has been picked up by a worker (for a document job: once its pipeline is under way), and
 * `queued` while they all wait for one; a failed one is `timed_out` when its failure says the deadline,
 * the queue time or the review time passed.
 */
export function jobStatusOf(execution: ExecutionStatusName, activityStarted: boolean, failureType?: string): JobStatus {
  if (execution === 'FAILED' && failureType !== undefined && TIMED_OUT_TYPES.includes(failureType)) return 'timed_out';
  switch (execution) {
    case 'COMPLETED':
      return 'succeeded';
    case 'CANCELLED':
      return 'cancelled';
    case 'TIMED_OUT':
      return 'timed_out';
    case 'FAILED':
    case 'TERMINATED':
      return 'failed';
    default:
      return activityStarted ? 'running' : 'queued';
  }
}

/**
 * Visibility `ExecutionStatus` values that may hold jobs of a status. They narrow a listing; each
 * job's own state decides (queued and running share one, and a deadline failure is `timed_out`).
 */
export const EXECUTION_STATUS_FOR: Record<JobStatus, string[]> = {
  queued: ['Running'],
  running: ['Running'],
  waiting: ['Running'],
  succeeded: ['Completed'],
  failed: ['Failed', 'Terminated'],
  cancelled: ['Canceled'],
  timed_out: ['TimedOut', 'Failed'],
};

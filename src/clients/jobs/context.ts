/** What the job operations behind the JobClient are given: Temporal, reading a job back, and the tenant quota. */
import type { Client } from '@temporalio/client';
import type { JobResource } from '../../jobs/resource';

export interface JobsContext {
  temporal: Client;
  /** The tenant's job as of its current run, or of `runId`; null when the tenant has no such job. */
  getJob(tenant: string, jobId: string, runId?: string): Promise<JobResource | null>;
  /** Runs `start`, which opens one job of the tenant, within the tenant's quota: QuotaExceededError beyond it. */
  admitOpenJob<T>(tenant: string, start: () => Promise<T>): Promise<T>;
}

/**
 * Job operations mapped onto Temporal: a job is one workflow execution, and everything the API says
 * about a job is read back from Temporal (describe, history, visibility). Nothing is kept elsewhere
 * but document jobs' data, in the blob store. The JobClient is the one way in; each operation lives in
 * a small module of its own, given only what it needs.
 */
import {
  type Client,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import type { BlobStore } from '../../blobs/store';
import { reviewUpdate, type ReviewRequest } from '../../documents/contract';
import { workflowIdFor } from '../../jobs/ids';
import type { BulkRetryResult, JobResource, JobRun } from '../../jobs/resource';
import type { JobsContext } from './context';
import { deleteJob } from './delete';
import { JobNotCancellableError, ReviewNotOpenError, ReviewNotTakenError } from './errors';
import { countFailures, listJobs, type FailureCounts, type FailureScope, type JobListFilter } from './list';
import { OpenJobs } from './open-jobs';
import { JobReader } from './read';
import { readResult, type JobResult } from './result';
import { listRuns, retryJob, retryJobs, type BulkRetryFilter } from './retry';
import type { JobToStart } from './start';
import { submitJob, type Submission, type SubmitSettings } from './submit';

export interface JobClientOptions extends SubmitSettings {
  /** Where document jobs keep their data: read for results, emptied when a job is deleted. */
  blobs: Pick<BlobStore, 'stream' | 'deleteScope'>;
}

/** How long a review decision may wait for the workflow to take it (a workflow worker must be up). */
const REVIEW_UPDATE_TIMEOUT_MS = 10_000;

export class JobClient {
  private readonly reader: JobReader;
  private readonly openJobs: OpenJobs;
  private readonly context: JobsContext;

  constructor(
    readonly temporal: Client,
    private readonly opts: JobClientOptions,
  ) {
    this.reader = new JobReader(temporal, opts);
    this.openJobs = new OpenJobs(temporal, (tenant) => opts.tenantPolicy(tenant).maxOpenJobs);
    this.context = {
      temporal,
      getJob: (tenant, jobId, runId) => this.reader.get(tenant, jobId, runId),
      admitOpenJob: (tenant, start) => this.openJobs.admit(tenant, start),
    };
  }

  /**
   * Starts the job, or answers a repeat of its Idempotency-Key (IdempotencyConflictError if the repeat
   * differs). A tenant at its quota of open jobs gets QuotaExceededError and nothing is started.
   */
  submit(tenant: string, job: JobToStart, submission: Submission): Promise<{ job: JobResource; created: boolean }> {
    const ctx = { temporal: this.temporal, reader: this.reader, openJobs: this.openJobs, settings: this.opts };
    return submitJob(ctx, tenant, job, submission);
  }

  /**
   * Runs `start`, which may open one job's worth of the tenant's quota (a batch's), within that quota:
   * QuotaExceededError beyond it. `opened(result)` says whether it did.
   */
  admitOpenJob<T>(tenant: string, start: () => Promise<T>, opened?: (result: T) => boolean): Promise<T> {
    return this.openJobs.admit(tenant, start, opened);
  }

  /** The tenant's job (as of its current run, or of `runId`), or null when it does not exist or belongs to someone else. */
  get(tenant: string, jobId: string, runId?: string): Promise<JobResource | null> {
    return this.reader.get(tenant, jobId, runId);
  }

  /** One page of the tenant's jobs matching the filter, newest first; InvalidCursorError for a cursor this API did not issue. */
  list(tenant: string, filter: JobListFilter): Promise<{ items: JobResource[]; nextCursor: string | null }> {
    return listJobs(this.context, tenant, filter);
  }

  /** Requests cancellation; the running activity learns of it through its next heartbeat. */
  async cancel(tenant: string, jobId: string): Promise<JobResource | null> {
    const job = await this.get(tenant, jobId);
    if (!job) return null;
    if (job.finishedAt !== null) throw new JobNotCancellableError(job);
    await this.temporal.workflow.getHandle(workflowIdFor(tenant, jobId)).cancel();
    return job;
  }

  /**
   * Sends a review decision to a document job waiting for one; the workflow's validator refuses it
   * unless the review is open and undecided. Resolves with the job as it is after the decision.
   */
  async review(tenant: string, jobId: string, request: ReviewRequest): Promise<JobResource | null> {
    const job = await this.get(tenant, jobId);
    if (!job) return null;
    if (job.type !== 'document') throw new ReviewNotOpenError(job, `job ${jobId} is an ${job.type} job; only document jobs are reviewed`);
    if (job.finishedAt !== null) throw new ReviewNotOpenError(job, `job ${jobId} has already ended (${job.status})`);
    const handle = this.temporal.workflow.getHandle(workflowIdFor(tenant, jobId), job.run.id);
    try {
      await this.temporal.withDeadline(Date.now() + REVIEW_UPDATE_TIMEOUT_MS, () =>
        handle.executeUpdate(reviewUpdate, { args: [request] }),
      );
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new ReviewNotOpenError(job, err.cause?.message ?? err.message);
      if (err instanceof WorkflowNotFoundError) throw new ReviewNotOpenError(job, `job ${jobId} has already ended`);
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) throw new ReviewNotTakenError({ cause: err });
      throw err;
    }
    return this.get(tenant, jobId);
  }

  /** Starts a new run of a failed, timed-out or cancelled job (JobNotRetryableError otherwise); null if there is no such job. */
  retry(tenant: string, jobId: string): Promise<JobResource | null> {
    return retryJob(this.context, tenant, jobId);
  }

  /** Retries the jobs of one page of a filter; the ones it cannot retry are listed with the reason. */
  retryMatching(tenant: string, filter: BulkRetryFilter): Promise<BulkRetryResult> {
    return retryJobs(this.context, tenant, filter);
  }

  /** The job's runs, newest first; null if there is no such job. */
  runs(tenant: string, jobId: string): Promise<JobRun[] | null> {
    return listRuns(this.context, tenant, jobId);
  }

  /** Deletes a job that has ended, its data and every run's history (JobNotDeletableError otherwise); null if there is no such job. */
  delete(tenant: string, jobId: string): Promise<JobResource | null> {
    return deleteJob(this.context, this.opts.blobs, tenant, jobId);
  }

  /** What the job produced (ResultNotReadyError while it has nothing); null if there is no such job. */
  result(tenant: string, jobId: string): Promise<JobResult | null> {
    return readResult(this.context, this.opts.blobs, tenant, jobId);
  }

  /** Failed runs by failure type, of one tenant or (without `scope.tenant`) of all. */
  countFailures(scope: FailureScope): Promise<FailureCounts> {
    return countFailures(this.temporal, scope);
  }
}

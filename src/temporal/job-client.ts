/**
 * Job operations mapped onto Temporal: a job is one workflow execution, and everything the API says
 * about a job is read back from Temporal (describe, history, visibility). Nothing is kept elsewhere.
 */
import {
  type Client,
  type WorkflowExecutionDescription,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { tenantPolicy, type Config } from '../config';
import { jobStatusOf } from '../jobs/job';
import { jobIdForIdempotencyKey, newJobId, workflowIdFor } from '../jobs/ids';
import { firstRun, jobLinks, type JobLinkBase, type JobResource } from '../jobs/resource';
import type { InferenceJobSpec } from '../jobs/spec';
import type { inferenceJob } from '../../workflows';
import { readClosedJob } from './job-history';
import type { RetryMemo } from './job-retry';
import { INFERENCE_WORKFLOW, jobStartOptions, type JobMemo } from './job-start';
import { OpenJobs, QuotaExceededError } from './open-jobs';
import { decodePayload, isoTime, rootFailure } from './proto';
import { SEARCH_ATTRIBUTES } from '../jobs/search-attributes';

export interface JobClientOptions extends JobLinkBase {
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  tenants: Config['tenants'];
}

export class IdempotencyConflictError extends Error {
  constructor(readonly jobId: string) {
    super(`Idempotency-Key was already used for job ${jobId} with a different request body`);
  }
}

export class JobNotCancellableError extends Error {
  constructor(readonly job: JobResource) {
    super(`job ${job.id} has already ended (${job.status})`);
  }
}

const ACTIVITY_STARTED = 2; // PENDING_ACTIVITY_STATE_STARTED

export class JobClient {
  private readonly openJobs: OpenJobs;

  constructor(
    readonly temporal: Client,
    private readonly opts: JobClientOptions,
  ) {
    this.openJobs = new OpenJobs(temporal);
  }

  /**
   * Starts the job's workflow. With an idempotency key the workflow id is derived from it, and
   * Temporal's conflict policy makes concurrent repeats share one execution. A tenant at its quota of
   * open jobs gets QuotaExceededError and nothing is started.
   */
  async submit(
    tenant: string,
    spec: InferenceJobSpec,
    submission: { idempotencyKey?: string; fingerprint: string },
  ): Promise<{ job: JobResource; created: boolean }> {
    const key = submission.idempotencyKey;
    const jobId = key === undefined ? newJobId() : jobIdForIdempotencyKey(tenant, key);
    const policy = tenantPolicy(this.opts.tenants, tenant);
    const { memo, options } = jobStartOptions({
      tenant,
      jobId,
      spec,
      fingerprint: submission.fingerprint,
      taskQueuePrefix: this.opts.taskQueuePrefix,
      heartbeatTimeoutMs: this.opts.heartbeatTimeoutMs,
      tenantWeight: policy.weight,
    });
    const workflowId = options.workflowId;
    const fresh = (id: string): JobResource => ({
      id: jobId,
      type: spec.type,
      tenant,
      pool: spec.pool,
      task: spec.task,
      priority: spec.priority,
      status: 'queued',
      attempts: 0,
      lastFailure: null,
      result: null,
      createdAt: new Date().toISOString(),
      startedAt: null,
      waitingFor: null,
      finishedAt: null,
      run: firstRun(id),
      links: jobLinks(this.opts, jobId, workflowId, id),
    });
    const answerRepeat = async (description: WorkflowExecutionDescription) => {
      const existing = description.memo as Partial<JobMemo> | undefined;
      if (existing?.fingerprint !== submission.fingerprint) throw new IdempotencyConflictError(jobId);
      if (existing.submission === memo.submission) return { job: fresh(description.runId), created: true };
      return { job: await this.toResource(tenant, jobId, description), created: false };
    };
    const start = async () => {
      let runId: string | undefined;
      try {
        const handle = await this.temporal.workflow.start<typeof inferenceJob>(INFERENCE_WORKFLOW, options);
        runId = handle.firstExecutionRunId;
      } catch (err) {
        // A job with this idempotency key has already ended: fall through and answer with it.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError) || key === undefined) throw err;
      }
      if (key === undefined) return { job: fresh(runId!), created: true };
      return answerRepeat(await this.temporal.workflow.getHandle(workflowId).describe());
    };

    if (policy.maxOpenJobs === 0) return start();
    try {
      return await this.openJobs.admit(tenant, policy.maxOpenJobs, start, (submitted) => submitted.created);
    } catch (err) {
      // A repeat of an accepted Idempotency-Key opens nothing, so at the quota it still gets its job.
      const accepted = err instanceof QuotaExceededError && key !== undefined ? await this.describe(tenant, jobId) : null;
      if (!accepted) throw err;
      return answerRepeat(accepted);
    }
  }

  /** Runs `start`, which opens one job of the tenant (a retry), within the tenant's quota: QuotaExceededError beyond it. */
  admitOpenJob<T>(tenant: string, start: () => Promise<T>): Promise<T> {
    const { maxOpenJobs } = tenantPolicy(this.opts.tenants, tenant);
    return maxOpenJobs === 0 ? start() : this.openJobs.admit(tenant, maxOpenJobs, start, () => true);
  }

  /** The tenant's job (as of its current run, or of `runId`), or null when it does not exist or belongs to someone else. */
  async get(tenant: string, jobId: string, runId?: string): Promise<JobResource | null> {
    const description = await this.describe(tenant, jobId, runId);
    return description && this.toResource(tenant, jobId, description);
  }

  /** Requests cancellation; the running activity learns of it through its next heartbeat. */
  async cancel(tenant: string, jobId: string): Promise<JobResource | null> {
    const job = await this.get(tenant, jobId);
    if (!job) return null;
    if (job.finishedAt !== null) throw new JobNotCancellableError(job);
    await this.temporal.workflow.getHandle(workflowIdFor(tenant, jobId)).cancel();
    return job;
  }

  private async describe(tenant: string, jobId: string, runId?: string): Promise<WorkflowExecutionDescription | null> {
    try {
      const description = await this.temporal.workflow.getHandle(workflowIdFor(tenant, jobId), runId).describe();
      // The id already scopes the job to its tenant; the search attribute is a second check.
      return description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.tenant) === tenant ? description : null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  async toResource(tenant: string, jobId: string, d: WorkflowExecutionDescription): Promise<JobResource> {
    const attrs: TypedSearchAttributes = d.typedSearchAttributes;
    const memo = d.memo as Partial<JobMemo & RetryMemo> | undefined;
    const progress = d.status.name === 'RUNNING' ? runningProgress(d) : await this.closedProgress(d);
    return {
      id: jobId,
      type: 'inference',
      tenant,
      pool: attrs.get(SEARCH_ATTRIBUTES.pool) ?? '',
      task: memo?.task ?? '',
      priority: attrs.get(SEARCH_ATTRIBUTES.priority) ?? 3,
      status: progress.status,
      attempts: progress.attempts,
      lastFailure: progress.lastFailure,
      result: progress.result,
      createdAt: d.startTime.toISOString(),
      startedAt: progress.startedAt,
      waitingFor: progress.waitingFor ?? null,
      finishedAt: d.closeTime?.toISOString() ?? null,
      run: { id: d.runId, number: memo?.runNumber ?? 1, retryOf: memo?.retryOf ?? null },
      links: jobLinks(this.opts, jobId, d.workflowId, d.runId),
    };
  }

  private async closedProgress(d: WorkflowExecutionDescription): Promise<Progress> {
    const closed = await readClosedJob(this.temporal.workflow.getHandle(d.workflowId, d.runId));
    return { ...closed, status: jobStatusOf(d.status.name, false, closed.lastFailure?.type) };
  }
}

type Progress = Pick<JobResource, 'status' | 'attempts' | 'lastFailure' | 'result' | 'startedAt'> & { waitingFor?: string | null };

/** A running job's progress from its pending activity: started by a worker, or still waiting for one. */
function runningProgress(d: WorkflowExecutionDescription): Progress {
  const pending = d.raw.pendingActivities?.[0];
  const started = pending?.state === ACTIVITY_STARTED;
  const attempt = pending?.attempt ?? 1;
  return {
    status: jobStatusOf(d.status.name, started),
    attempts: started ? attempt : attempt - 1,
    lastFailure: rootFailure(pending?.lastFailure),
    result: null,
    startedAt: started ? isoTime(pending?.lastStartedTime) : null,
    waitingFor: started ? waitingReason(pending?.heartbeatDetails?.payloads?.[0]) : null,
  };
}

/** The reason a limiter wait put in the activity's heartbeat details (see src/inference/limiter-client.ts). */
function waitingReason(details: Parameters<typeof decodePayload>[0]): string | null {
  const waiting = decodePayload<{ waiting?: unknown }>(details)?.waiting;
  return typeof waiting === 'string' ? waiting : null;
}

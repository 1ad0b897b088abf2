/**
 * Job operations mapped onto Temporal: a job is one workflow execution, and everything the API says
 * about a job is read back from Temporal (describe, history, visibility). Nothing is kept elsewhere.
 */
import {
  type Client,
  type WorkflowExecutionDescription,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import type { temporal as proto } from '@temporalio/proto';
import { tenantPolicy, type Config } from '../../config';
import { DOCUMENT_JOB_WORKFLOW, documentProgressQuery, reviewUpdate, type DocumentProgress, type ReviewRequest } from '../../documents/contract';
import { JOB_TYPES, jobStatusOf, type JobType } from '../../jobs/job';
import { jobIdForIdempotencyKey, newJobId, workflowIdFor } from '../../jobs/ids';
import { firstRun, jobLinks, type JobLinkBase, type JobResource } from '../../jobs/resource';
import { readClosedJob } from './history';
import type { RetryMemo } from './retry';
import { workflowStart, type JobMemo, type JobToStart } from './start';
import { OpenJobs, QuotaExceededError } from './open-jobs';
import { attemptsBegun, decodePayload, isoTime, isStarted, rootFailure } from '../../temporal/proto';
import { SEARCH_ATTRIBUTES } from '../../jobs/search-attributes';

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

/** A review decision the job cannot take: no review is open (not a document job, not yet at review, decided, ended). */
export class ReviewNotOpenError extends Error {
  constructor(
    readonly job: JobResource,
    reason: string,
  ) {
    super(reason);
  }
}

/** How long a review decision may wait for the workflow to take it (a workflow worker must be up). */
const REVIEW_UPDATE_TIMEOUT_MS = 10_000;
/**
 * How long the API waits for a document job's progress query. A query needs a workflow worker; with
 * none polling, the job is described from Temporal's state alone instead of holding the request.
 */
const PROGRESS_QUERY_TIMEOUT_MS = 1000;

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
    job: JobToStart,
    submission: { idempotencyKey?: string; fingerprint: string },
  ): Promise<{ job: JobResource; created: boolean }> {
    const { spec } = job;
    const key = submission.idempotencyKey;
    const jobId = key === undefined ? newJobId() : jobIdForIdempotencyKey(tenant, key);
    const policy = tenantPolicy(this.opts.tenants, tenant);
    const { memo, options, workflowType } = workflowStart({
      ...job,
      tenant,
      jobId,
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
      task: memo.task,
      priority: spec.priority,
      status: 'queued',
      attempts: 0,
      lastFailure: null,
      progress: null,
      result: null,
      createdAt: new Date().toISOString(),
      startedAt: null,
      waitingFor: null,
      finishedAt: null,
      run: firstRun(id),
      links: jobLinks(this.opts, { id: jobId, type: spec.type }, workflowId, id),
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
        const handle = await this.temporal.workflow.start(workflowType, options);
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
      await this.temporal.withDeadline(Date.now() + REVIEW_UPDATE_TIMEOUT_MS, () => handle.executeUpdate(reviewUpdate, { args: [request] }));
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new ReviewNotOpenError(job, err.cause?.message ?? err.message);
      if (err instanceof WorkflowNotFoundError) throw new ReviewNotOpenError(job, `job ${jobId} has already ended`);
      throw err;
    }
    return this.get(tenant, jobId);
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
    const type = jobTypeOf(d);
    let state: JobState;
    if (d.status.name !== 'RUNNING') state = await this.closedState(d, type);
    else state = type === 'document' ? documentState(d, await this.documentProgress(d)) : inferenceState(d);
    return {
      id: jobId,
      type,
      tenant,
      pool: attrs.get(SEARCH_ATTRIBUTES.pool) ?? '',
      task: memo?.task ?? '',
      priority: attrs.get(SEARCH_ATTRIBUTES.priority) ?? 3,
      status: state.status,
      attempts: state.attempts,
      lastFailure: state.lastFailure,
      progress: state.progress,
      result: state.result,
      createdAt: acceptedAt(d),
      startedAt: state.startedAt,
      waitingFor: state.waitingFor ?? null,
      finishedAt: d.closeTime?.toISOString() ?? null,
      run: { id: d.runId, number: memo?.runNumber ?? 1, retryOf: memo?.retryOf ?? null },
      links: jobLinks(this.opts, { id: jobId, type }, d.workflowId, d.runId),
    };
  }

  private async closedState(d: WorkflowExecutionDescription, type: JobType): Promise<JobState> {
    const closed = await readClosedJob(this.temporal.workflow.getHandle(d.workflowId, d.runId), type);
    return { ...closed, status: jobStatusOf(d.status.name, false, closed.lastFailure?.type) };
  }

  /** The pipeline's progress from its workflow, or null when no workflow worker answers in time. */
  private async documentProgress(d: WorkflowExecutionDescription): Promise<DocumentProgress | null> {
    const handle = this.temporal.workflow.getHandle(d.workflowId, d.runId);
    try {
      return await this.temporal.withDeadline(Date.now() + PROGRESS_QUERY_TIMEOUT_MS, () =>
        handle.query(documentProgressQuery),
      );
    } catch {
      return null;
    }
  }
}

type JobState = Pick<JobResource, 'status' | 'attempts' | 'lastFailure' | 'progress' | 'result' | 'startedAt'> & { waitingFor?: string | null };
type PendingActivity = proto.api.workflow.v1.IPendingActivityInfo;

function jobTypeOf(d: WorkflowExecutionDescription): JobType {
  const type = d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.type);
  if ((JOB_TYPES as readonly string[]).includes(type ?? '')) return type as JobType;
  return d.type === DOCUMENT_JOB_WORKFLOW ? 'document' : 'inference';
}

/**
 * When the job (this run of it) was accepted. A document job that continued as new is described by its
 * latest run, whose start is not the job's: the execution timeout spans all runs of the chain, so the
 * chain began that long before it expires.
 */
function acceptedAt(d: WorkflowExecutionDescription): string {
  const expiresMs = optionalTsToMs(d.raw.workflowExtendedInfo?.executionExpirationTime);
  const timeoutMs = optionalTsToMs(d.raw.executionConfig?.workflowExecutionTimeout);
  if (expiresMs === undefined || timeoutMs === undefined || timeoutMs === 0) return d.startTime.toISOString();
  return new Date(Math.min(expiresMs - timeoutMs, d.startTime.getTime())).toISOString();
}

/** A running inference job from its pending activity: started by a worker, or still waiting for one. */
function inferenceState(d: WorkflowExecutionDescription): JobState {
  const pending = d.raw.pendingActivities?.[0];
  const started = isStarted(pending);
  return {
    status: jobStatusOf(d.status.name, started),
    attempts: attemptsBegun(pending),
    lastFailure: rootFailure(pending?.lastFailure),
    progress: null,
    result: null,
    startedAt: started ? isoTime(pending?.lastStartedTime) : null,
    waitingFor: started ? waitingReason(pending?.heartbeatDetails?.payloads?.[0]) : null,
  };
}

/** Stages before any chunk is analysed: a job still in them with no step started waits for a worker. */
const FIRST_STAGES: readonly string[] = ['fetching', 'extracting'];

/**
 * A running document job: `waiting` while its review is open, `running` once its pipeline is under way,
 * `queued` before its first step has a worker. Without progress (no workflow worker answered), its
 * pending activities alone say whether it runs.
 */
function documentState(d: WorkflowExecutionDescription, progress: DocumentProgress | null): JobState {
  const pending: PendingActivity[] = d.raw.pendingActivities ?? [];
  const started = pending.filter(isStarted);
  const underWay = started.length > 0 || (progress !== null && !FIRST_STAGES.includes(progress.stage));
  const reviewOpen = progress?.stage === 'review' && progress.review?.decidedAt === null;
  const latestStart = started.map((a) => isoTime(a.lastStartedTime)).reduce<string | null>((a, b) => (b && (!a || b > a) ? b : a), null);
  return {
    status: reviewOpen ? 'waiting' : jobStatusOf(d.status.name, underWay),
    attempts: Math.max(0, ...pending.map(attemptsBegun)),
    lastFailure: rootFailure(pending.find((a) => a.lastFailure)?.lastFailure),
    progress,
    result: null,
    startedAt: latestStart,
    waitingFor: started.map((a) => waitingReason(a.heartbeatDetails?.payloads?.[0])).find((w) => w !== null) ?? null,
  };
}

/** The reason a limiter wait put in the activity's heartbeat details (see src/inference/limiter-client.ts). */
function waitingReason(details: Parameters<typeof decodePayload>[0]): string | null {
  const waiting = decodePayload<{ waiting?: unknown }>(details)?.waiting;
  return typeof waiting === 'string' ? waiting : null;
}

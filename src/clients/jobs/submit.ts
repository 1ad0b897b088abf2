/**
 * Submitting a job: its workflow is started once, whatever the repeats. With an idempotency key the
 * workflow id is derived from it, and Temporal's conflict policy makes concurrent repeats share one
 * execution; a repeat is answered with that job, or refused if it asks for something else.
 */
import { type Client, type WorkflowExecutionDescription, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { TenantPolicy } from '../../config';
import { jobIdForIdempotencyKey, newJobId } from '../../jobs/ids';
import { describeDecoded } from '../../temporal/decoded';
import { firstRun, jobLinks, type JobLinkBase, type JobResource } from '../../jobs/resource';
import { IdempotencyConflictError, JobInputTooLargeError, QuotaExceededError } from './errors';
import type { OpenJobs } from './open-jobs';
import type { JobReader } from './read';
import { workflowStart, type JobMemo, type JobToStart } from './start';

/** How jobs are started: where, with which heartbeat, and each tenant's weight and quota. */
export interface SubmitSettings extends JobLinkBase {
  taskQueuePrefix: string;
  heartbeatTimeoutMs: number;
  /** The tenant's fairness weight and quota of open jobs, from configuration. */
  tenantPolicy(tenant: string): TenantPolicy;
  /** Largest workflow input, as JSON in UTF-8: a bigger one is refused before Temporal refuses it. */
  maxInputBytes: number;
}

export interface SubmitContext {
  temporal: Client;
  reader: Pick<JobReader, 'describe' | 'toResource'>;
  openJobs: Pick<OpenJobs, 'admit'>;
  settings: SubmitSettings;
}

export interface Submission {
  idempotencyKey?: string;
  /** `requestFingerprint` of the submitted body: a repeat of the key must carry the same. */
  fingerprint: string;
}

/**
 * Starts the job's workflow, or answers a repeat of its idempotency key. A tenant at its quota of open
 * jobs gets QuotaExceededError, a job whose input is too large JobInputTooLargeError, and nothing is started.
 */
export async function submitJob(
  ctx: SubmitContext,
  tenant: string,
  job: JobToStart,
  submission: Submission,
): Promise<{ job: JobResource; created: boolean }> {
  const { settings } = ctx;
  const key = submission.idempotencyKey;
  const jobId = key === undefined ? newJobId() : jobIdForIdempotencyKey(tenant, key);
  const { memo, options, workflowType } = workflowStart({
    ...job,
    tenant,
    jobId,
    fingerprint: submission.fingerprint,
    taskQueuePrefix: settings.taskQueuePrefix,
    heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
    tenantWeight: settings.tenantPolicy(tenant).weight,
  });
  // What the payload converter will send: JSON in UTF-8, where text may have grown (a replaced invalid byte is 3).
  const inputBytes = Buffer.byteLength(JSON.stringify(options.args));
  if (inputBytes > settings.maxInputBytes) throw new JobInputTooLargeError(inputBytes, settings.maxInputBytes);
  const workflowId = options.workflowId;
  const fresh = (runId: string) => queuedJob(settings, { tenant, jobId, job, task: memo.task, workflowId, runId });
  const answerRepeat = async (description: WorkflowExecutionDescription) => {
    const existing = description.memo as Partial<JobMemo> | undefined;
    if (existing?.fingerprint !== submission.fingerprint) throw new IdempotencyConflictError(jobId);
    if (existing.submission === memo.submission) return { job: fresh(description.runId), created: true };
    return { job: await ctx.reader.toResource(tenant, jobId, description), created: false };
  };
  const start = async () => {
    let runId: string | undefined;
    try {
      const handle = await ctx.temporal.workflow.start(workflowType, options);
      runId = handle.firstExecutionRunId;
    } catch (err) {
      // A job with this idempotency key has already ended: fall through and answer with it.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || key === undefined) throw err;
    }
    if (key === undefined) return { job: fresh(runId!), created: true };
    return answerRepeat(await describeDecoded(ctx.temporal.workflow.getHandle(workflowId)));
  };

  try {
    return await ctx.openJobs.admit(tenant, start, (submitted) => submitted.created);
  } catch (err) {
    // A repeat of an accepted Idempotency-Key opens nothing, so at the quota it still gets its job.
    const accepted = err instanceof QuotaExceededError && key !== undefined ? await ctx.reader.describe(tenant, jobId) : null;
    if (!accepted) throw err;
    return answerRepeat(accepted);
  }
}

/** A job just started, as it is before any worker has picked it up. */
function queuedJob(
  links: JobLinkBase,
  j: { tenant: string; jobId: string; job: JobToStart; task: string; workflowId: string; runId: string },
): JobResource {
  const { spec } = j.job;
  return {
    id: j.jobId,
    type: spec.type,
    tenant: j.tenant,
    pool: spec.pool,
    task: j.task,
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
    run: firstRun(j.runId),
    links: jobLinks(links, { id: j.jobId, type: spec.type }, j.workflowId, j.runId),
  };
}

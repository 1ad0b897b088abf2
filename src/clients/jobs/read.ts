/**
 * Reading a job back from Temporal: everything the API says about a job comes from the workflow's
 * description, its history once it has ended, and a document job's progress query while it runs.
 */
import { type Client, type WorkflowExecutionDescription, WorkflowNotFoundError } from '@temporalio/client';
import type { TypedSearchAttributes } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import type { temporal as proto } from '@temporalio/proto';
import { DOCUMENT_JOB_WORKFLOW, documentProgressQuery, type DocumentProgress } from '../../documents/contract';
import { JOB_TYPES, jobStatusOf, type JobType } from '../../jobs/job';
import { workflowIdFor } from '../../jobs/ids';
import { jobLinks, type JobLinkBase, type JobResource } from '../../jobs/resource';
import { SEARCH_ATTRIBUTES } from '../../jobs/search-attributes';
import { describeDecoded } from '../../temporal/decoded';
import { attemptsBegun, decodePayload, isoTime, isStarted, rootFailure } from '../../temporal/proto';
import { readClosedJob } from './history';
import type { RetryMemo } from './retry';
import type { JobMemo } from './start';

const NOT_FOUND = 5; // gRPC status

function nullIfNotFound(err: unknown): null {
  if (err instanceof WorkflowNotFoundError || (err as { code?: unknown }).code === NOT_FOUND) return null;
  throw err;
}

/**
 * How long the API waits for a document job's progress query. A query needs a workflow worker; with
 * none polling, the job is described from Temporal's state alone instead of holding the request.
 */
const PROGRESS_QUERY_TIMEOUT_MS = 1000;

export class JobReader {
  constructor(
    private readonly temporal: Client,
    private readonly links: JobLinkBase,
  ) {}

  /** The tenant's job (as of its current run, or of `runId`), or null when it does not exist or belongs to someone else. */
  async get(tenant: string, jobId: string, runId?: string): Promise<JobResource | null> {
    const description = await this.describe(tenant, jobId, runId);
    // A run deleted between its description and the read of its history is gone, as it is a moment later.
    return description && this.toResource(tenant, jobId, description).catch(nullIfNotFound);
  }

  /** The workflow behind the tenant's job, or null when there is none or it belongs to someone else. */
  async describe(tenant: string, jobId: string, runId?: string): Promise<WorkflowExecutionDescription | null> {
    try {
      const description = await describeDecoded(this.temporal.workflow.getHandle(workflowIdFor(tenant, jobId), runId));
      // The id already scopes the job to its tenant; the search attribute is a second check.
      return description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.tenant) === tenant ? description : null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The job as of the described run. */
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
      links: jobLinks(this.links, { id: jobId, type }, d.workflowId, d.runId),
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
      return await this.temporal.withDeadline(Date.now() + PROGRESS_QUERY_TIMEOUT_MS, () => handle.query(documentProgressQuery));
    } catch {
      return null;
    }
  }
}

type JobState = Pick<JobResource, 'status' | 'attempts' | 'lastFailure' | 'progress' | 'result' | 'startedAt'> & {
  waitingFor?: string | null;
};
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

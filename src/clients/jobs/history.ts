/** What a finished job's history says: the result or the failure, and the attempts it took. */
import type { WorkflowHandle } from '@temporalio/client';
import type { DocumentJobOutcome } from '../../documents/contract';
import { DEADLINE_EXCEEDED, type JobType } from '../../jobs/job';
import type { InferenceOutcome } from '../../jobs/inference-contract';
import type { JobResource } from '../../jobs/resource';
import { fetchHistoryDecoded } from '../../temporal/decoded';
import { decodePayload, isoTime, rootFailure } from '../../temporal/proto';

type ClosedJobFields = Pick<JobResource, 'attempts' | 'lastFailure' | 'result' | 'startedAt' | 'progress'>;

/** Most failed chunk indexes the progress lists (as the workflow's own progress does). */
const FAILED_CHUNKS_SHOWN = 100;

/**
 * Reads the history of the job's run. A document job that continued as new is read from its last run:
 * that run's history holds how the job ended.
 */
export async function readClosedJob(handle: WorkflowHandle, type: JobType): Promise<ClosedJobFields> {
  const history = await fetchHistoryDecoded(handle);
  const fields: ClosedJobFields = { attempts: 0, lastFailure: null, result: null, startedAt: null, progress: null };
  for (const event of history.events ?? []) {
    if (event.activityTaskStartedEventAttributes) {
      const attempt = event.activityTaskStartedEventAttributes.attempt ?? fields.attempts;
      // A document job runs many activities: it shows the most any of them took.
      fields.attempts = type === 'document' ? Math.max(fields.attempts, attempt) : attempt;
      fields.startedAt = isoTime(event.eventTime);
    }
    const activityFailure = event.activityTaskFailedEventAttributes?.failure ?? event.activityTaskTimedOutEventAttributes?.failure;
    if (activityFailure) fields.lastFailure = rootFailure(activityFailure);
    if (event.workflowExecutionFailedEventAttributes) {
      fields.lastFailure = rootFailure(event.workflowExecutionFailedEventAttributes.failure) ?? fields.lastFailure;
    }
    if (event.workflowExecutionTimedOutEventAttributes) {
      fields.lastFailure = { type: DEADLINE_EXCEEDED, message: 'the job did not finish within its deadline' };
    }
    if (event.workflowExecutionTerminatedEventAttributes) {
      const reason = event.workflowExecutionTerminatedEventAttributes.reason;
      fields.lastFailure = { type: 'Terminated', message: reason || 'terminated by an operator' };
    }
    const completed = event.workflowExecutionCompletedEventAttributes;
    if (completed && type === 'inference') {
      const outcome = decodePayload<InferenceOutcome>(completed.result?.payloads?.[0]);
      if (outcome) {
        fields.result = { output: outcome.output, model: outcome.model, usage: outcome.usage ?? null };
        fields.attempts = outcome.attempt;
      }
    }
    if (completed && type === 'document') {
      const outcome = decodePayload<DocumentJobOutcome>(completed.result?.payloads?.[0]);
      if (outcome) Object.assign(fields, documentOutcomeFields(outcome));
    }
  }
  return fields;
}

/** A finished document job's result in brief, and its final progress. */
function documentOutcomeFields(outcome: DocumentJobOutcome): Pick<JobResource, 'result' | 'progress'> {
  const { chunksTotal, chunksDone, failedChunks, review, webhook } = outcome;
  return {
    result: { chunksTotal, chunksDone, failedChunks, review, webhook, size: outcome.result.size, sha256: outcome.result.sha256 },
    progress: {
      stage: 'done',
      chunksTotal,
      chunksDone,
      chunksFailed: failedChunks.length,
      failedChunks: failedChunks.slice(0, FAILED_CHUNKS_SHOWN),
      review,
    },
  };
}

/** What a finished job's history says: the result or the failure, and the attempts it took. */
import type { WorkflowHandle } from '@temporalio/client';
import { DEADLINE_EXCEEDED, type InferenceOutcome } from '../jobs/job';
import type { JobResource } from '../jobs/resource';
import { decodePayload, isoTime, rootFailure } from './proto';

type ClosedJobFields = Pick<JobResource, 'attempts' | 'lastFailure' | 'result' | 'startedAt'>;

export async function readClosedJob(handle: WorkflowHandle): Promise<ClosedJobFields> {
  const history = await handle.fetchHistory();
  const fields: ClosedJobFields = { attempts: 0, lastFailure: null, result: null, startedAt: null };
  for (const event of history.events ?? []) {
    if (event.activityTaskStartedEventAttributes) {
      fields.attempts = event.activityTaskStartedEventAttributes.attempt ?? fields.attempts;
      fields.startedAt = isoTime(event.eventTime);
    }
    const activityFailure =
      event.activityTaskFailedEventAttributes?.failure ?? event.activityTaskTimedOutEventAttributes?.failure;
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
    if (completed) {
      const outcome = decodePayload<InferenceOutcome>(completed.result?.payloads?.[0]);
      if (outcome) {
        fields.result = { output: outcome.output, model: outcome.model, usage: outcome.usage ?? null };
        fields.attempts = outcome.attempt;
      }
    }
  }
  return fields;
}

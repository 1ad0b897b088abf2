/** The signed webhook every kind of job sends: one activity beside the workflows, retried while its receiver is down. */
import { proxyActivities } from '@temporalio/workflow';
import type { PipelineActivities } from '../activities/pipeline';

/** A webhook receiver that is down is tried again with backoff for about half an hour before the delivery is given up. */
export const WEBHOOK_RETRY = { initialInterval: 5000, backoffCoefficient: 2, maximumInterval: 600_000, maximumAttempts: 8 };
const WEBHOOK_ATTEMPT_MS = 60_000;

/** The webhook activity for `url`, on `taskQueue` (the workflows' own, where the signing secrets are). */
export function webhookActivities(taskQueue: string, url: string) {
  return proxyActivities<PipelineActivities>({
    taskQueue,
    startToCloseTimeout: WEBHOOK_ATTEMPT_MS,
    // The activity says which failures are final (a refused URL, a 4xx); any other is retried.
    retry: WEBHOOK_RETRY,
    summary: `webhook to ${hostOf(url)}`,
  });
}

/** The host of a webhook URL, for the UI; the rest of a URL may carry a token. */
const hostOf = (url: string) => /^https?:\/\/(?:[^@/?#]*@)?([^/?#]+)/i.exec(url)?.[1] ?? 'webhook';

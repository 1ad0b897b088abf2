import { ApplicationFailure, CancellationScope, ContinueAsNew, isCancellation, setHandler } from '@temporalio/workflow';
import {
  DOCUMENT_FAILURES,
  documentProgressQuery,
  reviewUpdate,
  type DocumentJobInput,
  type DocumentJobOutcome,
  type ReviewRequest,
} from '../../src/documents/contract';
import { deadlineFailure, recordFailureType } from '../job-failure';
import { DocumentJob } from './job';
import { awaitReview, notify, produceResult } from './stages';

/**
 * A document job: the document is fetched (for a URL), its text extracted and split into chunks, every
 * chunk analysed on the job's pool — at most `maxParallel` at once, the next starting as soon as one
 * ends — and the chunk results rolled up into one result blob. Optionally a person reviews it before it
 * is published (a durable timer decides when no one does); publishing deletes the temporary blobs and
 * sends the signed webhook. Workflow state holds counters and references only, so the history stays
 * small; a long document continues as new between chunks, carrying the cursor.
 */
export async function documentJob(input: DocumentJobInput): Promise<DocumentJobOutcome> {
  const job = new DocumentJob(input);
  setHandler(documentProgressQuery, () => job.progress());
  setHandler(reviewUpdate, (request) => job.decideReview(request), { validator: (request: ReviewRequest) => job.validateReview(request) });

  try {
    const { result, chunks } = await job.withinDeadline(() => produceResult(job));
    if (input.review) await awaitReview(job, input.review);
    job.stage = 'publishing';
    await job.withinDeadline(() => job.activities.pipeline.deleteTemporaryData({ scope: job.scope }));
    const webhook = input.webhook ? await notify(job, input.webhook.url, result, chunks) : null;
    job.stage = 'done';
    return job.outcome(result, chunks, webhook);
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) {
      // Cancelled by a client: the chunks stop first (they heartbeat), then the job's blobs go.
      await CancellationScope.nonCancellable(() => job.removeData());
      throw err;
    }
    const failure = deadlineFailure(input.deadlineMs, err) ?? err;
    const rejected = failure instanceof ApplicationFailure && failure.type === DOCUMENT_FAILURES.reviewRejected;
    if (!rejected) await CancellationScope.nonCancellable(() => job.removeData());
    recordFailureType(failure);
    throw failure;
  }
}

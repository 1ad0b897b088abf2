/** Stage 4: every chunk analysed on the job's pool, at most `maxParallel` at once, the next starting as soon as one ends. */
import { ApplicationFailure, CancellationScope, condition, isCancellation, workflowInfo } from '@temporalio/workflow';
import { DOCUMENT_FAILURES } from '../../src/documents/contract';
import { failureMessage } from '../job-failure';
import type { DocumentJob } from './job';

/**
 * Continue as new past this many history events even if the server never suggests it (servers before
 * 1.20, the time-skipping test server); Temporal's own suggestion comes at about 4K events.
 */
const MAX_HISTORY_EVENTS = 10_000;

/** Analyses chunks from `next` on in a sliding window; stops early (returning the next index) when the run should continue as new. */
export async function analyseChunks(job: DocumentJob, chunks: number, next: number): Promise<number> {
  const { input, scope, inFlight } = job;
  const chunkScope = new CancellationScope();
  let firstFailure: { index: number; error: unknown } | undefined;
  const start = (index: number) => {
    inFlight.add(index);
    const { analyseChunk } = job.activities.pool(`chunk ${index + 1}/${chunks} on pool ${input.pool}`);
    chunkScope
      .run(() => analyseChunk({ scope, index, tasks: input.tasks, prompt: input.prompt, model: input.model }))
      .then(
        () => void job.chunksDone++,
        (error: unknown) => {
          if (isCancellation(error)) return; // stopped by this workflow: a failure elsewhere, the deadline, or the client
          job.chunkFailed(index);
          if (input.failurePolicy === 'failFast' && !firstFailure) {
            firstFailure = { index, error };
            chunkScope.cancel();
          }
        },
      )
      .finally(() => inFlight.delete(index));
  };
  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS;
  while (next < chunks && !firstFailure && !historyIsLong()) {
    await condition(() => inFlight.size < input.maxParallel || firstFailure !== undefined);
    if (!firstFailure) start(next++);
  }
  await condition(() => inFlight.size === 0);
  if (firstFailure) {
    throw ApplicationFailure.create({
      type: DOCUMENT_FAILURES.chunkFailed,
      message: `chunk ${firstFailure.index} of ${chunks} failed: ${failureMessage(firstFailure.error)}`,
      nonRetryable: true,
      cause: firstFailure.error instanceof Error ? firstFailure.error : undefined,
    });
  }
  if (next >= chunks && job.chunksDone === 0) {
    throw ApplicationFailure.nonRetryable(`every one of the ${chunks} chunks failed`, DOCUMENT_FAILURES.chunkFailed);
  }
  return next;
}

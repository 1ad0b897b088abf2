import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { InferenceActivities } from '../activities';
import type { PipelineActivities } from '../activities/pipeline';
import type { BlobRef } from '../src/blobs/store';
import { jobScope } from '../src/blobs/store';
import {
  DOCUMENT_FAILURES,
  documentProgressQuery,
  REVIEW_DECISIONS,
  REVIEW_NOT_OPEN,
  reviewUpdate,
  type DocumentCursor,
  type DocumentJobInput,
  type DocumentJobOutcome,
  type DocumentProgress,
  type DocumentType,
  type PipelineStage,
  type ReviewRequest,
  type ReviewState,
} from '../src/documents/contract';
import { NON_RETRYABLE_ERRORS } from '../src/jobs/job';
import { deadlineFailure, failureMessage, recordFailureType } from './job-failure';


/** Failed chunk indexes kept in the workflow's state (and the outcome); further failures are only counted. */
const FAILED_INDEXES_KEPT = 1000;
/** The progress query shows this many failed indexes. */
const FAILED_INDEXES_SHOWN = 100;
/**
 * Continue as new past this many history events even if the server never suggests it (servers before
 * 1.20, the time-skipping test server); Temporal's own suggestion comes at about 4K events.
 */
const MAX_HISTORY_EVENTS = 10_000;
/** Pipeline steps (extraction, splitting, aggregation) read and write whole documents: minutes, not the inference attempt's seconds. */
const PIPELINE_ATTEMPT_MS = 10 * 60_000;
const PIPELINE_HEARTBEAT_MS = 60_000;
/** Cleanup retries on its own: it must not give up while the blob store is briefly away. */
const CLEANUP_RETRY = { initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 60_000, maximumAttempts: 10 };
/** A webhook receiver that is down is tried again with backoff for about half an hour before the delivery is given up. */
const WEBHOOK_RETRY = { initialInterval: 5000, backoffCoefficient: 2, maximumInterval: 600_000, maximumAttempts: 8 };
const WEBHOOK_ATTEMPT_MS = 60_000;
/** Failures no retry can change; the activities mark others final case by case (a 4xx from a URL). */
const NON_RETRYABLE = [
  ...NON_RETRYABLE_ERRORS,
  DOCUMENT_FAILURES.urlRefused,
  DOCUMENT_FAILURES.unsupportedDocument,
  DOCUMENT_FAILURES.emptyDocument,
  DOCUMENT_FAILURES.documentTooLarge,
];

/**
 * A document job: the document is fetched (for a URL), its text extracted and split into chunks, every
 * chunk analysed on the job's pool — at most `maxParallel` at once, the next starting as soon as one
 * ends — and the chunk results rolled up into one result blob. Optionally a person reviews it before it
 * is published (a durable timer decides when no one does); publishing deletes the temporary blobs and
 * sends the signed webhook. Workflow state holds counters and references only, so the history stays
 * small; a long document continues as new between chunks, carrying the cursor.
 */
export async function documentJob(input: DocumentJobInput): Promise<DocumentJobOutcome> {
  const scope = jobScope(input.tenant, input.jobId);
  const cursor = input.cursor;
  const acceptedAtMs = cursor?.acceptedAtMs ?? workflowInfo().startTime.getTime();
  let reviewWaitMs = cursor?.reviewWaitMs ?? 0;
  let stage: PipelineStage = cursor ? 'analysing' : 'url' in input.source ? 'fetching' : 'extracting';
  let chunksTotal: number | null = cursor?.split.chunks ?? null;
  let chunksDone = cursor?.chunksDone ?? 0;
  // Every chunk below the cursor ended, analysed or failed.
  let chunksFailed = cursor ? cursor.nextChunk - cursor.chunksDone : 0;
  const failedChunks: number[] = cursor?.failedChunks.slice(0, FAILED_INDEXES_KEPT) ?? [];
  let review: ReviewState | null = null;
  const reviewed = () => review?.decidedAt != null;
  /** Chunk activities running now, by index. */
  const inFlight = new Set<number>();

  setHandler(documentProgressQuery, () => ({
    stage,
    chunksTotal,
    chunksDone,
    chunksFailed,
    failedChunks: failedChunks.slice(0, FAILED_INDEXES_SHOWN),
    review,
  }));
  setHandler(
    reviewUpdate,
    ({ decision, reviewer, comment }) => {
      review = { dueAt: null, decision, reviewer, comment: comment ?? null, decidedAt: new Date().toISOString() };
      return review;
    },
    {
      validator: ({ decision, reviewer }) => {
        if (!REVIEW_DECISIONS.includes(decision) || !reviewer) {
          throw ApplicationFailure.nonRetryable('a review takes a decision (approve or reject) and a reviewer', 'InvalidInput');
        }
        if (stage !== 'review') {
          throw ApplicationFailure.nonRetryable(`job ${input.jobId} is not waiting for a review (stage: ${stage})`, REVIEW_NOT_OPEN);
        }
        if (reviewed()) throw ApplicationFailure.nonRetryable(`job ${input.jobId} was already reviewed (${review?.decision ?? 'timed out'})`, REVIEW_NOT_OPEN);
      },
    },
  );

  const retry = {
    maximumAttempts: input.retry.maxAttempts,
    initialInterval: input.retry.initialIntervalMs,
    backoffCoefficient: input.retry.backoffCoefficient,
    maximumInterval: input.retry.maxIntervalMs,
    nonRetryableErrorTypes: NON_RETRYABLE,
  };
  const pipeline = proxyActivities<PipelineActivities>({
    taskQueue: input.pipelineTaskQueue,
    startToCloseTimeout: PIPELINE_ATTEMPT_MS,
    heartbeatTimeout: PIPELINE_HEARTBEAT_MS,
    retry,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  const cleanup = proxyActivities<PipelineActivities>({ taskQueue: input.pipelineTaskQueue, startToCloseTimeout: 60_000, retry: CLEANUP_RETRY });
  const pool = (summary: string) =>
    proxyActivities<InferenceActivities>({
      taskQueue: input.poolTaskQueue,
      // Each task of a chunk is one provider call, each given the job's attempt timeout.
      startToCloseTimeout: input.attemptTimeoutMs * input.tasks.length,
      heartbeatTimeout: input.heartbeatTimeoutMs,
      retry,
      summary,
      // Unset means TRY_CANCEL, whatever the docs say: the cleanup must wait until the chunks have stopped.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });

  /** Runs pipeline work inside what is left of the deadline; the time spent waiting for a review does not count. */
  const withinDeadline = <T>(work: () => Promise<T>): Promise<T> => {
    const remainingMs = input.deadlineMs - (Date.now() - acceptedAtMs - reviewWaitMs);
    return CancellationScope.withTimeout(Math.max(0, remainingMs), work);
  };

  /** Analyses chunks from `next` on in a sliding window; stops early (returning the next index) when the run should continue as new. */
  async function analyse(chunks: number, next: number): Promise<number> {
    const chunkScope = new CancellationScope();
    let firstFailure: { index: number; error: unknown } | undefined;
    const start = (index: number) => {
      inFlight.add(index);
      const { analyseChunk } = pool(`chunk ${index + 1}/${chunks} on pool ${input.pool}`);
      chunkScope
        .run(() => analyseChunk({ scope, index, tasks: input.tasks, prompt: input.prompt, model: input.model }))
        .then(
          () => void chunksDone++,
          (error: unknown) => {
            if (isCancellation(error)) return; // stopped by this workflow: a failure elsewhere, the deadline, or the client
            chunksFailed++;
            if (failedChunks.length < FAILED_INDEXES_KEPT) failedChunks.push(index);
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
    if (next >= chunks && chunksDone === 0) {
      throw ApplicationFailure.nonRetryable(`every one of the ${chunks} chunks failed`, DOCUMENT_FAILURES.chunkFailed);
    }
    return next;
  }

  /** Stages 1–5: from the source to the result blob; continues as new (never returns) when the history grows long. */
  async function produceResult(): Promise<{ result: BlobRef; chunks: number }> {
    let split: DocumentCursor['split'];
    if (cursor) {
      split = cursor.split;
    } else {
      let source: { blob: BlobRef; type: DocumentType };
      if ('url' in input.source) {
        stage = 'fetching';
        source = await pipeline.fetchDocument({ url: input.source.url, scope });
      } else {
        source = { blob: input.source.document.blob, type: input.source.document.type };
      }
      stage = 'extracting';
      const { text } = await pipeline.extractText({ source: source.blob, type: source.type, scope });
      stage = 'splitting';
      split = await pipeline.splitText({ text, chunkChars: input.chunkChars, scope });
      chunksTotal = split.chunks;
    }
    stage = 'analysing';
    const next = await analyse(split.chunks, cursor?.nextChunk ?? 0);
    if (next < split.chunks) {
      const carried: DocumentCursor = { split, nextChunk: next, chunksDone, failedChunks, acceptedAtMs, reviewWaitMs };
      await continueAsNew<typeof documentJob>({ ...input, cursor: carried });
    }
    stage = 'aggregating';
    let summary: BlobRef | undefined;
    const summaries = input.tasks.includes('summarize') ? await pipeline.collectSummaries({ scope, chunks: split.chunks, failedChunks }) : null;
    if (summaries) {
      const { summarizeText } = pool(`document summary from ${split.chunks} chunk summaries on pool ${input.pool}`);
      ({ summary } = await summarizeText({ scope, source: summaries, model: input.model }));
    }
    const { result } = await pipeline.aggregateDocument({ scope, chunks: split.chunks, tasks: input.tasks, prompt: input.prompt, failedChunks, summary });
    return { result, chunks: split.chunks };
  }

  /** Stage 6: waits for a person's decision, or the timer's; returns when the result is to be published. */
  async function awaitReview(settings: NonNullable<DocumentJobInput['review']>): Promise<void> {
    const started = Date.now();
    review = { dueAt: new Date(started + settings.timeoutMs).toISOString(), decision: null, reviewer: null, comment: null, decidedAt: null };
    stage = 'review';
    const decidedInTime = await condition(reviewed, settings.timeoutMs);
    reviewWaitMs += Date.now() - started;
    if (!decidedInTime) {
      const decision = settings.onTimeout === 'fail' ? null : settings.onTimeout;
      review = { dueAt: null, decision, reviewer: 'timeout', comment: null, decidedAt: new Date().toISOString() };
      if (settings.onTimeout === 'fail') {
        throw ApplicationFailure.nonRetryable(`no review decision within ${settings.timeoutMs} ms`, DOCUMENT_FAILURES.reviewTimedOut);
      }
    }
    if (review.decision === 'reject') {
      await pipeline.deleteTemporaryData({ scope }); // the result stays, for the reviewer's reference
      const by = review.reviewer === 'timeout' ? 'the review timed out and its onTimeout rejects' : `${review.reviewer} rejected the result`;
      throw ApplicationFailure.nonRetryable(`${by}${review.comment ? `: ${review.comment}` : ''}`, DOCUMENT_FAILURES.reviewRejected);
    }
  }

  /** Stage 7's webhook: its failure is reported in the outcome, not the job's. */
  async function notify(url: string, result: BlobRef, chunks: number): Promise<DocumentJobOutcome['webhook']> {
    const { deliverWebhook } = proxyActivities<PipelineActivities>({
      taskQueue: input.pipelineTaskQueue,
      startToCloseTimeout: WEBHOOK_ATTEMPT_MS,
      // The activity says which failures are final (a refused URL, a 4xx); any other is retried.
      retry: WEBHOOK_RETRY,
      summary: `webhook to ${hostOf(url)}`,
    });
    const event = {
      type: 'document.completed',
      jobId: input.jobId,
      tenant: input.tenant,
      result: { sha256: result.sha256, size: result.size },
      chunks: { total: chunks, done: chunksDone, failed: chunksFailed, failedIndexes: failedChunks },
      review,
    };
    try {
      return { url, ...(await deliverWebhook({ url, tenant: input.tenant, id: `${input.jobId}.document.completed`, event })) };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const details = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause.details?.[0] : undefined;
      const { status, attempt } = (details ?? {}) as { status?: number; attempt?: number };
      return { url, status: status ?? 0, attempts: attempt ?? WEBHOOK_RETRY.maximumAttempts };
    }
  }

  try {
    const { result, chunks } = await withinDeadline(produceResult);
    if (input.review) await awaitReview(input.review);
    stage = 'publishing';
    await withinDeadline(() => pipeline.deleteTemporaryData({ scope }));
    const webhook = input.webhook ? await notify(input.webhook.url, result, chunks) : null;
    stage = 'done';
    return { result, chunksTotal: chunks, chunksDone, failedChunks, review, webhook };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) {
      // Cancelled by a client: the chunks stop first (they heartbeat), then the job's blobs go.
      await CancellationScope.nonCancellable(() => removeJobData());
      throw err;
    }
    const failure = deadlineFailure(input.deadlineMs, err) ?? err;
    const rejected = failure instanceof ApplicationFailure && failure.type === DOCUMENT_FAILURES.reviewRejected;
    if (!rejected) await CancellationScope.nonCancellable(() => removeJobData());
    recordFailureType(failure);
    throw failure;
  }

  /** Deletes everything the job stored once no chunk activity can write any more; a failed cleanup does not change how the job ends. */
  async function removeJobData(): Promise<void> {
    await condition(() => inFlight.size === 0);
    await cleanup.deleteJobData({ scope }).catch(() => undefined);
  }
}

/** The host of a webhook URL, for the UI; the rest of a URL may carry a token. */
const hostOf = (url: string) => /^https?:\/\/(?:[^@/?#]*@)?([^/?#]+)/i.exec(url)?.[1] ?? 'webhook';

/** The stages of a document job around the chunk analysis: from the source to the result blob, the review, and the webhook. */
import { ActivityFailure, ApplicationFailure, condition, continueAsNew, isCancellation } from '@temporalio/workflow';
import type { BlobRef } from '../../src/blobs/store';
import {
  DOCUMENT_FAILURES,
  type DocumentCursor,
  type DocumentJobInput,
  type DocumentJobOutcome,
  type DocumentJobWorkflow,
  type DocumentType,
} from '../../src/documents/contract';
import { WEBHOOK_RETRY } from '../webhook';
import { analyseChunks } from './chunks';
import type { DocumentJob } from './job';

/** Stages 1–5: from the source to the result blob; continues as new (never returns) when the history grows long. */
export async function produceResult(job: DocumentJob): Promise<{ result: BlobRef; chunks: number }> {
  const { input, scope } = job;
  const { pipeline, pool } = job.activities;
  const split = input.cursor?.split ?? (await splitSource(job));
  job.stage = 'analysing';
  const next = await analyseChunks(job, split.chunks, input.cursor?.nextChunk ?? 0);
  if (next < split.chunks) await continueAsNew<DocumentJobWorkflow>({ ...input, cursor: job.cursor(split, next) });
  job.stage = 'aggregating';
  const { failedChunks } = job;
  let summary: BlobRef | undefined;
  const summaries = input.tasks.includes('summarize')
    ? await pipeline.collectSummaries({ scope, chunks: split.chunks, failedChunks })
    : null;
  if (summaries) {
    const { summarizeText } = pool(`document summary from ${split.chunks} chunk summaries on pool ${input.pool}`);
    ({ summary } = await summarizeText({ scope, source: summaries, model: input.model }));
  }
  const { result } = await pipeline.aggregateDocument({
    scope,
    chunks: split.chunks,
    tasks: input.tasks,
    prompt: input.prompt,
    failedChunks,
    summary,
  });
  return { result, chunks: split.chunks };
}

/** Stages 1–3: the document fetched (for a URL), its text extracted and split into chunks. */
async function splitSource(job: DocumentJob): Promise<DocumentCursor['split']> {
  const { input, scope } = job;
  const { pipeline } = job.activities;
  let source: { blob: BlobRef; type: DocumentType };
  if ('url' in input.source) {
    job.stage = 'fetching';
    source = await pipeline.fetchDocument({ url: input.source.url, scope });
  } else {
    source = { blob: input.source.document.blob, type: input.source.document.type };
  }
  job.stage = 'extracting';
  const { text } = await pipeline.extractText({ source: source.blob, type: source.type, scope });
  job.stage = 'splitting';
  const split = await pipeline.splitText({ text, chunkChars: input.chunkChars, scope });
  job.chunksTotal = split.chunks;
  return split;
}

/** Stage 6: waits for a person's decision, or the timer's; returns when the result is to be published. */
export async function awaitReview(job: DocumentJob, settings: NonNullable<DocumentJobInput['review']>): Promise<void> {
  const started = Date.now();
  job.review = {
    dueAt: new Date(started + settings.timeoutMs).toISOString(),
    decision: null,
    reviewer: null,
    comment: null,
    decidedAt: null,
  };
  job.stage = 'review';
  const decidedInTime = await condition(() => job.reviewed(), settings.timeoutMs);
  job.reviewWaitMs += Date.now() - started;
  if (!decidedInTime) {
    const decision = settings.onTimeout === 'fail' ? null : settings.onTimeout;
    job.review = { dueAt: null, decision, reviewer: 'timeout', comment: null, decidedAt: new Date().toISOString() };
    if (settings.onTimeout === 'fail') {
      throw ApplicationFailure.nonRetryable(`no review decision within ${settings.timeoutMs} ms`, DOCUMENT_FAILURES.reviewTimedOut);
    }
  }
  const review = job.review;
  if (review.decision === 'reject') {
    await job.activities.pipeline.deleteTemporaryData({ scope: job.scope }); // the result stays, for the reviewer's reference
    const by = review.reviewer === 'timeout' ? 'the review timed out and its onTimeout rejects' : `${review.reviewer} rejected the result`;
    throw ApplicationFailure.nonRetryable(`${by}${review.comment ? `: ${review.comment}` : ''}`, DOCUMENT_FAILURES.reviewRejected);
  }
}

/** Stage 7's webhook: its failure is reported in the outcome, not the job's. */
export async function notify(job: DocumentJob, url: string, result: BlobRef, chunks: number): Promise<DocumentJobOutcome['webhook']> {
  const { input } = job;
  const { deliverWebhook } = job.activities.webhook(url);
  const event = {
    type: 'document.completed',
    jobId: input.jobId,
    tenant: input.tenant,
    result: { sha256: result.sha256, size: result.size },
    chunks: { total: chunks, done: job.chunksDone, failed: job.chunksFailed, failedIndexes: job.failedChunks },
    review: job.review,
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

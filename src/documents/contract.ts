/**
 * The document job as both sides see it: the pipeline workflow's input, its progress, the review it may
 * wait for, and what it ends with. Pure code: workflows import it too.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { BlobRef } from '../blobs/store';
import type { InferenceTask } from '../inference/provider';

export const DOCUMENT_TYPES = ['text', 'markdown', 'html', 'pdf'] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];

/** What is done with every chunk; `prompt` sends the chunk to the pool's chat model with the job's prompt. */
export const DOCUMENT_TASKS = ['summarize', 'entities', 'keywords', 'sentiment', 'embed', 'prompt'] as const;
export type DocumentTask = (typeof DOCUMENT_TASKS)[number];

/** The inference task each document task runs. */
export const INFERENCE_TASK_OF: Record<DocumentTask, InferenceTask> = {
  summarize: 'summarize',
  entities: 'entities',
  keywords: 'keywords',
  sentiment: 'sentiment',
  embed: 'embed',
  prompt: 'chat',
};

export const REVIEW_DECISIONS = ['approve', 'reject'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];
export const REVIEW_TIMEOUT_ACTIONS = ['approve', 'reject', 'fail'] as const;

export const PIPELINE_STAGES = ['fetching', 'extracting', 'splitting', 'analysing', 'aggregating', 'review', 'publishing', 'done'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/** Where the document comes from: an upload (a blob of the tenant's documents), or a URL fetched through the SSRF guard. */
export type DocumentSource = { document: { id: string; blob: BlobRef; type: DocumentType } } | { url: string };

/** The pipeline workflow's argument: everything resolved, nothing left for the workflow to look up. */
export interface DocumentJobInput {
  jobId: string;
  tenant: string;
  pool: string;
  /** The pool's task queue: chunk analysis runs there. */
  poolTaskQueue: string;
  /** The workflows task queue: extraction, splitting, aggregation, publishing and cleanup run there. */
  pipelineTaskQueue: string;
  source: DocumentSource;
  /** Target chunk size in characters; chunks end at sentence boundaries near it. */
  chunkChars: number;
  tasks: DocumentTask[];
  /** The instruction for the `prompt` task. */
  prompt?: string;
  model?: string;
  maxParallel: number;
  failurePolicy: 'failFast' | 'continue';
  review?: { timeoutMs: number; onTimeout: (typeof REVIEW_TIMEOUT_ACTIONS)[number] };
  webhook?: { url: string };
  retry: { maxAttempts: number; initialIntervalMs: number; backoffCoefficient: number; maxIntervalMs: number };
  attemptTimeoutMs: number;
  heartbeatTimeoutMs: number;
  /** Limit for the pipeline's own work from acceptance; time spent waiting for a review is not counted. */
  deadlineMs: number;
  /** Set by continue-as-new: where the previous run left off. */
  cursor?: DocumentCursor;
}

/** What a run hands the next one when it continues as new. */
export interface DocumentCursor {
  /** Text, chunk count and the blob holding the chunk manifest, as splitting produced them. */
  split: { chunks: number; manifest: BlobRef };
  /** Chunks below this index have been analysed (or failed) and counted. */
  nextChunk: number;
  chunksDone: number;
  failedChunks: number[];
  /** Wall-clock time, in ms since the epoch, the job was accepted (the first run's start). */
  acceptedAtMs: number;
  /** Review wait already spent, in ms, that the deadline does not count. */
  reviewWaitMs: number;
}

/** Returned by the progress query; GET /v1/jobs/:id shows it. */
export interface DocumentProgress {
  stage: PipelineStage;
  chunksTotal: number | null;
  chunksDone: number;
  chunksFailed: number;
  /** Indexes of failed chunks, at most the first 100. */
  failedChunks: number[];
  review: ReviewState | null;
}

export interface ReviewState {
  /** When the review timer fires, as an ISO time; null once decided. */
  dueAt: string | null;
  decision: ReviewDecision | null;
  /** Who decided: the reviewer named in the request, or `timeout`. */
  reviewer: string | null;
  comment: string | null;
  decidedAt: string | null;
}

/** The argument of the `review` update. */
export interface ReviewRequest {
  decision: ReviewDecision;
  reviewer: string;
  comment?: string;
}

/** What the workflow returns; the full result is the blob it names (GET /v1/jobs/:id/result). */
export interface DocumentJobOutcome {
  result: BlobRef;
  chunksTotal: number;
  chunksDone: number;
  failedChunks: number[];
  review: ReviewState | null;
  webhook: { url: string; status: number; attempts: number } | null;
}

/** The workflow type: `workflows/document-job/` exports a function of this name and shape. */
export const DOCUMENT_JOB_WORKFLOW = 'documentJob';
export type DocumentJobWorkflow = (input: DocumentJobInput) => Promise<DocumentJobOutcome>;

export const documentProgressQuery = defineQuery<DocumentProgress>('documentProgress');
/** A reviewer's decision; its validator refuses it (REVIEW_NOT_OPEN) unless the job waits for a review. */
export const reviewUpdate = defineUpdate<ReviewState, [ReviewRequest]>('review');
/** The type of the error a `review` update is refused with when the job is not waiting for one, or was already reviewed. */
export const REVIEW_NOT_OPEN = 'ReviewNotOpen';

/** Failure types a document job can end with (the job's lastFailure.type, and GET /v1/jobs?errorType=). */
export const DOCUMENT_FAILURES = {
  chunkFailed: 'ChunkFailed',
  reviewRejected: 'ReviewRejected',
  reviewTimedOut: 'ReviewTimedOut',
  urlRefused: 'UrlRefused',
  /** The URL answered with an error status or could not be reached (retried first unless the status is a 4xx). */
  fetchFailed: 'DocumentFetchFailed',
  documentTooLarge: 'DocumentTooLarge',
  unsupportedDocument: 'UnsupportedDocument',
  emptyDocument: 'EmptyDocument',
  webhookFailed: 'WebhookFailed',
} as const;

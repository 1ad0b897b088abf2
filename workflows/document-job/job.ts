/** A document job's state: its stage, chunk counters, review and deadline, and the answers to its query and update. */
import { ApplicationFailure, CancellationScope, condition, workflowInfo } from '@temporalio/workflow';
import type { BlobRef } from '../../src/blobs/store';
import { jobScope } from '../../src/blobs/store';
import {
  REVIEW_DECISIONS,
  REVIEW_NOT_OPEN,
  type DocumentCursor,
  type DocumentJobInput,
  type DocumentJobOutcome,
  type DocumentProgress,
  type PipelineStage,
  type ReviewRequest,
  type ReviewState,
} from '../../src/documents/contract';
import { documentActivities, type DocumentActivities } from './proxies';

/** Failed chunk indexes kept in the workflow's state (and the outcome); further failures are only counted. */
const FAILED_INDEXES_KEPT = 1000;
/** The progress query shows this many failed indexes. */
const FAILED_INDEXES_SHOWN = 100;

export class DocumentJob {
  /** Where the job's blobs live. */
  readonly scope: string;
  readonly activities: DocumentActivities;
  readonly acceptedAtMs: number;
  /** Time spent waiting for a review: the deadline does not count it. */
  reviewWaitMs: number;
  stage: PipelineStage;
  chunksTotal: number | null;
  chunksDone: number;
  chunksFailed: number;
  readonly failedChunks: number[];
  review: ReviewState | null = null;
  /** Chunk activities running now, by index. */
  readonly inFlight = new Set<number>();

  constructor(readonly input: DocumentJobInput) {
    const cursor = input.cursor;
    this.scope = jobScope(input.tenant, input.jobId);
    this.activities = documentActivities(input);
    this.acceptedAtMs = cursor?.acceptedAtMs ?? workflowInfo().startTime.getTime();
    this.reviewWaitMs = cursor?.reviewWaitMs ?? 0;
    this.stage = cursor ? 'analysing' : 'url' in input.source ? 'fetching' : 'extracting';
    this.chunksTotal = cursor?.split.chunks ?? null;
    this.chunksDone = cursor?.chunksDone ?? 0;
    // Every chunk below the cursor ended, analysed or failed.
    this.chunksFailed = cursor ? cursor.nextChunk - cursor.chunksDone : 0;
    this.failedChunks = cursor?.failedChunks.slice(0, FAILED_INDEXES_KEPT) ?? [];
  }

  progress(): DocumentProgress {
    return {
      stage: this.stage,
      chunksTotal: this.chunksTotal,
      chunksDone: this.chunksDone,
      chunksFailed: this.chunksFailed,
      failedChunks: this.failedChunks.slice(0, FAILED_INDEXES_SHOWN),
      review: this.review,
    };
  }

  /** The review update: a person's decision. */
  decideReview({ decision, reviewer, comment }: ReviewRequest): ReviewState {
    this.review = { dueAt: null, decision, reviewer, comment: comment ?? null, decidedAt: new Date().toISOString() };
    return this.review;
  }

  /** A review is taken only while the job waits for one, and only once. */
  validateReview({ decision, reviewer }: ReviewRequest): void {
    if (!REVIEW_DECISIONS.includes(decision) || !reviewer) {
      throw ApplicationFailure.nonRetryable('a review takes a decision (approve or reject) and a reviewer', 'InvalidInput');
    }
    if (this.stage !== 'review') {
      throw ApplicationFailure.nonRetryable(`job ${this.input.jobId} is not waiting for a review (stage: ${this.stage})`, REVIEW_NOT_OPEN);
    }
    if (this.reviewed())
      throw ApplicationFailure.nonRetryable(
        `job ${this.input.jobId} was already reviewed (${this.review?.decision ?? 'timed out'})`,
        REVIEW_NOT_OPEN,
      );
  }

  reviewed(): boolean {
    return this.review?.decidedAt != null;
  }

  chunkFailed(index: number): void {
    this.chunksFailed++;
    if (this.failedChunks.length < FAILED_INDEXES_KEPT) this.failedChunks.push(index);
  }

  /** Runs pipeline work inside what is left of the deadline; the time spent waiting for a review does not count. */
  withinDeadline<T>(work: () => Promise<T>): Promise<T> {
    const remainingMs = this.input.deadlineMs - (Date.now() - this.acceptedAtMs - this.reviewWaitMs);
    return CancellationScope.withTimeout(Math.max(0, remainingMs), work);
  }

  /** Where the next run picks up the analysis. */
  cursor(split: DocumentCursor['split'], nextChunk: number): DocumentCursor {
    const { chunksDone, failedChunks, acceptedAtMs, reviewWaitMs } = this;
    return { split, nextChunk, chunksDone, failedChunks, acceptedAtMs, reviewWaitMs };
  }

  outcome(result: BlobRef, chunks: number, webhook: DocumentJobOutcome['webhook']): DocumentJobOutcome {
    return { result, chunksTotal: chunks, chunksDone: this.chunksDone, failedChunks: this.failedChunks, review: this.review, webhook };
  }

  /** Deletes everything the job stored once no chunk activity can write any more; a failed cleanup does not change how the job ends. */
  async removeData(): Promise<void> {
    await condition(() => this.inFlight.size === 0);
    await this.activities.cleanup.deleteJobData({ scope: this.scope }).catch(() => undefined);
  }
}

/** What the JobClient refuses, and why: each a SwitchyardError with its own code. */
import { SwitchyardError } from '../../errors';
import type { JobResource } from '../../jobs/resource';

export class IdempotencyConflictError extends SwitchyardError {
  override readonly name = 'IdempotencyConflictError';
  readonly code = 'idempotency-conflict';
  constructor(readonly jobId: string) {
    super(`Idempotency-Key was already used for job ${jobId} with a different request body`);
  }
}

/** The tenant has as many open (queued or running) jobs as its quota allows; nothing was started. */
export class QuotaExceededError extends SwitchyardError {
  override readonly name = 'QuotaExceededError';
  readonly code = 'quota-exceeded';
  constructor(
    readonly tenant: string,
    readonly openJobs: number,
    readonly maxOpenJobs: number,
  ) {
    super(
      `tenant ${tenant} has ${openJobs} open (queued or running) jobs and may have at most ${maxOpenJobs}; ` +
        'submit again once some have finished',
    );
  }
}

/** The job's workflow input is over the configured size: Temporal would refuse it, so nothing was started. */
export class JobInputTooLargeError extends SwitchyardError {
  override readonly name = 'JobInputTooLargeError';
  readonly code = 'job-input-too-large';
  constructor(
    readonly inputBytes: number,
    readonly maxInputBytes: number,
  ) {
    super(
      `the job's input is ${inputBytes} bytes as the workflow gets it (JSON, UTF-8: an invalid UTF-8 byte counts as the 3 of its replacement character); ` +
        `the limit is ${maxInputBytes} (SWITCHYARD_MAX_JOB_INPUT_BYTES)`,
    );
  }
}

/** A listing cursor this API did not issue for the query (or the server cannot decode). */
export class InvalidCursorError extends SwitchyardError {
  override readonly name = 'InvalidCursorError';
  readonly code = 'invalid-cursor';
  constructor() {
    super('the cursor is not one this API issued for this query');
  }
}

export class JobNotCancellableError extends SwitchyardError {
  override readonly name = 'JobNotCancellableError';
  readonly code = 'job-not-cancellable';
  constructor(readonly job: JobResource) {
    super(`job ${job.id} has already ended (${job.status})`);
  }
}

export class JobNotRetryableError extends SwitchyardError {
  override readonly name = 'JobNotRetryableError';
  readonly code = 'job-not-retryable';
  constructor(readonly job: JobResource) {
    super(`job ${job.id} is ${job.status}; only a failed, timed-out or cancelled job can be retried`);
  }
}

export class JobNotDeletableError extends SwitchyardError {
  override readonly name = 'JobNotDeletableError';
  readonly code = 'job-not-deletable';
  constructor(readonly job: JobResource) {
    super(`job ${job.id} is ${job.status}; cancel it and delete it once it has ended`);
  }
}

/** A review decision the job cannot take: no review is open (not a document job, not yet at review, decided, ended). */
export class ReviewNotOpenError extends SwitchyardError {
  override readonly name = 'ReviewNotOpenError';
  readonly code = 'review-not-open';
  constructor(
    readonly job: JobResource,
    reason: string,
  ) {
    super(reason);
  }
}

/** The workflow did not take a review decision in time: no workflow worker answered. Sending it again is safe. */
export class ReviewNotTakenError extends SwitchyardError {
  override readonly name = 'ReviewNotTakenError';
  readonly code = 'review-not-taken';
  constructor(options: ErrorOptions) {
    super('The job did not take the decision in time (is a workflow worker running?); send it again', options);
  }
}

/** The job has no result (yet): it is still working, failed, or its result is gone. */
export class ResultNotReadyError extends SwitchyardError {
  override readonly name = 'ResultNotReadyError';
  readonly code = 'result-not-ready';
  constructor(readonly job: JobResource) {
    super(`job ${job.id} is ${job.status}${job.progress ? ` (${job.progress.stage})` : ''} and has no result yet`);
  }
}

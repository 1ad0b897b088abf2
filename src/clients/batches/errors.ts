/** What the BatchClient refuses, and why: each a SwitchyardError with its own code. */
import { SwitchyardError } from '../../errors';
import type { BatchResource } from './resource';

export class BatchConflictError extends SwitchyardError {
  override readonly name = 'BatchConflictError';
  readonly code = 'batch-conflict';
  constructor(readonly batchId: string) {
    super(`Idempotency-Key was already used for batch ${batchId} with a different file or settings`);
  }
}

export class BatchNotCancellableError extends SwitchyardError {
  override readonly name = 'BatchNotCancellableError';
  readonly code = 'batch-not-cancellable';
  constructor(readonly batch: BatchResource) {
    super(`batch ${batch.id} has already ended (${batch.status})`);
  }
}

/** Output and errors are files of a batch that has ended, as OpenAI's are. */
export class BatchNotEndedError extends SwitchyardError {
  override readonly name = 'BatchNotEndedError';
  readonly code = 'batch-not-ended';
  constructor(readonly batch: BatchResource) {
    super(
      `batch ${batch.id} is ${batch.status} (${batch.requestCounts.completed + batch.requestCounts.failed} of ${batch.requestCounts.total} done); ` +
        'its output and errors are read once it has ended',
    );
  }
}

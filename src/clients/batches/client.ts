/**
 * Batch operations mapped onto Temporal and the blob store: a batch is one workflow execution (continued
 * as new as it goes) over group files in the batch's scope. What the API says about a batch is read back
 * from the workflow (memo, heartbeats, close event); its output and errors are read from the scope.
 */
import type { Client } from '@temporalio/client';
import { batchScope, batchWorkflowId } from '../../batches/contract';
import { batchResultLines } from '../../batches/output';
import type { BlobStore } from '../../blobs/store';
import { BatchNotCancellableError, BatchNotEndedError } from './errors';
import { listBatches, type BatchListFilter } from './list';
import { BatchReader } from './read';
import { ENDED, type BatchResource } from './resource';
import { submitBatch, type BatchRequest, type BatchSubmitSettings, type SubmitContext } from './submit';

export interface BatchClientOptions extends BatchSubmitSettings {
  /** Where batch files, groups and results live. */
  blobs: BlobStore;
  /** The job client's admission: a batch counts as one open job against the tenant's quota. */
  admitOpenJob: SubmitContext['admitOpenJob'];
}

export class BatchClient {
  private readonly reader: BatchReader;
  /** Submits in progress per tenant and idempotency key: a repeat waits for the first to be accepted or refused. */
  private readonly keyed = new Map<string, Promise<unknown>>();

  constructor(
    readonly temporal: Client,
    private readonly opts: BatchClientOptions,
  ) {
    this.reader = new BatchReader(temporal, opts);
  }

  /**
   * Checks the file whole and starts the batch, or answers a repeat of its Idempotency-Key
   * (BatchConflictError if the repeat differs). BatchFileRejectedError for a file with any error,
   * QuotaExceededError for a tenant at its quota: nothing is started.
   */
  async submit(tenant: string, request: BatchRequest, idempotencyKey?: string): Promise<{ batch: BatchResource; created: boolean }> {
    const { blobs, admitOpenJob } = this.opts;
    const ctx: SubmitContext = { temporal: this.temporal, blobs, reader: this.reader, settings: this.opts, admitOpenJob };
    if (idempotencyKey === undefined) return submitBatch(ctx, tenant, request);
    // Repeats of one key share the batch's scope: they go one at a time, so none writes over another's file.
    const lock = `${tenant}\n${idempotencyKey}`;
    const submitted = (this.keyed.get(lock) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => submitBatch(ctx, tenant, request, idempotencyKey));
    this.keyed.set(lock, submitted);
    try {
      return await submitted;
    } finally {
      if (this.keyed.get(lock) === submitted) this.keyed.delete(lock);
    }
  }

  /** The tenant's batch, or null when it does not exist or belongs to someone else. */
  async get(tenant: string, batchId: string): Promise<BatchResource | null> {
    return (await this.reader.read(tenant, batchId))?.batch ?? null;
  }

  /** One page of the tenant's batches, newest first; InvalidCursorError for a cursor this API did not issue. */
  list(tenant: string, filter: BatchListFilter): Promise<{ items: BatchResource[]; nextCursor: string | null }> {
    return listBatches(this.temporal, this.reader, tenant, filter);
  }

  /** Requests cancellation: the batch is `cancelling` until its running groups have stopped, then `cancelled`. */
  async cancel(tenant: string, batchId: string): Promise<BatchResource | null> {
    const batch = await this.get(tenant, batchId);
    if (!batch) return null;
    if (ENDED.includes(batch.status)) throw new BatchNotCancellableError(batch);
    await this.temporal.workflow.getHandle(batchWorkflowId(tenant, batchId)).cancel();
    return { ...batch, status: 'cancelling' };
  }

  /**
   * The lines of the batch's output (items that succeeded) or errors (items that failed), in input
   * order; BatchNotEndedError until the batch has ended; null if there is no such batch.
   */
  async results(tenant: string, batchId: string, which: 'output' | 'errors'): Promise<AsyncIterable<string> | null> {
    const read = await this.reader.read(tenant, batchId);
    if (!read) return null;
    if (!ENDED.includes(read.batch.status)) throw new BatchNotEndedError(read.batch);
    const { memo } = read;
    return batchResultLines(this.opts.blobs, batchScope(tenant, batchId), memo.groups, which, memo.format, batchId, memo.createdAt);
  }
}

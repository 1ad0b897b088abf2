/**
 * Submitting a batch: its file is streamed into the batch's scope and checked whole (src/batches/intake.ts),
 * then its workflow is started, within the tenant's quota of open jobs (a batch is one). With an
 * idempotency key the batch id is derived from it, and a repeat is answered with that batch when it
 * carries the same file and settings, or refused when it does not.
 */
import { createHash } from 'node:crypto';
import { type Client, type WorkflowExecutionDescription, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { BATCH_JOB_WORKFLOW, batchScope, type CompletionWindow } from '../../batches/contract';
import { intakeBatch } from '../../batches/intake';
import type { BlobRef, BlobStore } from '../../blobs/store';
import type { Config, PoolConfig, TenantPolicy } from '../../config';
import { providerTasks } from '../../inference/providers';
import { batchIdForIdempotencyKey, newBatchId, requestFingerprint } from '../../jobs/ids';
import type { JobLinkBase } from '../../jobs/resource';
import { BatchConflictError } from './errors';
import type { BatchReader } from './read';
import { batchResource, type BatchMemo, type BatchMetadata, type BatchResource } from './resource';
import { batchStartOptions, groupingOf, type BatchStartSettings } from './start';

export interface BatchSubmitSettings extends BatchStartSettings, JobLinkBase {
  pools: Record<string, PoolConfig>;
  batches: Config['batches'];
  tenantPolicy(tenant: string): Pick<TenantPolicy, 'weight'>;
}

/** The file: a request body as it arrives, or an uploaded document's blob. */
export type BatchFile = { body: AsyncIterable<Uint8Array> } | { blob: BlobRef };

export interface BatchRequest {
  pool: string;
  completionWindow: CompletionWindow;
  priority: number;
  metadata: BatchMetadata;
  webhook?: { url: string };
  file: BatchFile;
}

export interface SubmitContext {
  temporal: Client;
  blobs: BlobStore;
  reader: Pick<BatchReader, 'describe' | 'toResource'>;
  settings: BatchSubmitSettings;
  /** Runs `start` within the tenant's quota of open jobs (QuotaExceededError beyond it). */
  admitOpenJob<T>(tenant: string, start: () => Promise<T>, opened: (result: T) => boolean): Promise<T>;
}

type Submitted = { batch: BatchResource; created: boolean };

export async function submitBatch(ctx: SubmitContext, tenant: string, request: BatchRequest, key?: string): Promise<Submitted> {
  const batchId = key === undefined ? newBatchId() : batchIdForIdempotencyKey(tenant, key);
  const { file, ...asked } = request;
  // The settings and the file's bytes: the same file sent as a body or uploaded as a document is one request.
  const fingerprintOf = (sha256: string) => requestFingerprint({ ...asked, sha256 });
  const answerRepeat = async (description: WorkflowExecutionDescription, fingerprint: string): Promise<Submitted> => {
    if ((description.memo as Partial<BatchMemo> | undefined)?.fingerprint !== fingerprint) throw new BatchConflictError(batchId);
    return { batch: (await ctx.reader.toResource(tenant, batchId, description)).batch, created: false };
  };

  if (key !== undefined) {
    const existing = await ctx.reader.describe(tenant, batchId);
    if (existing) return answerRepeat(existing, fingerprintOf(await sha256Of(file, ctx.settings.batches.maxBytes)));
  }
  const start = async (): Promise<Submitted> => {
    const { settings } = ctx;
    const pool = { name: request.pool, config: settings.pools[request.pool]! };
    const { groupSize } = groupingOf(pool.config, settings.batches);
    const intake = await intakeBatch(ctx.blobs, batchScope(tenant, batchId), await bodyOf(ctx.blobs, file), {
      tasks: providerTasks(pool.config),
      maxLines: settings.batches.maxLines,
      maxBytes: settings.batches.maxBytes,
      groupSize,
    });
    const memo: BatchMemo = {
      fingerprint: fingerprintOf(intake.input.sha256),
      format: intake.format,
      completionWindow: request.completionWindow,
      items: intake.items,
      groups: intake.groups,
      createdAt: Date.now(),
      metadata: request.metadata,
    };
    const options = batchStartOptions(settings, {
      batchId,
      tenant,
      pool,
      priority: request.priority,
      fairnessWeight: settings.tenantPolicy(tenant).weight,
      webhook: request.webhook,
      memo,
    });
    try {
      const handle = await ctx.temporal.workflow.start(BATCH_JOB_WORKFLOW, options);
      const batch = batchResource(settings, {
        id: batchId,
        tenant,
        pool: pool.name,
        priority: request.priority,
        memo,
        workflowId: handle.workflowId,
        runId: handle.firstExecutionRunId,
        status: 'in_progress',
        counts: { total: memo.items, completed: 0, failed: 0 },
        error: null,
      });
      return { batch, created: true };
    } catch (err) {
      // Another API process accepted a batch under this key meanwhile (docs/batches.md, "Idempotency").
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || key === undefined) throw err;
      const existing = await ctx.reader.describe(tenant, batchId);
      if (!existing) throw err;
      return answerRepeat(existing, memo.fingerprint);
    }
  };
  return ctx.admitOpenJob(tenant, start, (submitted) => submitted.created);
}

async function bodyOf(blobs: BlobStore, file: BatchFile): Promise<AsyncIterable<Uint8Array>> {
  return 'body' in file ? file.body : blobs.stream(file.blob.key);
}

/** The file's SHA-256 in hex, as intake would store it; read to its end, or to past `maxBytes`, where it cannot be a repeat. */
async function sha256Of(file: BatchFile, maxBytes: number): Promise<string> {
  if ('blob' in file) return file.blob.sha256;
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of file.body) {
    bytes += chunk.length;
    if (bytes > maxBytes) return `over ${maxBytes} bytes`;
    hash.update(chunk);
  }
  return hash.digest('hex');
}

/** The batch resource the API returns: one shape for POST, GET, cancel and list items; OpenAI's batch object in camelCase. */
import { z } from 'zod';
import {
  BATCH_FORMATS,
  type BATCH_OUTCOME_MEMO,
  type BATCH_STATE_MEMO,
  BATCH_STATUSES,
  COMPLETION_WINDOWS,
  type BatchCounts,
  type BatchFormat,
  type BatchOutcome,
  type BatchState,
  type BatchStatus,
  type CompletionWindow,
} from '../../batches/contract';
import { jobFailureSchema, temporalUiLink, temporalUiLinkSchema, type JobFailure, type JobLinkBase } from '../../jobs/resource';

export const COMPLETION_WINDOW_NAMES = Object.keys(COMPLETION_WINDOWS) as [CompletionWindow, ...CompletionWindow[]];

/** As OpenAI's: at most 16 pairs, keys up to 64 characters, values up to 512. */
export const METADATA_LIMITS = { pairs: 16, keyChars: 64, valueChars: 512 } as const;
export const batchMetadataSchema = z
  .record(z.string().min(1).max(METADATA_LIMITS.keyChars), z.string().max(METADATA_LIMITS.valueChars))
  .refine((m) => Object.keys(m).length <= METADATA_LIMITS.pairs, `at most ${METADATA_LIMITS.pairs} keys`)
  .meta({ maxProperties: METADATA_LIMITS.pairs })
  .describe('Kept with the batch and shown back; not read by Switchyard');

const at = (what: string) => z.iso.datetime().nullable().describe(what);

export const batchResourceSchema = z.object({
  id: z.string().describe('batch- and 26 characters; repeats of one Idempotency-Key get the same id'),
  object: z.literal('batch'),
  tenant: z.string(),
  status: z
    .enum(BATCH_STATUSES)
    .describe('validating is the time the API reads the file, within the POST: a batch it answers for is in_progress or later'),
  pool: z.string(),
  format: z
    .enum(BATCH_FORMATS)
    .describe("switchyard: lines of Switchyard's job shape; openai: OpenAI batch request lines, answered in OpenAI's output line shape"),
  priority: z.number().int().describe('1 (most urgent) … 5'),
  completionWindow: z.enum(COMPLETION_WINDOW_NAMES),
  requestCounts: z.object({
    total: z.number().int(),
    completed: z.number().int().describe('Items that succeeded, the running groups’ included'),
    failed: z.number().int().describe('Items that failed after their attempts; at the end also those expired or cancelled before they ran'),
  }),
  error: jobFailureSchema.nullable().describe('Why a failed batch could not run'),
  metadata: z.record(z.string(), z.string()),
  createdAt: z.iso.datetime(),
  inProgressAt: at("When the batch's workflow began; null until it has"),
  finalizingAt: at('When every item had run and the batch began to close'),
  completedAt: at('Set when status is completed'),
  failedAt: at('Set when status is failed'),
  expiredAt: at('Set when status is expired'),
  cancelledAt: at('Set when status is cancelled'),
  expiresAt: z.iso.datetime().describe('The end of the completion window: items not run by then are reported expired'),
  links: z.object({
    self: z.string(),
    output: z.string().describe('Succeeded items, JSONL in input order, once the batch has ended'),
    errors: z.string().describe('Failed items, JSONL in input order, once the batch has ended'),
    cancel: z.string(),
    temporalUi: temporalUiLinkSchema,
  }),
});

export type BatchResource = z.infer<typeof batchResourceSchema>;
export type BatchMetadata = z.infer<typeof batchMetadataSchema>;

/** Kept in the workflow's memo by the API; the workflow adds its BatchState beside it. */
export interface BatchMemo {
  /** Of the settings and the file's bytes: a repeat of an Idempotency-Key must carry the same. */
  fingerprint: string;
  format: BatchFormat;
  completionWindow: CompletionWindow;
  items: number;
  groups: number;
  /** Epoch ms when the API accepted the batch. */
  createdAt: number;
  metadata: BatchMetadata;
  [BATCH_STATE_MEMO]?: BatchState;
  [BATCH_OUTCOME_MEMO]?: BatchOutcome;
}

/** What a batch resource is made of: the memo, the search attributes, and its state as read from Temporal. */
export interface BatchFacts {
  id: string;
  tenant: string;
  pool: string;
  priority: number;
  memo: BatchMemo;
  workflowId: string;
  runId: string;
  status: BatchStatus;
  counts: BatchCounts;
  error: JobFailure | null;
  inProgressAt?: number;
  finalizingAt?: number;
  /** When a batch that has ended ended. */
  endedAt?: number;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function batchResource(base: JobLinkBase, f: BatchFacts): BatchResource {
  const self = `/v1/batches/${f.id}`;
  const endedAs = (status: BatchStatus) => (f.status === status ? iso(f.endedAt) : null);
  return {
    id: f.id,
    object: 'batch',
    tenant: f.tenant,
    status: f.status,
    pool: f.pool,
    format: f.memo.format,
    priority: f.priority,
    completionWindow: f.memo.completionWindow,
    requestCounts: f.counts,
    error: f.error,
    metadata: f.memo.metadata,
    createdAt: new Date(f.memo.createdAt).toISOString(),
    inProgressAt: iso(f.inProgressAt),
    finalizingAt: iso(f.finalizingAt),
    completedAt: endedAs('completed'),
    failedAt: endedAs('failed'),
    expiredAt: endedAs('expired'),
    cancelledAt: endedAs('cancelled'),
    expiresAt: new Date(f.memo.createdAt + COMPLETION_WINDOWS[f.memo.completionWindow]).toISOString(),
    links: {
      self,
      output: `${self}/output`,
      errors: `${self}/errors`,
      cancel: `${self}/cancel`,
      temporalUi: temporalUiLink(base, f.workflowId, f.runId),
    },
  };
}

/** The statuses of a batch that has ended: its output and errors are complete. */
export const ENDED: readonly BatchStatus[] = ['completed', 'failed', 'expired', 'cancelled'];

/**
 * The batch as both sides see it: the API validates a JSONL file and splits it into groups in the blob
 * store; one workflow per batch runs the groups on the pool's workers, each group one activity that
 * writes its items' results back to the blob store and heartbeats its progress. The workflow holds
 * counts and keys, never items. Pure code: workflows import it too.
 */
import { defineQuery } from '@temporalio/workflow';
import type { InferenceRequest, InferenceResult } from '../inference/provider';

/** The workflow type: `workflows/batch-job/index.ts` exports a function of this name and shape. */
export const BATCH_JOB_WORKFLOW = 'batchJob';
export type BatchJobWorkflow = (input: BatchJobInput) => Promise<BatchOutcome>;

/** OpenAI's lifecycle; `validating` is the API's, before the workflow starts. */
export const BATCH_STATUSES = [
  'validating',
  'in_progress',
  'finalizing',
  'completed',
  'failed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** `openai`: every line is an OpenAI batch request line, and output lines take OpenAI's shape. */
export const BATCH_FORMATS = ['switchyard', 'openai'] as const;
export type BatchFormat = (typeof BATCH_FORMATS)[number];

/** The completion windows a batch may ask for, as OpenAI spells them. */
export const COMPLETION_WINDOWS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;
export type CompletionWindow = keyof typeof COMPLETION_WINDOWS;

/** Item failure types beyond the job error types (ProviderRejected, InvalidInput, ProviderTimeout, …). */
export const BATCH_ITEM_FAILURES = {
  /** The completion window ended before the item ran. */
  expired: 'BatchExpired',
  /** The batch was cancelled before the item ran. */
  cancelled: 'BatchCancelled',
} as const;

/** Why a batch ends `failed`: its files in the blob store are gone, so its groups can neither run nor be finalized. */
export const BATCH_FAILURES = { dataMissing: 'BatchDataMissing' } as const;

/**
 * One item as a group file holds it (a JSON line each): the input line number, its custom_id, and the
 * request already mapped onto the pool's tasks. `openai` keeps what the output line needs in OpenAI's shape.
 */
export interface BatchItem {
  line: number;
  customId: string;
  request: InferenceRequest;
  /** For OpenAI-format lines: the URL asked for, so the output body takes that endpoint's shape. */
  openai?: { url: '/v1/chat/completions' | '/v1/embeddings' };
}

/** One item's result as a result part holds it (a JSON line each), in input order within its group. */
export type BatchItemResult =
  | { line: number; customId: string; ok: true; result: InferenceResult; attempts: number }
  | {
      line: number;
      customId: string;
      ok: false;
      error: { type: string; message: string; status?: number };
      attempts: number;
    };

/**
 * What a group activity has made durable, in its manifest (`groupManifestKey`) and in its heartbeats: the
 * first `done` items have results in `parts`, in order. A retried attempt resumes after `done`.
 */
export interface GroupProgress {
  done: number;
  completed: number;
  failed: number;
  /** Result part keys, in order; each holds consecutive items' BatchItemResult lines. */
  parts: string[];
}

export interface BatchRetry {
  maxAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maxIntervalMs: number;
}

/** The workflow's argument: everything resolved by the API, nothing left for the workflow to look up. */
export interface BatchJobInput {
  batchId: string;
  tenant: string;
  pool: string;
  /** The pool's task queue: the group activities run there. */
  taskQueue: string;
  format: BatchFormat;
  /** Items in the batch, and how many groups hold them (groupSize each, the last one the rest). */
  items: number;
  groups: number;
  groupSize: number;
  /** Items of one group run at once inside its activity. */
  itemConcurrency: number;
  /** Groups of this batch running at once. */
  maxParallelGroups: number;
  /** 1 (highest) … 5 (lowest): the group activities' priority key. */
  priority: number;
  fairnessWeight: number;
  /** Per item, inside its group's activity. */
  retry: BatchRetry;
  /** One item's call. */
  attemptTimeoutMs: number;
  heartbeatTimeoutMs: number;
  /** From acceptance; a durable timer: past it the batch ends `expired`, its finished items kept. */
  completionWindowMs: number;
  /** Epoch ms when the API accepted the batch. */
  createdAt: number;
  webhook?: { url: string };
  /** Groups a run starts before it continues as new; tests lower it. */
  groupsPerRun?: number;
  /** Set by continue-as-new: where the previous run stopped. */
  carried?: BatchCarry;
}

export interface BatchCounts {
  total: number;
  completed: number;
  failed: number;
}

/** What a run hands the next when it continues as new. */
export interface BatchCarry {
  /** Groups below this index have finished (or were never to run). */
  nextGroup: number;
  counts: BatchCounts;
  inProgressAt: number;
}

/** The workflow's answer: how the batch ended, with OpenAI's timestamps (epoch ms). */
export interface BatchOutcome {
  status: Extract<BatchStatus, 'completed' | 'failed' | 'expired' | 'cancelled'>;
  counts: BatchCounts;
  /** For `failed`: why the batch as a whole could not run. */
  error?: { type: string; message: string };
  inProgressAt: number;
  finalizingAt?: number;
  endedAt: number;
}

/** The live state a running batch answers with (the workflow's query, and its memo after every change). */
export interface BatchState {
  status: Extract<BatchStatus, 'in_progress' | 'finalizing' | 'cancelling'>;
  /** Items of finished groups; the API adds the running groups' heartbeat progress. */
  counts: BatchCounts;
  groupsDone: number;
  inProgressAt: number;
  finalizingAt?: number;
}

export const batchStateQuery = defineQuery<BatchState>('batchState');

/** The memo key the workflow keeps its BatchState under, so a describe shows progress without a worker. */
export const BATCH_STATE_MEMO = 'batchState';
/**
 * The memo key of the BatchOutcome, set once the batch has ended and before its webhook is sent: a
 * receiver that is down keeps the workflow open while the delivery is retried, not the batch's files.
 */
export const BATCH_OUTCOME_MEMO = 'batchOutcome';

/** A batch's workflow id: `<tenant>/<batchId>`, like a job's. */
export const batchWorkflowId = (tenant: string, batchId: string): string => `${tenant}/${batchId}`;

/** Everything one batch keeps in the blob store, deleted as a whole: `batches/<tenant>/<batchId>`. */
export const batchScope = (tenant: string, batchId: string): string => `batches/${tenant}/${batchId}`;
/** The file as uploaded (JSONL). */
export const batchInputKey = (scope: string): string => `${scope}/input.jsonl`;
/** Group `index`'s items, BatchItem lines. */
export const groupItemsKey = (scope: string, index: number): string => `${scope}/groups/${index}.jsonl`;
/** Group `index`'s GroupProgress, rewritten after every part. */
export const groupManifestKey = (scope: string, index: number): string => `${scope}/results/${index}/manifest.json`;
/**
 * One result part of group `index`, starting at item `from` of the group, as `writer` (an attempt of the
 * group's activity, or finalization) wrote it: two attempts never write the same part.
 */
export const groupPartKey = (scope: string, index: number, from: number, writer: string): string =>
  `${scope}/results/${index}/${from}.${writer}.jsonl`;

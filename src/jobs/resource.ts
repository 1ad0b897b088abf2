/** The job resource the API returns: one shape for POST, GET, cancel and list items, for every job type. */
import { z } from 'zod';
import { PIPELINE_STAGES, REVIEW_DECISIONS } from '../documents/contract';
import { JOB_STATUSES, JOB_TYPES } from './job';

export const jobFailureSchema = z.object({
  type: z.string().describe('Stable failure type, e.g. ProviderRejected, ProviderRateLimited, InvalidInput'),
  message: z.string(),
});

/** Which run of the job this is: a retry starts a new run of the same job, linked to the run it retries. */
export const jobRunRefSchema = z.object({
  id: z.string().describe('Temporal run id'),
  number: z.number().int().min(1).describe('1 for the original run, 2 for its first retry, …'),
  retryOf: z.string().nullable().describe('Run id of the run this one retries; null for the original run'),
});

const reviewStateSchema = z.object({
  dueAt: z.iso.datetime().nullable().describe('When the review times out; null once decided'),
  decision: z.enum(REVIEW_DECISIONS).nullable(),
  reviewer: z.string().nullable().describe('Who decided: the reviewer named in the decision, or `timeout`'),
  comment: z.string().nullable(),
  decidedAt: z.iso.datetime().nullable(),
});

const documentProgressSchema = z.object({
  stage: z.enum(PIPELINE_STAGES),
  chunksTotal: z.number().int().nullable().describe('Null until the document has been split'),
  chunksDone: z.number().int(),
  chunksFailed: z.number().int(),
  failedChunks: z.array(z.number().int()).describe('Indexes of failed chunks, at most the first 100'),
  review: reviewStateSchema.nullable(),
});

const inferenceResultSchema = z.object({
  output: z.unknown().describe('Task-specific output; see docs/pools.md, Outputs by task'),
  model: z.string(),
  usage: z.object({ promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() }).nullable(),
});

/** A document job's outcome in brief; the full result is at links.result. */
const documentResultSchema = z.object({
  chunksTotal: z.number().int(),
  chunksDone: z.number().int(),
  failedChunks: z.array(z.number().int()).describe('Chunks that failed under failurePolicy continue'),
  review: reviewStateSchema.nullable(),
  webhook: z
    .object({
      url: z.string(),
      status: z.number().int().describe('HTTP status of the last delivery attempt; 0 if none answered'),
      attempts: z.number().int(),
    })
    .nullable(),
  size: z.number().int().describe('Bytes of the full result (GET links.result)'),
  sha256: z.string(),
});

/** A resource's link to its execution in the Temporal UI. */
export const temporalUiLinkSchema = z
  .url()
  .optional()
  .describe('The execution in the Temporal UI; absent when no UI is known (TEMPORAL_UI_URL unset with an external server)');

export const jobResourceSchema = z.object({
  id: z.string().describe('Job id; repeats of one Idempotency-Key get the same id'),
  type: z.enum(JOB_TYPES),
  tenant: z.string(),
  pool: z.string(),
  task: z.string().describe('The inference task; for a document job its tasks, comma-separated'),
  priority: z.number().int().describe('1 (most urgent) … 5'),
  status: z.enum(JOB_STATUSES).describe('`waiting`: a document job waits for its review'),
  attempts: z
    .number()
    .int()
    .describe(
      'Attempts of the inference call so far, 0 while the first waits for a worker; for a document job, the most any of its steps took',
    ),
  lastFailure: jobFailureSchema.nullable(),
  progress: documentProgressSchema
    .nullable()
    .describe("A document job's pipeline: stage and chunk counts; null for inference jobs, and when no workflow worker answered in time"),
  result: z.union([inferenceResultSchema, documentResultSchema]).nullable(),
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().nullable().describe('When the latest attempt started'),
  waitingFor: z
    .string()
    .nullable()
    .describe("While running: what the call waits for before it may reach the provider (the pool's breaker or token limit)"),
  finishedAt: z.iso.datetime().nullable(),
  run: jobRunRefSchema.describe('The current run; a retry starts a new one'),
  links: z.object({
    self: z.string(),
    cancel: z.string(),
    retry: z.string(),
    runs: z.string(),
    result: z.string().describe('The result: the full result JSON of a document job'),
    review: z.string().optional().describe('Document jobs: where the review decision is sent'),
    temporalUi: temporalUiLinkSchema,
  }),
});

/** One run in a job's run listing, with the links of its retry chain both ways. */
export const jobRunSchema = jobRunRefSchema.extend({
  status: z.enum(JOB_STATUSES),
  attempts: z.number().int(),
  lastFailure: jobFailureSchema.nullable(),
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
  retriedBy: z.string().nullable().describe('Run id of the run that retries this one; null if none (yet)'),
  links: z.object({ temporalUi: temporalUiLinkSchema }),
});

/** What a bulk retry did with each job of the page it examined. */
export const bulkRetryResultSchema = z.object({
  retried: z.array(z.object({ id: z.string(), run: jobRunRefSchema.describe('The new run') })),
  skipped: z.array(
    z.object({
      id: z.string(),
      status: z.enum(JOB_STATUSES),
      run: jobRunRefSchema.describe('The current run'),
      reason: z
        .enum(['already-retried', 'not-retryable', 'quota-exceeded'])
        .describe(
          'already-retried: only an earlier run matched, a later run exists; not-retryable: the job changed while being retried; ' +
            'quota-exceeded: the tenant has as many open jobs as its quota allows',
        ),
      detail: z.string(),
    }),
  ),
  nextCursor: z.string().nullable().describe('Send it back as `cursor` with the same filter to examine the next page'),
});

export type JobFailure = z.infer<typeof jobFailureSchema>;
export type BulkRetryResult = z.infer<typeof bulkRetryResultSchema>;
export type JobResource = z.infer<typeof jobResourceSchema>;
export type JobRunRef = z.infer<typeof jobRunRefSchema>;
export type JobRun = z.infer<typeof jobRunSchema>;

export interface JobLinkBase {
  /** Base of the Temporal UI; null when none is known, and then resources carry no UI link. */
  uiUrl: string | null;
  namespace: string;
}

export function temporalUiLink(base: JobLinkBase, workflowId: string, runId: string): string | undefined {
  if (base.uiUrl === null) return undefined;
  return `${base.uiUrl}/namespaces/${encodeURIComponent(base.namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

export function jobLinks(
  base: JobLinkBase,
  job: { id: string; type: JobResource['type'] },
  workflowId: string,
  runId: string,
): JobResource['links'] {
  const self = `/v1/jobs/${job.id}`;
  return {
    self,
    cancel: `${self}/cancel`,
    retry: `${self}/retry`,
    runs: `${self}/runs`,
    result: `${self}/result`,
    ...(job.type === 'document' ? { review: `${self}/review` } : {}),
    temporalUi: temporalUiLink(base, workflowId, runId),
  };
}

/** The run a submit starts: the job's first. */
export const firstRun = (runId: string): JobRunRef => ({ id: runId, number: 1, retryOf: null });

/** The job resource the API returns: one shape for POST, GET, cancel and list items. */
import { z } from 'zod';
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

export const jobResourceSchema = z.object({
  id: z.string().describe('Job id; repeats of one Idempotency-Key get the same id'),
  type: z.enum(JOB_TYPES),
  tenant: z.string(),
  pool: z.string(),
  task: z.string(),
  priority: z.number().int().describe('1 (most urgent) … 5'),
  status: z.enum(JOB_STATUSES),
  attempts: z.number().int().describe('Attempts of the inference call so far; 0 while the first waits for a worker'),
  lastFailure: jobFailureSchema.nullable(),
  result: z
    .object({
      output: z.unknown().describe('Task-specific output; see the README'),
      model: z.string(),
      usage: z.object({ promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() }).nullable(),
    })
    .nullable(),
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().nullable().describe('When the latest attempt started'),
  waitingFor: z
    .string()
    .nullable()
    .describe("While running: what the call waits for before it may reach the provider (the pool's breaker or token limit)"),
  finishedAt: z.iso.datetime().nullable(),
  run: jobRunRefSchema.describe('The current run; a retry starts a new one'),
  links: z.object({ self: z.string(), cancel: z.string(), retry: z.string(), runs: z.string(), temporalUi: z.url() }),
});

/** One run in a job's run listing, with the links of its retry chain both ways. */
export const jobRunSchema = jobRunRefSchema.extend({
  status: z.enum(JOB_STATUSES),
  attempts: z.number().int(),
  lastFailure: jobFailureSchema.nullable(),
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
  retriedBy: z.string().nullable().describe('Run id of the run that retries this one; null if none (yet)'),
  links: z.object({ temporalUi: z.url() }),
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
  uiUrl: string;
  namespace: string;
}

export function temporalUiLink(base: JobLinkBase, workflowId: string, runId: string): string {
  return `${base.uiUrl}/namespaces/${encodeURIComponent(base.namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

export function jobLinks(base: JobLinkBase, jobId: string, workflowId: string, runId: string) {
  const self = `/v1/jobs/${jobId}`;
  return { self, cancel: `${self}/cancel`, retry: `${self}/retry`, runs: `${self}/runs`, temporalUi: temporalUiLink(base, workflowId, runId) };
}

/** The run a submit starts: the job's first. */
export const firstRun = (runId: string): JobRunRef => ({ id: runId, number: 1, retryOf: null });

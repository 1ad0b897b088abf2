/** The job resource the API returns: one shape for POST, GET, cancel and list items. */
import { z } from 'zod';
import { JOB_STATUSES, JOB_TYPES } from './job';

export const jobFailureSchema = z.object({
  type: z.string().describe('Stable failure type, e.g. ProviderRejected, ProviderRateLimited, InvalidInput'),
  message: z.string(),
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
  finishedAt: z.iso.datetime().nullable(),
  links: z.object({ self: z.string(), cancel: z.string(), temporalUi: z.url() }),
});

export type JobFailure = z.infer<typeof jobFailureSchema>;
export type JobResource = z.infer<typeof jobResourceSchema>;

export interface JobLinkBase {
  uiUrl: string;
  namespace: string;
}

export function jobLinks(base: JobLinkBase, jobId: string, workflowId: string, runId: string) {
  const ns = encodeURIComponent(base.namespace);
  const ui = `${base.uiUrl}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
  return { self: `/v1/jobs/${jobId}`, cancel: `/v1/jobs/${jobId}/cancel`, temporalUi: ui };
}

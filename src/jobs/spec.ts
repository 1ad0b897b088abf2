/**
 * What a client may ask for when it submits a job, as zod schemas. The same schemas validate requests
 * and generate the OpenAPI document. Limits that depend on configuration (pools, maxima) are applied
 * by `buildSubmitSchema`, so a request over a configured maximum is a 400 that names the field.
 */
import { z } from 'zod';
import { INFERENCE_TASKS } from '../inference/provider';

export const JOB_PRIORITIES = { highest: 1, default: 3, lowest: 5 } as const;
export const MAX_TEXT_CHARS = 200_000;

export interface JobLimits {
  maxAttempts: number;
  defaultMaxAttempts: number;
  maxAttemptTimeoutMs: number;
  defaultAttemptTimeoutMs: number;
  maxDeadlineMs: number;
  defaultDeadlineMs: number;
}

const chatMessage = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().min(1).max(MAX_TEXT_CHARS),
});

const input = z.union([
  z.strictObject({ text: z.string().min(1).max(MAX_TEXT_CHARS) }),
  z.strictObject({ messages: z.array(chatMessage).min(1).max(200) }),
]);

export function buildSubmitSchema(limits: JobLimits, pools: readonly string[]) {
  const retry = z.strictObject({
    maxAttempts: z.number().int().min(1).max(limits.maxAttempts).default(limits.defaultMaxAttempts),
    initialIntervalMs: z.number().int().min(100).max(3_600_000).default(1000),
    backoffCoefficient: z.number().min(1).max(10).default(2),
    maxIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000),
  });
  const timeouts = z.strictObject({
    /** Limit for one attempt of the inference call. */
    attemptMs: z.number().int().min(100).max(limits.maxAttemptTimeoutMs).default(limits.defaultAttemptTimeoutMs),
    /** Limit for the whole job, queueing and retries included; past it the job is `timed_out`. */
    deadlineMs: z.number().int().min(1000).max(limits.maxDeadlineMs).default(limits.defaultDeadlineMs),
    /** Limit for waiting in the pool's queue before an attempt starts; past it the job is `timed_out`. */
    maxQueueMs: z.number().int().min(100).max(limits.maxDeadlineMs).optional(),
  });

  const inference = z
    .strictObject({
      type: z.literal('inference'),
      pool: z.enum(pools as [string, ...string[]]).default(pools.includes('local') ? 'local' : pools[0]!),
      task: z.enum(INFERENCE_TASKS),
      input,
      model: z.string().min(1).max(200).optional(),
      maxTokens: z.number().int().min(1).max(1_000_000).optional(),
      temperature: z.number().min(0).max(2).optional(),
      priority: z.number().int().min(JOB_PRIORITIES.highest).max(JOB_PRIORITIES.lowest).default(JOB_PRIORITIES.default),
      retry: retry.default(retry.parse({})),
      timeouts: timeouts.default(timeouts.parse({})),
    })
    .superRefine((spec, ctx) => {
      const isChat = spec.task === 'chat';
      if (isChat !== 'messages' in spec.input) {
        ctx.addIssue({
          code: 'custom',
          path: ['input'],
          message: isChat ? 'the chat task takes input.messages' : `the ${spec.task} task takes input.text`,
        });
      }
      if (spec.retry.maxIntervalMs < spec.retry.initialIntervalMs) {
        ctx.addIssue({ code: 'custom', path: ['retry', 'maxIntervalMs'], message: 'must be ≥ retry.initialIntervalMs' });
      }
    });

  // One job type today; document and chat jobs join this union.
  return z.discriminatedUnion('type', [inference]);
}

export type SubmitRequest = z.infer<ReturnType<typeof buildSubmitSchema>>;
export type InferenceJobSpec = Extract<SubmitRequest, { type: 'inference' }>;

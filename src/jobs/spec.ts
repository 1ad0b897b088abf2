/**
 * What a client may ask for when it submits a job, as zod schemas. The same schemas validate requests
 * and generate the OpenAPI document. Limits that depend on configuration (pools, maxima) are applied
 * by `buildSubmitSchema`, so a request over a configured maximum is a 400 that names the field.
 */
import { z } from 'zod';
import { INFERENCE_TASKS } from '../inference/provider';
import { DOCUMENT_TASKS, REVIEW_TIMEOUT_ACTIONS } from '../documents/contract';
import { requiredExactlyWhen } from './json-schema-rules';

export const JOB_PRIORITIES = { highest: 1, default: 3, lowest: 5 } as const;
export const MAX_TEXT_CHARS = 200_000;
/** A document's id: `doc-` and the first 32 hex digits of its SHA-256. */
export const DOCUMENT_ID = /^doc-[0-9a-f]{32}$/;
const MAX_PROMPT_CHARS = 20_000;
const MAX_REVIEW_TIMEOUT_MS = 30 * 86_400_000;
/** Chunks of one document analysed at once: well under Temporal's limit of pending activities per workflow. */
const MAX_PARALLEL_CHUNKS = 100;

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
    maxIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000).describe('At least initialIntervalMs'),
  });
  const timeouts = z.strictObject({
    /** Limit for one attempt of the inference call. */
    attemptMs: z.number().int().min(100).max(limits.maxAttemptTimeoutMs).default(limits.defaultAttemptTimeoutMs),
    /** Limit for the whole job, queueing and retries included; past it the job is `timed_out`. */
    deadlineMs: z.number().int().min(1000).max(limits.maxDeadlineMs).default(limits.defaultDeadlineMs),
    /** Limit for waiting in the pool's queue before an attempt starts; past it the job is `timed_out`. */
    maxQueueMs: z.number().int().min(100).max(limits.maxDeadlineMs).optional(),
  });

  const pool = z.enum(pools as [string, ...string[]]).default(pools.includes('local') ? 'local' : pools[0]!);
  const priority = z.number().int().min(JOB_PRIORITIES.highest).max(JOB_PRIORITIES.lowest).default(JOB_PRIORITIES.default);
  const model = z.string().min(1).max(200).optional();
  const backoffInOrder = (r: { initialIntervalMs: number; maxIntervalMs: number }, ctx: z.RefinementCtx) => {
    if (r.maxIntervalMs < r.initialIntervalMs) {
      ctx.addIssue({ code: 'custom', path: ['retry', 'maxIntervalMs'], message: 'must be ≥ retry.initialIntervalMs' });
    }
  };

  const inference = z
    .strictObject({
      type: z.literal('inference'),
      pool,
      task: z.enum(INFERENCE_TASKS),
      input,
      model,
      maxTokens: z.number().int().min(1).max(1_000_000).optional(),
      temperature: z.number().min(0).max(2).optional(),
      priority,
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
      backoffInOrder(spec.retry, ctx);
    })
    .meta({
      if: { properties: { task: { const: 'chat' } } },
      then: { properties: { input: { required: ['messages'] } } },
      else: { properties: { input: { required: ['text'] } } },
    });

  const httpUrl = z.url({ protocol: /^https?$/ }).max(2000);
  const chunking = z.strictObject({
    /** Chunks end at a sentence boundary near this many characters. */
    targetChars: z.number().int().min(200).max(20_000).default(1000),
  });
  const review = z.strictObject({
    /** How long the job waits for a person's decision once its result is ready. */
    timeoutMs: z.number().int().min(1000).max(MAX_REVIEW_TIMEOUT_MS),
    /** What happens when no one has decided in time. */
    onTimeout: z.enum(REVIEW_TIMEOUT_ACTIONS).default('fail'),
  });
  const documentTimeouts = timeouts.omit({ maxQueueMs: true });
  const document = z
    .strictObject({
      type: z.literal('document'),
      source: z.union([
        z.strictObject({ documentId: z.string().regex(DOCUMENT_ID, 'an id from POST /v1/documents: doc- and 32 hex digits') }),
        z.strictObject({ url: httpUrl }),
      ]),
      pool,
      tasks: z
        .array(z.enum(DOCUMENT_TASKS))
        .min(1)
        .refine((tasks) => new Set(tasks).size === tasks.length, 'each task once')
        .meta({ uniqueItems: true }),
      prompt: z.string().min(1).max(MAX_PROMPT_CHARS).optional(),
      model,
      chunking: chunking.default(chunking.parse({})),
      maxParallel: z.number().int().min(1).max(MAX_PARALLEL_CHUNKS).default(8),
      failurePolicy: z.enum(['failFast', 'continue']).default('continue'),
      review: review.optional(),
      webhook: z.strictObject({ url: httpUrl }).optional(),
      priority,
      retry: retry.default(retry.parse({})),
      timeouts: documentTimeouts.default(documentTimeouts.parse({})),
    })
    .superRefine((spec, ctx) => {
      const wantsPrompt = spec.tasks.includes('prompt');
      if (wantsPrompt !== (spec.prompt !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['prompt'],
          message: wantsPrompt ? 'the prompt task needs a prompt' : 'a prompt is only used by the prompt task; add "prompt" to tasks',
        });
      }
      backoffInOrder(spec.retry, ctx);
    })
    .meta(requiredExactlyWhen({ properties: { tasks: { contains: { const: 'prompt' } } } }, 'prompt'));

  return z.discriminatedUnion('type', [inference, document]);
}

export type SubmitRequest = z.infer<ReturnType<typeof buildSubmitSchema>>;
export type InferenceJobSpec = Extract<SubmitRequest, { type: 'inference' }>;
export type DocumentJobSpec = Extract<SubmitRequest, { type: 'document' }>;

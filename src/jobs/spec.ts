/**
 * What a client may ask for when it submits a job, as zod schemas. The same schemas validate requests
 * and generate the OpenAPI document. Limits that depend on configuration (pools, maxima) are applied
 * by `buildSubmitSchema`, so a request over a configured maximum is a 400 that names the field.
 */
import { z } from 'zod';
import { INFERENCE_TASKS, type InferenceTask } from '../inference/provider';
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

// An inference request's parts, as inference jobs and batch lines (src/batches/lines.ts) both take them.
export const inputTextSchema = z.string().min(1).max(MAX_TEXT_CHARS);
export const chatMessageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: inputTextSchema,
});
export const chatMessagesSchema = z.array(chatMessageSchema).min(1).max(200);
const inferenceInput = z.union([z.strictObject({ text: inputTextSchema }), z.strictObject({ messages: chatMessagesSchema })]);
export const modelSchema = z.string().min(1).max(200);
export const maxTokensSchema = z.number().int().min(1).max(1_000_000);
export const temperatureSchema = z.number().min(0).max(2);

/** The chat task takes `input.messages`, every other task `input.text`: an issue at `input` when they do not match. */
export function checkInputFitsTask(spec: { task: InferenceTask; input: object }, ctx: z.RefinementCtx): void {
  const isChat = spec.task === 'chat';
  if (isChat !== 'messages' in spec.input) {
    ctx.addIssue({
      code: 'custom',
      path: ['input'],
      message: isChat ? 'the chat task takes input.messages' : `the ${spec.task} task takes input.text`,
    });
  }
}

/** A URL a job fetches or calls: a document's, a webhook's. */
export const httpUrlSchema = z.url({ protocol: /^https?$/ }).max(2000);

/** A job's backoff between attempts when it asks for none of its own (batches run their items with it). */
export const RETRY_BACKOFF_DEFAULTS = { initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60_000 } as const;

export function buildSubmitSchema(limits: JobLimits, pools: readonly string[]) {
  const retry = z.strictObject({
    maxAttempts: z.number().int().min(1).max(limits.maxAttempts).default(limits.defaultMaxAttempts),
    initialIntervalMs: z.number().int().min(100).max(3_600_000).default(RETRY_BACKOFF_DEFAULTS.initialIntervalMs),
    backoffCoefficient: z.number().min(1).max(10).default(RETRY_BACKOFF_DEFAULTS.backoffCoefficient),
    maxIntervalMs: z
      .number()
      .int()
      .min(100)
      .max(86_400_000)
      .default(RETRY_BACKOFF_DEFAULTS.maxIntervalMs)
      .describe('At least initialIntervalMs'),
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
  const model = modelSchema.optional();
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
      input: inferenceInput,
      model,
      maxTokens: maxTokensSchema.optional(),
      temperature: temperatureSchema.optional(),
      priority,
      retry: retry.default(retry.parse({})),
      timeouts: timeouts.default(timeouts.parse({})),
    })
    .superRefine((spec, ctx) => {
      checkInputFitsTask(spec, ctx);
      backoffInOrder(spec.retry, ctx);
    })
    .meta({
      if: { properties: { task: { const: 'chat' } } },
      then: { properties: { input: { required: ['messages'] } } },
      else: { properties: { input: { required: ['text'] } } },
    });

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
        z.strictObject({ url: httpUrlSchema }),
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
      webhook: z.strictObject({ url: httpUrlSchema }).optional(),
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

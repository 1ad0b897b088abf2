/**
 * One line of a batch file, as zod schemas whose output is the item a group file holds. Two formats:
 *
 * - Switchyard's: `{"custom_id", "task", "input": {"text"} | {"messages"}, "model"?, "maxTokens"?, "temperature"?}`,
 *   with the limits of an inference job (src/jobs/spec.ts).
 * - OpenAI's batch request line: `{"custom_id", "method": "POST", "url", "body"}` for `/v1/chat/completions`
 *   (task `chat`) and `/v1/embeddings` (task `embed`, one input per line).
 *
 * An OpenAI body field is taken when Switchyard can honour it. Bookkeeping for OpenAI's own side (`user`,
 * `metadata`, `store`, `service_tier`) is accepted and ignored, and so are fields at OpenAI's default, which
 * change nothing (`n: 1`, `stream: false`, `logprobs: false`, `top_p: 1`, `frequency_penalty: 0`,
 * `presence_penalty: 0`, `response_format: {"type": "text"}`, `encoding_format: "float"`). Any other field
 * (tools, stop, seed, n > 1, …) would change the answer and is refused by name rather than dropped.
 */
import { z } from 'zod';
import { INFERENCE_TASKS, type InferenceRequest, type InferenceTask } from '../inference/provider';
import { chatMessagesSchema, checkInputFitsTask, inputTextSchema, maxTokensSchema, modelSchema, temperatureSchema } from '../jobs/spec';
import type { BatchFormat, BatchItem } from './contract';

/** A custom_id is the client's own key for a line, unique in its file; results are matched back by it. */
export const CUSTOM_ID_MAX_CHARS = 512;
export const OPENAI_BATCH_URLS = ['/v1/chat/completions', '/v1/embeddings'] as const;

/** A line as a group file holds it, less the line number, which the reader of the file knows. */
export type BatchLineItem = Omit<BatchItem, 'line'>;

/** OpenAI's lines carry method, url and body; Switchyard's carry none of them. */
export function formatOf(line: object): BatchFormat {
  return 'url' in line || 'method' in line || 'body' in line ? 'openai' : 'switchyard';
}

const customId = z
  .string({ error: (iss) => (iss.input === undefined ? 'required' : 'must be a string') })
  .min(1, 'must not be empty')
  .max(CUSTOM_ID_MAX_CHARS, `at most ${CUSTOM_ID_MAX_CHARS} characters`);

/** A field accepted only at the value that changes nothing. */
const onlyAt = <const T extends string | number | boolean>(value: T, why: string) =>
  z.literal(value, `${why}: only ${JSON.stringify(value)} is supported`).optional();

const unsupported = (iss: z.core.$ZodRawIssue) =>
  iss.code === 'unrecognized_keys' ? `not supported in a batch: ${iss.keys.join(', ')}` : undefined;

/** The body fields that concern only OpenAI's own side: accepted, ignored. */
const bookkeeping = {
  user: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  store: z.boolean().optional(),
  service_tier: z.string().optional(),
};

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });
const openaiMessage = z
  .strictObject({
    // `developer` is OpenAI's newer name for the system message.
    role: z.enum(['system', 'developer', 'user', 'assistant']),
    content: z.union([z.string(), z.array(textPart).min(1)], {
      error: 'a string, or an array of {"type": "text", "text": …} parts; images, audio and files are not supported',
    }),
  })
  .transform(({ role, content }) => ({
    role: role === 'developer' ? ('system' as const) : role,
    content: typeof content === 'string' ? content : content.map((part) => part.text).join('\n'),
  }));

const chatBody = z
  .strictObject(
    {
      model: modelSchema.optional(),
      messages: z.array(openaiMessage).pipe(chatMessagesSchema),
      max_tokens: maxTokensSchema.optional(),
      max_completion_tokens: maxTokensSchema.optional(),
      temperature: temperatureSchema.optional(),
      n: onlyAt(1, 'one completion per line'),
      stream: onlyAt(false, 'batch results are not streamed'),
      logprobs: onlyAt(false, 'log probabilities are not returned'),
      top_p: onlyAt(1, 'nucleus sampling is not passed on'),
      frequency_penalty: onlyAt(0, 'penalties are not passed on'),
      presence_penalty: onlyAt(0, 'penalties are not passed on'),
      response_format: z.strictObject({ type: onlyAt('text', 'only text answers') }).optional(),
      ...bookkeeping,
    },
    { error: unsupported },
  )
  .refine((b) => b.max_tokens === undefined || b.max_completion_tokens === undefined, {
    message: 'give max_tokens or max_completion_tokens, not both',
    path: ['max_completion_tokens'],
  });

const embeddingsBody = z.strictObject(
  {
    model: modelSchema.optional(),
    input: z.union([inputTextSchema, z.tuple([inputTextSchema])], {
      error: 'one string (or an array of one): one input per line; token arrays are not supported',
    }),
    encoding_format: onlyAt('float', 'embeddings come as numbers'),
    ...bookkeeping,
  },
  { error: unsupported },
);

const method = z.literal('POST', 'must be "POST"');

const openaiLine = z.discriminatedUnion(
  'url',
  [
    z.strictObject({ custom_id: customId, method, url: z.literal('/v1/chat/completions'), body: chatBody }),
    z.strictObject({ custom_id: customId, method, url: z.literal('/v1/embeddings'), body: embeddingsBody }),
  ],
  { error: (iss) => (iss.code === 'invalid_union' ? `must be ${OPENAI_BATCH_URLS.join(' or ')}` : undefined) },
);

const chatInput = z.strictObject({ messages: chatMessagesSchema });
const textInput = z.strictObject({ text: inputTextSchema });

// The input is checked once the task is known, so an error names the field at fault, not just "Invalid input".
const switchyardLine = z
  .strictObject({
    custom_id: customId,
    task: z.enum(INFERENCE_TASKS),
    input: z.looseObject({}),
    model: modelSchema.optional(),
    maxTokens: maxTokensSchema.optional(),
    temperature: temperatureSchema.optional(),
  })
  .superRefine(checkInputFitsTask)
  .transform(({ custom_id, task, input, ...options }, ctx): BatchLineItem => {
    const parsed = (task === 'chat' ? chatInput : textInput).safeParse(input);
    for (const issue of parsed.error?.issues ?? [])
      ctx.addIssue({ code: 'custom', path: ['input', ...issue.path], message: issue.message });
    return parsed.success ? { customId: custom_id, request: { task, ...parsed.data, ...options } } : z.NEVER;
  });

function fromOpenAI(line: z.infer<typeof openaiLine>): BatchLineItem {
  const request: InferenceRequest =
    line.url === '/v1/embeddings'
      ? { task: 'embed', text: typeof line.body.input === 'string' ? line.body.input : line.body.input[0], model: line.body.model }
      : {
          task: 'chat',
          messages: line.body.messages,
          model: line.body.model,
          maxTokens: line.body.max_tokens ?? line.body.max_completion_tokens,
          temperature: line.body.temperature,
        };
  return { customId: line.custom_id, request, openai: { url: line.url } };
}

/** Refuses a request for a task the pool's provider does not do, at the field that asked for it. */
function doneByPool(tasks: readonly InferenceTask[], path: string) {
  return (item: BatchLineItem, ctx: z.RefinementCtx) => {
    const { task } = item.request;
    if (!tasks.includes(task)) {
      ctx.addIssue({ code: 'custom', path: [path], message: `the pool does not do ${task}; it does ${tasks.join(', ')}` });
    }
  };
}

/** The schema of a line in `format`, for a pool that does `tasks`; its output is the line's item. */
export function batchLineSchema(format: BatchFormat, tasks: readonly InferenceTask[]): z.ZodType<BatchLineItem> {
  return format === 'openai'
    ? openaiLine.transform(fromOpenAI).superRefine(doneByPool(tasks, 'url'))
    : switchyardLine.superRefine(doneByPool(tasks, 'task'));
}

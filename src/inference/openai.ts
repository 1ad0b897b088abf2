/**
 * The OpenAI-compatible provider: chat completions and embeddings over HTTP, embeddings also in batches
 * (one call with an array input). Every failure is classified into a ProviderError here so retries
 * upstream follow the provider's own signals (429 + Retry-After, 5xx) and never repeat a request the
 * provider has rejected.
 */
import { z } from 'zod';
import type { PoolConfig } from '../config';
import {
  type CallContext,
  type ChatMessage,
  type InferenceProvider,
  type InferenceRequest,
  type InferenceResult,
  type InferenceTask,
  ProviderError,
  safeHeartbeat,
  type TokenUsage,
} from './provider';

export type OpenAIPool = Extract<PoolConfig, { provider: 'openai' }>;
export const OPENAI_TASKS: readonly InferenceTask[] = ['chat', 'embed', 'summarize'];
/** The embeddings endpoint takes many inputs in one call; chat completions take one conversation. */
export const OPENAI_BATCH_TASKS: readonly InferenceTask[] = ['embed'];

const HEARTBEAT_EVERY_MS = 1000;
const SUMMARY_PROMPT =
  'Summarize the text the user sends in a few concise sentences. Keep the key facts, names and numbers. ' + 'Reply with the summary only.';

// Lenient schemas: only the fields we read, so extra or newer fields never break us.
const usageSchema = z
  .object({
    prompt_tokens: z.number().optional(),
    completion_tokens: z.number().optional(),
    total_tokens: z.number().optional(),
  })
  .nullish();
const chatSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        message: z.object({ role: z.string().default('assistant'), content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: usageSchema,
});
const embeddingSchema = z.object({
  model: z.string().optional(),
  /** `index` is the input's position; servers that leave it out answer in input order. */
  data: z.array(z.object({ index: z.number().int().optional(), embedding: z.array(z.number()).min(1) })).min(1),
  usage: usageSchema,
});
// OpenAI's `{error:{message}}`, plus the `{error:"..."}` / `{message}` shapes other compatible servers use.
const errorSchema = z.union([
  z.object({ error: z.object({ message: z.string() }) }).transform((e) => e.error.message),
  z.object({ error: z.string() }).transform((e) => e.error),
  z.object({ message: z.string() }).transform((e) => e.message),
]);

function toUsage(u: z.infer<typeof usageSchema>): TokenUsage | undefined {
  if (!u) return undefined;
  const promptTokens = u.prompt_tokens ?? 0;
  const completionTokens = u.completion_tokens ?? 0;
  return { promptTokens, completionTokens, totalTokens: u.total_tokens ?? promptTokens + completionTokens };
}

/** Retry-After is either delay-seconds or an HTTP date; anything else is ignored. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function providerMessage(body: string): string {
  try {
    const parsed = errorSchema.safeParse(JSON.parse(body));
    if (parsed.success) return parsed.data;
  } catch {
    // not JSON: fall through to the raw snippet
  }
  return body.trim().slice(0, 500);
}

function httpError(res: Response, body: string): ProviderError {
  const status = res.status;
  const message = `provider answered HTTP ${status}: ${providerMessage(body) || res.statusText || 'no details'}`;
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  if (status === 429) return new ProviderError(message, 'rate_limited', { status, retryAfterMs });
  // 408 (request timeout) and 409 (conflict/lock) are transient by definition, unlike other 4xx.
  if (status >= 400 && status < 500 && status !== 408 && status !== 409) return new ProviderError(message, 'rejected', { status });
  // A 503 (or any 5xx) may say when to come back, as a 429 does.
  return new ProviderError(message, 'unavailable', { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
}

function parseBody<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ProviderError(`malformed ${what} response from provider: ${issues.join('; ')}`, 'unavailable', { status: 200 });
}

/** Whole tokens in proportion to `weights`, summing exactly to `total` (largest remainders get the leftovers). */
function apportion(total: number, weights: number[]): number[] {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (total * w) / sum(weights));
  const shares = exact.map(Math.floor);
  const remainder = (i: number) => exact[i]! - shares[i]!;
  const byRemainder = weights.map((_, i) => i).sort((a, b) => remainder(b) - remainder(a));
  for (const i of byRemainder.slice(0, total - sum(shares))) shares[i]!++;
  return shares;
}

/**
 * A batch's usage shared out over its inputs by text length: the provider reports only the total, and
 * each job (and the pool's token limiter) must count its own share, not the whole batch's.
 */
function shareUsage(usage: TokenUsage | undefined, texts: string[]): (TokenUsage | undefined)[] {
  if (!usage || texts.length === 1) return texts.map(() => usage);
  const weights = texts.map((t) => t.length);
  const [prompt, completion, total] = [usage.promptTokens, usage.completionTokens, usage.totalTokens].map((n) => apportion(n, weights));
  return texts.map((_, i) => ({ promptTokens: prompt![i]!, completionTokens: completion![i]!, totalTokens: total![i]! }));
}

/** Keeps a ProviderError as one item's outcome; anything else (a cancellation) still fails the batch. */
function ownOutcome(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  throw err;
}

const hasText = (request: InferenceRequest): request is InferenceRequest & { text: string } =>
  typeof request.text === 'string' && request.text.trim() !== '';

export function createOpenAIProvider(pool: OpenAIPool, fetchImpl: typeof fetch = fetch): InferenceProvider {
  const base = pool.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (pool.apiKey) headers.authorization = `Bearer ${pool.apiKey}`;

  /** POST JSON and return the parsed 2xx body; every failure comes out classified. */
  async function post(path: string, body: unknown, ctx: CallContext): Promise<unknown> {
    const url = `${base}/${path}`;
    const timeout = AbortSignal.timeout(pool.requestTimeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    safeHeartbeat(ctx);
    const timer = setInterval(() => safeHeartbeat(ctx), HEARTBEAT_EVERY_MS);
    try {
      let res: Response;
      let text: string;
      try {
        res = await fetchImpl(url, { method: 'POST', headers, body: JSON.stringify(body), signal });
        text = await res.text(); // inside the try: the timeout and cancellation cover the body too
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason; // cancellation is not a provider failure
        if (timeout.aborted) throw new ProviderError(`no answer from ${url} within ${pool.requestTimeoutMs} ms`, 'timeout');
        const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
        throw new ProviderError(`cannot reach ${url}: ${cause}`, 'unavailable');
      }
      if (!res.ok) throw httpError(res, text);
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new ProviderError(`provider answered HTTP ${res.status} with malformed JSON from ${url}`, 'unavailable', {
          status: res.status,
        });
      }
    } finally {
      clearInterval(timer);
    }
  }

  async function chat(messages: ChatMessage[], request: InferenceRequest, ctx: CallContext) {
    const model = request.model ?? pool.model;
    const payload: Record<string, unknown> = { model, messages };
    if (request.maxTokens !== undefined) payload.max_tokens = request.maxTokens;
    if (request.temperature !== undefined) payload.temperature = request.temperature;
    const res = parseBody(chatSchema, await post('chat/completions', payload, ctx), 'chat completion');
    const choice = res.choices[0]!; // min(1) above
    return {
      model: res.model ?? model,
      message: { role: choice.message.role, content: choice.message.content ?? '' },
      finishReason: choice.finish_reason ?? null,
      usage: toUsage(res.usage),
    };
  }

  const textMissing = (request: InferenceRequest) => new ProviderError(`task "${request.task}" needs a non-empty text`, 'invalid_input');
  function requireText(request: InferenceRequest): string {
    if (!hasText(request)) throw textMissing(request);
    return request.text;
  }

  const embeddingModel = (request: InferenceRequest) => request.model ?? pool.embeddingModel ?? pool.model;

  /** Embeddings of `texts` in one call (a lone text goes as a string); each vector found by its `index`. */
  async function embed(texts: string[], model: string, ctx: CallContext): Promise<InferenceResult[]> {
    const input = texts.length === 1 ? texts[0] : texts;
    const res = parseBody(embeddingSchema, await post('embeddings', { model, input }, ctx), 'embeddings');
    const byIndex = new Map(res.data.map((d, at) => [d.index ?? at, d.embedding]));
    const usage = shareUsage(toUsage(res.usage), texts);
    return texts.map((_, i) => {
      const embedding = byIndex.get(i);
      if (!embedding)
        throw new ProviderError(`malformed embeddings response from provider: no vector for input ${i} of ${texts.length}`, 'unavailable', {
          status: 200,
        });
      return { task: 'embed', model: res.model ?? model, output: { embedding, dimensions: embedding.length }, usage: usage[i] };
    });
  }

  /**
   * One call for the batch. A provider refuses a whole batch for one bad input (4xx), so on a refusal
   * each input is sent alone and only the culprit fails; other failures (429, 5xx) are every item's.
   */
  async function embedBatch(
    requests: (InferenceRequest & { text: string })[],
    ctx: CallContext,
  ): Promise<(InferenceResult | ProviderError)[]> {
    if (requests.length === 0) return [];
    const model = embeddingModel(requests[0]!); // the batcher groups by model
    try {
      return await embed(
        requests.map((r) => r.text),
        model,
        ctx,
      );
    } catch (err) {
      if (!(err instanceof ProviderError && err.kind === 'rejected' && requests.length > 1)) throw err;
      return Promise.all(requests.map((r) => embed([r.text], model, ctx).then(([result]) => result!, ownOutcome)));
    }
  }

  return {
    kind: 'openai',
    tasks: OPENAI_TASKS,
    async infer(request: InferenceRequest, ctx: CallContext): Promise<InferenceResult> {
      ctx.signal.throwIfAborted();
      const { task } = request;
      if (task === 'chat') {
        if (!request.messages?.length) throw new ProviderError('task "chat" needs at least one message', 'invalid_input');
        const r = await chat(request.messages, request, ctx);
        return { task, model: r.model, output: { message: r.message, finishReason: r.finishReason }, usage: r.usage };
      }
      if (task === 'summarize') {
        const messages: ChatMessage[] = [
          { role: 'system', content: SUMMARY_PROMPT },
          { role: 'user', content: requireText(request) },
        ];
        const r = await chat(messages, request, ctx);
        return { task, model: r.model, output: { summary: r.message.content.trim() }, usage: r.usage };
      }
      if (task === 'embed') {
        const [result] = await embed([requireText(request)], embeddingModel(request), ctx);
        return result!;
      }
      throw new ProviderError(`task "${task}" is not supported by the openai provider`, 'invalid_input');
    },
    batchTasks: OPENAI_BATCH_TASKS,
    async inferBatch(requests: InferenceRequest[], ctx: CallContext): Promise<(InferenceResult | ProviderError)[]> {
      ctx.signal.throwIfAborted();
      // An input the provider would refuse fails alone, without a call; the rest go in one.
      const refused = requests.map((r) =>
        r.task !== 'embed'
          ? new ProviderError(`task "${r.task}" is not batched by the openai provider`, 'invalid_input')
          : hasText(r)
            ? undefined
            : textMissing(r),
      );
      const answers = await embedBatch(
        requests.filter((r, i): r is InferenceRequest & { text: string } => refused[i] === undefined),
        ctx,
      );
      let next = 0;
      return refused.map((r) => r ?? answers[next++]!);
    },
  };
}

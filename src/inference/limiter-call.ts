/**
 * One provider call through a fleet limiter: estimate its tokens, wait for a permit, call, and report
 * what happened — the provider's reported usage (else the estimate) and whether it was throttled or
 * unavailable, which is what the breaker counts.
 */
import type { Outcome } from './breaker';
import type { LimiterClient, WaitContext } from './limiter-client';
import { type InferenceRequest, type InferenceResult, type InferenceTask, ProviderError } from './provider';

/** A common rule of thumb for English text with GPT-style tokenizers. */
export const CHARS_PER_TOKEN = 4;
/** What a provider adds around the text: chat framing, the summary instruction. */
export const PROMPT_OVERHEAD_TOKENS = 64;
/** The completion budget of a call that sets no `maxTokens`. */
export const DEFAULT_COMPLETION_TOKENS = 512;
const GENERATING_TASKS: readonly InferenceTask[] = ['chat', 'summarize'];

/** Tokens a call is expected to use, erring high: prompt characters / 4, overhead, and the completion budget. */
export function estimateTokens(request: InferenceRequest): number {
  const chars = (request.text?.length ?? 0) + (request.messages ?? []).reduce((n, m) => n + m.content.length, 0);
  const completion = GENERATING_TASKS.includes(request.task) ? (request.maxTokens ?? DEFAULT_COMPLETION_TOKENS) : 0;
  return Math.ceil(chars / CHARS_PER_TOKEN) + PROMPT_OVERHEAD_TOKENS + completion;
}

/**
 * A failed call as the limiter counts it. Throttling and unavailability are the breaker's business;
 * any other answer shows the provider is up (`ok`); anything else (cancellation, our own error) says
 * nothing about it. Tokens: a throttled or invalid call used none, otherwise nobody knows, so the estimate stays.
 * A Retry-After (on a 429, or a 503 that sends one) goes along: the limiter holds every call for it.
 */
export function failureOutcome(err: unknown, estimate: number): { outcome: Outcome; tokens: number; retryAfterMs?: number } {
  if (!(err instanceof ProviderError)) return { outcome: 'abandoned', tokens: estimate };
  switch (err.kind) {
    case 'rate_limited':
      return { outcome: 'throttled', tokens: 0, retryAfterMs: err.options.retryAfterMs };
    case 'unavailable':
      return {
        outcome: 'unavailable',
        tokens: estimate,
        ...(err.options.retryAfterMs === undefined ? {} : { retryAfterMs: err.options.retryAfterMs }),
      };
    case 'timeout':
      return { outcome: 'unavailable', tokens: estimate };
    case 'invalid_input':
      return { outcome: 'ok', tokens: 0 };
    default:
      return { outcome: 'ok', tokens: estimate };
  }
}

/**
 * Runs `call` once the limiter allows it, and reports what became of it. A failed call fails as it
 * would without the limiter — a probe too: it is a real call of the job, and its failure the provider's.
 */
export async function callThroughLimiter(
  limiter: LimiterClient,
  request: InferenceRequest,
  ctx: WaitContext,
  call: () => Promise<InferenceResult>,
): Promise<InferenceResult> {
  const estimate = estimateTokens(request);
  const permit = await limiter.acquire(estimate, ctx);
  try {
    const result = await call();
    permit.settle('ok', result.usage?.totalTokens ?? estimate);
    return result;
  } catch (err) {
    const { outcome, tokens, retryAfterMs } = failureOutcome(err, estimate);
    permit.settle(outcome, tokens, retryAfterMs);
    throw err;
  }
}

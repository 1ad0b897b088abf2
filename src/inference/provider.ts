/**
 * The one interface every inference provider implements. A pool is a task queue plus the workers
 * that poll it; each worker of a pool calls its pool's provider through this interface.
 */
import { SwitchyardError } from '../errors';

export const INFERENCE_TASKS = ['sentiment', 'entities', 'keywords', 'summarize', 'chat', 'embed'] as const;
export type InferenceTask = (typeof INFERENCE_TASKS)[number];

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What a job asks a provider to do. Exactly one of `text` / `messages` is set (`messages` for chat). */
export interface InferenceRequest {
  task: InferenceTask;
  text?: string;
  messages?: ChatMessage[];
  /** Overrides the pool's default model where the provider has a choice. */
  model?: string;
  maxTokens?: number;
  temperature?: number;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface InferenceResult {
  task: InferenceTask;
  model: string;
  /** Task-specific JSON output (docs/pools.md lists each task's shape). */
  output: unknown;
  usage?: TokenUsage;
}

/** What a running call may use: cancellation from Temporal, and a heartbeat for long calls. */
export interface CallContext {
  signal: AbortSignal;
  heartbeat(): void;
}

/** Heartbeats without throwing: a heartbeat failure inside a timer would be an uncaught exception and take the worker down. */
export function safeHeartbeat(ctx: CallContext): void {
  try {
    ctx.heartbeat();
  } catch {
    // nothing to do: the next heartbeat or the call's end settles it
  }
}

export interface InferenceProvider {
  /** Provider kind, e.g. `local` or `openai`. */
  readonly kind: string;
  readonly tasks: readonly InferenceTask[];
  infer(request: InferenceRequest, ctx: CallContext): Promise<InferenceResult>;
  /** Tasks `inferBatch` takes (src/inference/batcher.ts groups concurrent calls for these). */
  readonly batchTasks?: readonly InferenceTask[];
  /**
   * One provider call for several requests of the same task and model. Answers one entry per request,
   * in order: its result, or the ProviderError that fails only that request. Throwing fails them all.
   */
  inferBatch?(requests: InferenceRequest[], ctx: CallContext): Promise<Array<InferenceResult | ProviderError>>;
}

/**
 * A provider failure, classified once here so the activity layer can turn it into the right
 * Temporal failure: retryable or not, and how long to wait before the next attempt.
 */
export class ProviderError extends SwitchyardError {
  override readonly name = 'ProviderError';
  readonly code = 'provider-error';
  constructor(
    message: string,
    readonly kind: 'rate_limited' | 'rejected' | 'unavailable' | 'timeout' | 'invalid_input',
    readonly options: { status?: number; retryAfterMs?: number } = {},
  ) {
    super(message);
  }

  get retryable(): boolean {
    return this.kind !== 'rejected' && this.kind !== 'invalid_input';
  }
}

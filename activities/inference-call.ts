import { ApplicationFailure, Context } from '@temporalio/activity';
import { callThroughLimiter } from '../src/inference/limiter-call';
import type { LimiterClient } from '../src/inference/limiter-client';
import { ProviderError, type InferenceProvider, type InferenceRequest, type InferenceResult } from '../src/inference/provider';
import type { InferenceMetrics } from '../src/worker/metrics';

/** One provider call the way every activity of a pool makes it; runs inside an activity. */
export type Infer = (request: InferenceRequest) => Promise<InferenceResult>;

/**
 * One inference call the Switchyard way: the task checked against the provider, the fleet limiter
 * waited for (heartbeating, so the call can be cancelled meanwhile), the provider called with the
 * activity's cancellation and heartbeat (and so batched with concurrent calls when the pool batches),
 * metrics recorded, and a provider failure turned into the Temporal failure it should be.
 */
export function inferenceCall(
  provider: InferenceProvider,
  limiter: LimiterClient | undefined,
  metrics: InferenceMetrics | undefined,
): Infer {
  /** Times the provider call alone, without the wait for the limiter. */
  async function timed<T>(task: string, cancelled: AbortSignal, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      metrics?.call(task, 'succeeded', (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      metrics?.call(task, cancelled.aborted ? 'cancelled' : 'failed', (performance.now() - started) / 1000);
      throw err;
    }
  }

  return async (request) => {
    const ctx = Context.current();
    if (!provider.tasks.includes(request.task)) {
      throw ApplicationFailure.nonRetryable(`${provider.kind} provider does not do ${request.task}`, 'InvalidInput');
    }
    const call = { signal: ctx.cancellationSignal, heartbeat: (details?: unknown) => ctx.heartbeat(details) };
    const infer = () => timed(request.task, ctx.cancellationSignal, () => provider.infer(request, call));
    try {
      const result = limiter ? await callThroughLimiter(limiter, request, call, infer) : await infer();
      if (result.usage) metrics?.tokens(request.task, result.usage);
      return result;
    } catch (err) {
      const failure = err instanceof ProviderError ? toFailure(err) : err;
      if (!ctx.cancellationSignal.aborted) metrics?.error(request.task, failureType(failure));
      throw failure;
    }
  };
}

const FAILURE_TYPES: Record<ProviderError['kind'], string> = {
  invalid_input: 'InvalidInput',
  rejected: 'ProviderRejected',
  rate_limited: 'ProviderRateLimited',
  unavailable: 'ProviderUnavailable',
  timeout: 'ProviderTimeout',
};

/** The type a failure is filed under: an ApplicationFailure's type, else the error's class name. */
function failureType(err: unknown): string {
  if (err instanceof ApplicationFailure && err.type) return err.type;
  return err instanceof Error ? err.name : 'Error';
}

/** A provider failure as Temporal should see it: a stable type, retryability, and the provider's wait. */
function toFailure(err: ProviderError): ApplicationFailure {
  return ApplicationFailure.create({
    message: err.message,
    type: FAILURE_TYPES[err.kind],
    nonRetryable: !err.retryable,
    nextRetryDelay: err.options.retryAfterMs,
    details: err.options.status === undefined ? [] : [{ status: err.options.status }],
  });
}

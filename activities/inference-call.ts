import { ApplicationFailure, Context } from '@temporalio/activity';
import { callThroughLimiter } from '../src/inference/limiter-call';
import type { LimiterClient } from '../src/inference/limiter-client';
import { ProviderError, type InferenceProvider, type InferenceRequest, type InferenceResult } from '../src/inference/provider';
import type { InferenceMetrics } from '../src/worker/metrics';

/** One provider call the way every activity of a pool makes it; runs inside an activity. */
export type Infer = (request: InferenceRequest, options?: CallOptions) => Promise<InferenceResult>;

/** What an activity making many calls (a batch group) sets per call. */
export interface CallOptions {
  /** This call's own time limit; past it the call is abandoned as a retryable ProviderTimeout. */
  timeoutMs?: number;
  /** What the activity's heartbeats carry while the call runs (a group's progress), so a provider's beats do not blank it. */
  heartbeatDetails?: () => object;
}

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

  return async (request, { timeoutMs, heartbeatDetails } = {}) => {
    const ctx = Context.current();
    if (!provider.tasks.includes(request.task)) {
      throw ApplicationFailure.nonRetryable(`${provider.kind} provider does not do ${request.task}`, 'InvalidInput');
    }
    const timeout = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
    const signal = timeout ? AbortSignal.any([ctx.cancellationSignal, timeout]) : ctx.cancellationSignal;
    const heartbeat = (details?: unknown) =>
      ctx.heartbeat(heartbeatDetails ? { ...heartbeatDetails(), ...(details as object | undefined) } : details);
    const call = { signal, heartbeat };
    const infer = () => timed(request.task, ctx.cancellationSignal, () => provider.infer(request, call));
    try {
      const result = limiter ? await callThroughLimiter(limiter, request, call, infer) : await infer();
      if (result.usage) metrics?.tokens(request.task, result.usage);
      return result;
    } catch (err) {
      const timedOut = timeout?.aborted && !ctx.cancellationSignal.aborted;
      const failure = timedOut
        ? ApplicationFailure.retryable(`the call took longer than its ${timeoutMs} ms`, FAILURE_TYPES.timeout)
        : err instanceof ProviderError
          ? toFailure(err)
          : err;
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

import { ApplicationFailure, Context } from '@temporalio/activity';
import type { InferenceOutcome } from '../src/jobs/job';
import { callThroughLimiter } from '../src/inference/limiter-call';
import type { LimiterClient } from '../src/inference/limiter-client';
import { ProviderError, type InferenceProvider, type InferenceRequest } from '../src/inference/provider';

export interface ActivityDeps {
  /** The provider of the pool whose task queue these activities serve. */
  provider: InferenceProvider;
  /** The pool's fleet limiter (token budget, breaker); absent when the pool has neither. */
  limiter?: LimiterClient;
}

/** The activities one pool's workers run, closed over that pool's provider and limiter. */
export function createActivities({ provider, limiter }: ActivityDeps) {
  return {
    async runInference(request: InferenceRequest): Promise<InferenceOutcome> {
      const ctx = Context.current();
      if (!provider.tasks.includes(request.task)) {
        throw ApplicationFailure.nonRetryable(`${provider.kind} provider does not do ${request.task}`, 'InvalidInput');
      }
      const call = { signal: ctx.cancellationSignal, heartbeat: (details?: unknown) => ctx.heartbeat(details) };
      const infer = () => provider.infer(request, call);
      try {
        // Waiting for the limiter heartbeats, so the job stays `running` and can be cancelled meanwhile.
        const result = limiter ? await callThroughLimiter(limiter, request, call, infer) : await infer();
        return { ...result, attempt: ctx.info.attempt };
      } catch (err) {
        throw err instanceof ProviderError ? toFailure(err) : err;
      }
    },
  };
}

export type InferenceActivities = ReturnType<typeof createActivities>;

const FAILURE_TYPES: Record<ProviderError['kind'], string> = {
  invalid_input: 'InvalidInput',
  rejected: 'ProviderRejected',
  rate_limited: 'ProviderRateLimited',
  unavailable: 'ProviderUnavailable',
  timeout: 'ProviderTimeout',
};

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

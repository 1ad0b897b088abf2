import { ApplicationFailure, Context } from '@temporalio/activity';
import type { InferenceOutcome } from '../src/jobs/job';
import { ProviderError, type InferenceProvider, type InferenceRequest } from '../src/inference/provider';

export interface ActivityDeps {
  /** The provider of the pool whose task queue these activities serve. */
  provider: InferenceProvider;
}

/** The activities one pool's workers run, closed over that pool's provider. */
export function createActivities({ provider }: ActivityDeps) {
  return {
    async runInference(request: InferenceRequest): Promise<InferenceOutcome> {
      const ctx = Context.current();
      if (!provider.tasks.includes(request.task)) {
        throw ApplicationFailure.nonRetryable(`${provider.kind} provider does not do ${request.task}`, 'InvalidInput');
      }
      try {
        const result = await provider.infer(request, {
          signal: ctx.cancellationSignal,
          heartbeat: () => ctx.heartbeat(),
        });
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

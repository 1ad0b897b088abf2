import { Context } from '@temporalio/activity';
import type { BlobStore } from '../src/blobs/store';
import type { InferenceOutcome } from '../src/jobs/inference-contract';
import type { LimiterClient } from '../src/inference/limiter-client';
import type { InferenceProvider, InferenceRequest } from '../src/inference/provider';
import type { InferenceMetrics } from '../src/worker/metrics';
import { createChunkActivities } from './analyse-chunk';
import { createBatchGroupActivities } from './batch-group';
import { inferenceCall } from './inference-call';

export interface ActivityDeps {
  /** The provider of the pool whose task queue these activities serve. */
  provider: InferenceProvider;
  /** The pool's fleet limiter (token budget, breaker); absent when the pool has neither. */
  limiter?: LimiterClient;
  /** The pool's inference metrics (latency, tokens, errors); absent in tests that do not look. */
  metrics?: InferenceMetrics;
  /** Where document chunks and batch groups are read from and their results written to. */
  blobs: BlobStore;
  /** The pool's concurrency: the most provider calls this process makes at once for batch groups. */
  concurrency: number;
}

/** The activities one pool's workers run, closed over that pool's provider, limiter, concurrency and the blob store. */
export function createActivities({ provider, limiter, metrics, blobs, concurrency }: ActivityDeps) {
  const infer = inferenceCall(provider, limiter, metrics);
  return {
    async runInference(request: InferenceRequest): Promise<InferenceOutcome> {
      return { ...(await infer(request)), attempt: Context.current().info.attempt };
    },
    ...createChunkActivities({ blobs, infer }),
    ...createBatchGroupActivities({ blobs, infer, concurrency }),
  };
}

export type InferenceActivities = ReturnType<typeof createActivities>;

/**
 * Pool settings → provider, with dynamic batching when the pool turns it on. `providerTasks` answers
 * "can this pool do task X?" from constants alone, so the API can validate jobs without loading the
 * wink model or building HTTP clients.
 */
import type { PoolConfig } from '../config';
import { withBatching } from './batcher';
import { createLocalProvider, LOCAL_TASKS } from './local';
import { createOpenAIProvider, OPENAI_TASKS } from './openai';
import type { InferenceProvider, InferenceTask } from './provider';
import { createSyntheticProvider, SYNTHETIC_TASKS } from './synthetic';

export function createProvider(pool: PoolConfig, onBatch?: Parameters<typeof withBatching>[2]): InferenceProvider {
  return withBatching(baseProvider(pool), pool.batch, onBatch);
}

function baseProvider(pool: PoolConfig): InferenceProvider {
  switch (pool.provider) {
    case 'local':
      return createLocalProvider();
    case 'openai':
      return createOpenAIProvider(pool);
    case 'synthetic':
      return createSyntheticProvider(pool);
    default:
      return unknownProvider(pool);
  }
}

export function providerTasks(pool: PoolConfig): readonly InferenceTask[] {
  switch (pool.provider) {
    case 'local':
      return LOCAL_TASKS;
    case 'openai':
      return OPENAI_TASKS;
    case 'synthetic':
      return SYNTHETIC_TASKS;
    default:
      return unknownProvider(pool);
  }
}

/** Compile-time exhaustiveness: a new provider kind in config.ts fails to type-check here until handled. */
function unknownProvider(pool: never): never {
  throw new Error(`unknown provider: ${String((pool as { provider?: unknown }).provider)}`);
}

/**
 * Worker metrics. The Temporal runtime serves them in Prometheus format at `http://<address>/metrics`:
 * the SDK's own (slots, polls, schedule-to-start latency, …) and Switchyard's inference metrics, which
 * are recorded through the runtime's metric meter so one endpoint has both.
 */
import type { MetricMeter } from '@temporalio/common';
import type { TelemetryOptions } from '@temporalio/worker';

const LATENCY = 'switchyard_inference_latency_seconds';
const BATCH_SIZE = 'switchyard_inference_batch_size';

/** The runtime's Prometheus exporter; durations in seconds, as Prometheus conventions (and the API) have them. */
export function prometheusTelemetry(bindAddress: string): TelemetryOptions {
  return {
    metrics: {
      prometheus: {
        bindAddress,
        useSecondsForDurations: true,
        histogramBucketOverrides: {
          [LATENCY]: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
          [BATCH_SIZE]: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
        },
      },
    },
  };
}

export type InferenceOutcomeLabel = 'succeeded' | 'failed' | 'cancelled';

/** What one pool's activities and batcher record. */
export interface InferenceMetrics {
  /** A provider call as one activity saw it (a batched call's latency includes its wait for the batch). */
  call(task: string, outcome: InferenceOutcomeLabel, seconds: number): void;
  tokens(task: string, usage: { promptTokens: number; completionTokens: number }): void;
  /** A failed inference activity, by the failure type the job's lastFailure shows. */
  error(task: string, type: string): void;
  /** Handed to the batcher as it is, hence `this: void`. */
  batch(this: void, task: string, size: number): void;
}

export function inferenceMetrics(meter: MetricMeter, pool: string): InferenceMetrics {
  const tagged = meter.withTags({ pool });
  const latency = tagged.createHistogram(LATENCY, 'float', 's', 'Provider calls by pool, task and outcome');
  const tokens = tagged.createCounter(
    'switchyard_inference_tokens_total',
    'tokens',
    'LLM tokens used, by pool, task and kind (prompt, completion)',
  );
  const errors = tagged.createCounter(
    'switchyard_inference_errors_total',
    'errors',
    'Failed inference attempts by pool, task and failure type',
  );
  const batches = tagged.createHistogram(BATCH_SIZE, 'int', 'calls', 'Calls per provider call sent by the batcher, by pool and task');
  return {
    call: (task, outcome, seconds) => latency.record(seconds, { task, outcome }),
    tokens(task, usage) {
      tokens.add(usage.promptTokens, { task, kind: 'prompt' });
      tokens.add(usage.completionTokens, { task, kind: 'completion' });
    },
    error: (task, type) => errors.add(1, { task, type }),
    batch: (task, size) => batches.record(size, { task }),
  };
}

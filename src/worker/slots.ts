/** A pool's `slots` setting as Temporal worker options: a fixed count, or the resource-based tuner. */
import type { WorkerOptions } from '@temporalio/worker';
import type { PoolConfig } from '../config';

export function activitySlotOptions(pool: PoolConfig): Pick<WorkerOptions, 'maxConcurrentActivityTaskExecutions' | 'tuner'> {
  if (pool.slots.tuner === 'fixed') return { maxConcurrentActivityTaskExecutions: pool.concurrency };
  const { targetCpuUsage, targetMemoryUsage, minimumSlots, rampThrottleMs } = pool.slots;
  // A pool worker runs activities only; the tuner's other slot types are never used.
  return {
    tuner: {
      tunerOptions: { targetCpuUsage, targetMemoryUsage },
      activityTaskSlotOptions: { minimumSlots, maximumSlots: pool.concurrency, rampThrottle: rampThrottleMs },
    },
  };
}

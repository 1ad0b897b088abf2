/**
 * Busy slots from the pool workers' own metrics. Temporal's task-queue API does not say how many calls a
 * pool's workers are running; each worker's Prometheus endpoint does:
 * `temporal_worker_task_slots_used{worker_type="ActivityWorker",task_queue="…"}` is the number of activity
 * slots in use now — calls running, including calls waiting inside the activity for the limiter (they hold
 * a slot). The process autoscaler sums it over a pool's workers on every tick.
 */

const SLOTS_USED = 'temporal_worker_task_slots_used';
/** A worker whose endpoint does not answer within this counts as unreadable for the tick. */
export const SCRAPE_TIMEOUT_MS = 500;

/** The activity slots in use for `taskQueue` in one worker's Prometheus text; null when the text has no such series. */
export function activitySlotsUsed(text: string, taskQueue: string): number | null {
  let used: number | null = null;
  for (const line of text.split('\n')) {
    const sample = /^temporal_worker_task_slots_used\{(.*)\}\s+(\S+)/.exec(line);
    if (!sample) continue;
    const labels = new Map([...sample[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k, v]));
    if (labels.get('worker_type') !== 'ActivityWorker' || labels.get('task_queue') !== taskQueue) continue;
    used = (used ?? 0) + Number(sample[2]);
  }
  return used !== null && Number.isFinite(used) ? used : null;
}

/** A worker's metrics URL from the address it binds: an unspecified host (0.0.0.0, [::]) is reached on loopback. */
export function metricsUrl(bindAddress: string): string {
  const at = bindAddress.lastIndexOf(':');
  const host = bindAddress.slice(0, at);
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  return `http://${reachable}:${bindAddress.slice(at + 1)}/metrics`;
}

/** One worker's busy activity slots; rejects when its endpoint does not answer in time or reports none. */
export async function readBusySlots(bindAddress: string, taskQueue: string, timeoutMs = SCRAPE_TIMEOUT_MS): Promise<number> {
  const url = metricsUrl(bindAddress);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (err) {
    // fetch's own message is only "fetch failed"; the cause says why (ECONNREFUSED while a worker starts).
    throw new Error(`${url}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`, { cause: err });
  }
  const used = res.ok ? activitySlotsUsed(text, taskQueue) : null;
  if (used === null) throw new Error(res.ok ? `${url} has no ${SLOTS_USED} for ${taskQueue}` : `${url} answered ${res.status}`);
  return used;
}

export type PoolBusySlots = { busySlots: number } | { busySlots: null; reason: string };

/**
 * The busy slots of a pool's workers, summed. If any worker's cannot be read the answer is null — the
 * policy then estimates them — because a partial sum would understate the calls running.
 */
export async function poolBusySlots(
  bindAddresses: readonly string[],
  taskQueue: string,
  timeoutMs = SCRAPE_TIMEOUT_MS,
): Promise<PoolBusySlots> {
  const reads = await Promise.allSettled(bindAddresses.map((a) => readBusySlots(a, taskQueue, timeoutMs)));
  const failed = reads.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) return { busySlots: null, reason: (failed.reason as Error).message };
  return { busySlots: reads.reduce((sum, r) => sum + (r as PromiseFulfilledResult<number>).value, 0) };
}

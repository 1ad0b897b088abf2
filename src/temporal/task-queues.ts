/** Task-queue names: one for workflows, one per inference pool. Pure: the API and workers share it. */
export function workflowTaskQueue(prefix: string): string {
  return `${prefix}-workflows`;
}

export function poolTaskQueue(prefix: string, pool: string): string {
  return `${prefix}-pool-${pool}`;
}

/** The limiter workflow of a limiter (a pool's token budget and breaker, or one shared by pools); it runs on the workflows queue. */
export function limiterWorkflowId(prefix: string, limiter: string): string {
  return `${prefix}-limiter/${limiter}`;
}

/** Task-queue names: one for workflows, one per inference pool. Pure: the API and workers share it. */
export function workflowTaskQueue(prefix: string): string {
  return `${prefix}-workflows`;
}

export function poolTaskQueue(prefix: string, pool: string): string {
  return `${prefix}-pool-${pool}`;
}

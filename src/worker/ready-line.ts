/**
 * The message a worker process logs once every worker in it polls. Whatever starts workers waits for it
 * (src/local/processes.ts); a leaf module, so that needs no Temporal worker loaded.
 */
export const WORKER_READY = 'worker ready';

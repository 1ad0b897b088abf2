/**
 * The message `switchyard autoscale` logs once it scales its pools. Whatever starts the autoscaler waits
 * for it (src/local/processes.ts); a leaf module, so that loads nothing else.
 */
export const AUTOSCALER_READY = 'autoscaler ready';

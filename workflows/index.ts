/** The workflow bundle's entry: every workflow type Switchyard runs, exported under its contract's name. */
export { inferenceJob } from './inference-job';
export { documentJob } from './document-job';
export { poolLimiter } from './pool-limiter';
export { conversation } from './conversation';
export { batchJob } from './batch-job';

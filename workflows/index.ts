/** The workflow bundle's entry: every workflow type Switchyard runs. */
export { inferenceJob } from './inference-job';
export { limiterExchangeUpdate, limiterStateQuery, poolLimiter, type PoolLimiterInput } from './pool-limiter';

/** The workflow bundle's entry: every workflow type Switchyard runs. */
export { inferenceJob } from './inference-job';
export { documentJob, documentProgressQuery, reviewUpdate } from './document-job';
export { limiterExchangeUpdate, limiterStateQuery, poolLimiter, type PoolLimiterInput } from './pool-limiter';
export { conversation, conversationStateQuery, messageEventsQuery, messageRecordQuery, submitMessageUpdate } from './conversation';

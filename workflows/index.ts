/** The workflow bundle's entry: every workflow type Switchyard runs. */
export { inferenceJob } from './inference-job';

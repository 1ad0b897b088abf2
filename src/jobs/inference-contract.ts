/**
 * The inference job workflow as both sides see it: its name, what the API hands it and what it returns.
 * Pure code: the workflow imports it too.
 */
import type { InferenceRequest, InferenceResult } from '../inference/provider';

/** The workflow type: `workflows/inference-job.ts` exports a function of this name and shape. */
export const INFERENCE_JOB_WORKFLOW = 'inferenceJob';
export type InferenceJobWorkflow = (input: InferenceJobInput) => Promise<InferenceOutcome>;

/** The workflow's argument: everything resolved, nothing left for the workflow to look up. */
export interface InferenceJobInput {
  jobId: string;
  tenant: string;
  pool: string;
  taskQueue: string;
  request: InferenceRequest;
  retry: { maxAttempts: number; initialIntervalMs: number; backoffCoefficient: number; maxIntervalMs: number };
  attemptTimeoutMs: number;
  heartbeatTimeoutMs: number;
  /** The whole job's limit, from acceptance; the execution timeout is a backstop a little later. */
  deadlineMs: number;
  /** How long an attempt may wait in the pool's queue for a worker before the job ends `timed_out`. */
  maxQueueMs?: number;
}

/** What the inference activity returns: the provider's result and which attempt produced it. */
export interface InferenceOutcome extends InferenceResult {
  attempt: number;
}

/**
 * Deleting a finished job: its data in the blob store (the job's scope: extracted text, chunks, results)
 * and its workflow history, every run of it. The history holds what the job was given and what it
 * produced — a document's URL, the prompt, chunk hashes and counts, reviewers' names and comments, an
 * inference job's whole input and output — so a job deleted on request must not linger in Temporal
 * until the namespace's retention expires it. Temporal deletes histories in the background: until it
 * has (up to a minute or so), the job can still be read, and deleting it again is harmless.
 */
import { jobScope, type BlobStore } from '../../blobs/store';
import { workflowIdFor } from '../../jobs/ids';
import type { JobResource } from '../../jobs/resource';
import type { JobClient } from './client';
import { queryString, visibilityPage } from './list';

export class JobNotDeletableError extends Error {
  constructor(readonly job: JobResource) {
    super(`job ${job.id} is ${job.status}; cancel it and delete it once it has ended`);
  }
}

/** Runs listed per visibility page while collecting a job's runs. */
const RUNS_PAGE = 100;
const NOT_FOUND = 5; // gRPC status

/** Deletes the tenant's job if it has ended; null if there is no such job. */
export async function deleteJob(jobs: JobClient, blobs: BlobStore, tenant: string, jobId: string): Promise<JobResource | null> {
  const job = await jobs.get(tenant, jobId);
  if (!job) return null;
  if (job.finishedAt === null) throw new JobNotDeletableError(job);
  // Data first: if anything below fails, the job is still there and the delete can be repeated.
  await blobs.deleteScope(jobScope(tenant, jobId));
  const workflowId = workflowIdFor(tenant, jobId);
  const earlier = (await runIdsOf(jobs, tenant, workflowId)).filter((id) => id !== job.run.id);
  const namespace = jobs.temporal.options.namespace;
  // The current run last: until it is gone, the job is still found and the delete can be repeated.
  for (const runId of [...earlier, job.run.id]) {
    await jobs.temporal.workflowService
      .deleteWorkflowExecution({ namespace, workflowExecution: { workflowId, runId } })
      .catch((err: unknown) => {
        if ((err as { code?: number }).code !== NOT_FOUND) throw err; // deleted already, or by retention
      });
  }
  return job;
}

/** Every run of the job visibility knows: its retries, and the runs a document job continued as new into. */
async function runIdsOf(jobs: JobClient, tenant: string, workflowId: string): Promise<string[]> {
  const query = `JobTenant = ${queryString(tenant)} AND WorkflowId = ${queryString(workflowId)}`;
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await visibilityPage(jobs.temporal, query, RUNS_PAGE, cursor);
    ids.push(...page.executions.map((e) => e.execution?.runId ?? '').filter(Boolean));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return ids;
}

/**
 * Deleting a finished job: its data in the blob store (the job's scope: extracted text, chunks, results)
 * and its workflow history, every run of it. The history holds what the job was given and what it
 * produced — a document's URL, the prompt, chunk hashes and counts, reviewers' names and comments, an
 * inference job's whole input and output — so a job deleted on request must not linger in Temporal
 * until the namespace's retention expires it. Temporal deletes histories in the background (up to a
 * minute or so), so a deleted job leaves a tombstone: a new, empty run under its workflow id, ended at
 * once, which the job's reads find instead of the job — it answers 404 from the moment it is deleted.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { jobScope, type BlobStore } from '../../blobs/store';
import { workflowIdFor } from '../../jobs/ids';
import type { JobResource } from '../../jobs/resource';
import type { JobsContext } from './context';
import { JobNotDeletableError } from './errors';
import { runsQuery, visibilityPage } from './visibility';

/** Runs listed per visibility page while collecting a job's runs. */
const RUNS_PAGE = 100;
const NOT_FOUND = 5; // gRPC status
/** The tombstone's workflow type and task queue: no worker runs it, it is ended as soon as it is started. */
const TOMBSTONE = { workflowType: 'deletedJob', taskQueue: 'switchyard-deleted-jobs' };

/** Deletes the tenant's job if it has ended; null if there is no such job. */
export async function deleteJob(
  ctx: Pick<JobsContext, 'temporal' | 'getJob'>,
  blobs: Pick<BlobStore, 'deleteScope'>,
  tenant: string,
  jobId: string,
): Promise<JobResource | null> {
  const job = await ctx.getJob(tenant, jobId);
  if (!job) return null;
  if (job.finishedAt === null) throw new JobNotDeletableError(job);
  // Data first: if anything below fails, the job is still there and the delete can be repeated.
  await blobs.deleteScope(jobScope(tenant, jobId));
  const workflowId = workflowIdFor(tenant, jobId);
  const earlier = (await runIdsOf(ctx.temporal, tenant, workflowId)).filter((id) => id !== job.run.id);
  const namespace = ctx.temporal.options.namespace;
  // The current run last: until it is gone, the job is still found and the delete can be repeated.
  for (const runId of [...earlier, job.run.id]) {
    await ctx.temporal.workflowService
      .deleteWorkflowExecution({ namespace, workflowExecution: { workflowId, runId } })
      .catch((err: unknown) => {
        if ((err as { code?: number }).code !== NOT_FOUND) throw err; // deleted already, or by retention
      });
  }
  // Last, so that a delete that failed above is still found and can be repeated.
  await leaveTombstone(ctx.temporal, workflowId);
  return job;
}

/**
 * The workflow id's newest run becomes one without the job's search attributes, which reads as no job
 * of any tenant's (see JobReader.describe); the Temporal UI shows it as a deleted job.
 */
async function leaveTombstone(client: Client, workflowId: string): Promise<void> {
  const handle = await client.workflow.start(TOMBSTONE.workflowType, {
    workflowId,
    taskQueue: TOMBSTONE.taskQueue,
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    // A delete repeated at the same moment finds this one running.
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: 'A deleted job: its history is removed',
  });
  await handle.terminate('the job was deleted').catch((err: unknown) => {
    if (!(err instanceof WorkflowNotFoundError)) throw err; // ended already by that repeated delete
  });
}

/** Every run of the job visibility knows: its retries, and the runs a document job continued as new into. */
async function runIdsOf(client: Client, tenant: string, workflowId: string): Promise<string[]> {
  const query = runsQuery(tenant, workflowId);
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await visibilityPage(client, query, RUNS_PAGE, cursor);
    ids.push(...page.executions.map((e) => e.execution?.runId ?? '').filter(Boolean));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return ids;
}

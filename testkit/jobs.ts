/**
 * Reading benchmark jobs back from Temporal: waiting for a number to complete (one visibility count
 * every few hundred ms, not a call per job), their start/close times, a history's event types, and a
 * workflow's history over all its runs.
 */
import type { Client } from '@temporalio/client';
import { INFERENCE_JOB_WORKFLOW } from '../src/jobs/inference-contract';

const POLL_MS = 250;

/** The visibility query for the Switchyard jobs on one workflow task queue. */
export function jobsQuery(workflowTaskQueue: string): string {
  return `WorkflowType = '${INFERENCE_JOB_WORKFLOW}' AND TaskQueue = '${workflowTaskQueue}'`;
}

/** Resolves once `expected` executions matching `query` have completed; fails at once if any ended otherwise. */
export async function waitForCompleted(client: Client, query: string, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { groups } = await client.workflow.count(`${query} GROUP BY ExecutionStatus`);
    const by = new Map(groups.map((g) => [String(g.groupValues[0]), g.count]));
    const completed = by.get('Completed') ?? 0;
    const other = [...by].filter(([status]) => status !== 'Completed' && status !== 'Running');
    if (other.length) throw new Error(`jobs ended other than Completed: ${other.map(([s, n]) => `${n} ${s}`).join(', ')}`);
    if (completed >= expected) return;
    if (Date.now() > deadline) throw new Error(`only ${completed} of ${expected} jobs completed within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export interface ClosedJob {
  startMs: number;
  closeMs: number;
  historyLength: number;
}

/** Completed executions matching `query`, by workflow id, with the server's start and close times. */
export async function completedJobs(client: Client, query: string): Promise<Map<string, ClosedJob>> {
  const jobs = new Map<string, ClosedJob>();
  for await (const wf of client.workflow.list({ query: `${query} AND ExecutionStatus = 'Completed'`, pageSize: 1000 })) {
    jobs.set(wf.workflowId, { startMs: wf.startTime.getTime(), closeMs: wf.closeTime?.getTime() ?? NaN, historyLength: wf.historyLength });
  }
  return jobs;
}

/** A workflow's history over all its runs (continue-as-new starts a new run of the same id). */
export interface RunsHistory {
  runs: number;
  events: number;
  bytes: number;
}

/**
 * Events and bytes of every run of `workflowId`, summed, once visibility has closed them all: its close
 * record can trail a workflow that has ended by a moment, and an open run's length is not final.
 */
export async function historyOverRuns(client: Client, workflowId: string, timeoutMs = 60_000): Promise<RunsHistory> {
  for (const deadline = Date.now() + timeoutMs; ; await new Promise((resolve) => setTimeout(resolve, POLL_MS))) {
    const history: RunsHistory = { runs: 0, events: 0, bytes: 0 };
    let open = 0;
    for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      history.runs++;
      history.events += run.historyLength;
      history.bytes += run.historySize ?? 0;
      if (run.status.name === 'RUNNING') open++;
    }
    if (open === 0 && history.runs > 0) return history;
    if (Date.now() > deadline) throw new Error(`${workflowId}: ${open} of ${history.runs} runs still open after ${timeoutMs / 1000} s`);
  }
}

/** A history's event types in order, e.g. `WorkflowExecutionStarted`, from the attributes each event carries. */
export async function historyEventTypes(client: Client, workflowId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).map((event) => {
    const key = Object.keys(event).find((k) => k.endsWith('EventAttributes') && event[k as keyof typeof event] != null);
    return key ? key[0]!.toUpperCase() + key.slice(1, -'EventAttributes'.length) : 'Unknown';
  });
}

const ACTIVITY_TASK_QUEUE = 2; // TASK_QUEUE_TYPE_ACTIVITY

/** Tasks waiting on an activity queue (approximate; the server's own statistic). */
export async function activityBacklog(client: Client, taskQueue: string): Promise<number> {
  const { stats } = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: ACTIVITY_TASK_QUEUE,
    reportStats: true,
  });
  if (!stats) throw new Error('this Temporal server does not report task-queue statistics');
  return Number(stats.approximateBacklogCount ?? 0);
}

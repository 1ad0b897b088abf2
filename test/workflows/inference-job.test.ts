/**
 * The inference workflow on Temporal's time-skipping test server, with stub activities (Temporal's
 * own testing model): retry policy, non-retryable types, attempt limits, and a day-long deadline
 * that passes in seconds. Ends with a replay of a recorded history to catch non-determinism.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { InferenceActivities } from '../../activities';
import { DEADLINE_EXCEEDED } from '../../src/jobs/job';
import type { InferenceJobInput } from '../../src/jobs/inference-contract';
import type { InferenceRequest } from '../../src/inference/provider';
import { inferenceJob } from '../../workflows';
import { startTimeSkipping } from '../../testkit/time-skipping';
import { eventually } from '../../testkit/wait';

const WORKFLOWS_PATH = require.resolve('../../workflows');
let env: TestWorkflowEnvironment;

before(async () => {
  env = await startTimeSkipping();
});
after(async () => {
  await env?.teardown();
});

function jobInput(overrides: Partial<InferenceJobInput> = {}): InferenceJobInput {
  return {
    jobId: 'job-TEST',
    tenant: 'acme',
    pool: 'stub',
    taskQueue: `pool-${randomUUID()}`,
    request: { task: 'sentiment', text: 'fine' },
    retry: { maxAttempts: 5, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60_000 },
    attemptTimeoutMs: 60_000,
    heartbeatTimeoutMs: 10_000,
    deadlineMs: 3_600_000,
    ...overrides,
  };
}

/** Runs the workflow with one workflow worker and one pool worker whose activity is `runInference`. */
async function run(
  input: InferenceJobInput,
  runInference: InferenceActivities['runInference'],
  startOptions: { workflowExecutionTimeout?: number } = {},
) {
  const workflowQueue = `wf-${randomUUID()}`;
  const workflows = await Worker.create({ connection: env.nativeConnection, taskQueue: workflowQueue, workflowsPath: WORKFLOWS_PATH });
  const pool = await Worker.create({ connection: env.nativeConnection, taskQueue: input.taskQueue, activities: { runInference } });
  const workflowId = `test-${randomUUID()}`;
  const outcome = await workflows.runUntil(
    pool.runUntil(
      env.client.workflow.execute(inferenceJob, { workflowId, taskQueue: workflowQueue, args: [input], ...startOptions }).then(
        (value) => ({ value, error: undefined }),
        (error: unknown) => ({ value: undefined, error }),
      ),
    ),
  );
  return { ...outcome, handle: env.client.workflow.getHandle(workflowId) };
}

const attemptOf = () => Context.current().info.attempt;
const ok = async (request: InferenceRequest) => ({ task: request.task, model: 'stub', output: { ok: true }, attempt: attemptOf() });

test('a one-call job writes the 11 events of a bare one-activity workflow: no timer, no upsert', async () => {
  const { handle } = await run(jobInput(), ok);
  const { events } = await handle.fetchHistory();
  const types = (events ?? []).map((e) => temporal.api.enums.v1.EventType[e.eventType!]);
  assert.deepEqual(types, [
    'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED',
    'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED',
    'EVENT_TYPE_WORKFLOW_TASK_STARTED',
    'EVENT_TYPE_WORKFLOW_TASK_COMPLETED',
    'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED',
    'EVENT_TYPE_ACTIVITY_TASK_STARTED',
    'EVENT_TYPE_ACTIVITY_TASK_COMPLETED',
    'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED',
    'EVENT_TYPE_WORKFLOW_TASK_STARTED',
    'EVENT_TYPE_WORKFLOW_TASK_COMPLETED',
    'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED',
  ]);
});

test('retryable provider failures are retried with backoff until one succeeds', async () => {
  const { value } = await run(jobInput(), async (request) => {
    if (attemptOf() < 3) throw ApplicationFailure.retryable('provider down', 'ProviderUnavailable');
    return ok(request);
  });
  assert.equal(value?.attempt, 3);
});

test('a provider rejection is not retried, even when thrown as retryable', async () => {
  let calls = 0;
  const { error } = await run(jobInput(), async () => {
    calls++;
    throw ApplicationFailure.retryable('bad request', 'ProviderRejected');
  });
  assert.ok(error instanceof WorkflowFailedError);
  assert.equal(calls, 1);
});

test('attempts stop at maxAttempts', async () => {
  let calls = 0;
  const { error } = await run(
    jobInput({ retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60_000 } }),
    async () => {
      calls++;
      throw ApplicationFailure.retryable('provider down', 'ProviderUnavailable');
    },
  );
  assert.ok(error instanceof WorkflowFailedError);
  assert.equal(calls, 3);
});

const DAY = 86_400_000;
const HOUR = 3_600_000;
const alwaysDown = async (): Promise<never> => {
  throw ApplicationFailure.retryable('provider down', 'ProviderUnavailable');
};
const deadlineFailureType = (error: unknown) =>
  error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure ? error.cause.type : undefined;

test('a job still retrying at its day-long deadline ends JobDeadlineExceeded (time skipped)', async () => {
  const started = Date.now();
  const input = jobInput({
    deadlineMs: DAY,
    retry: { maxAttempts: 100, initialIntervalMs: HOUR, backoffCoefficient: 1, maxIntervalMs: HOUR },
  });
  const { error } = await run(input, alwaysDown, { workflowExecutionTimeout: DAY + 60_000 });
  assert.equal(deadlineFailureType(error), DEADLINE_EXCEEDED);
  assert.ok(Date.now() - started < 60_000, 'a day of timers should pass in seconds');
});

test('a retry that would start after the deadline ends the job JobDeadlineExceeded at once', async () => {
  const input = jobInput({
    deadlineMs: HOUR,
    retry: { maxAttempts: 100, initialIntervalMs: 2 * HOUR, backoffCoefficient: 1, maxIntervalMs: 2 * HOUR },
  });
  const { error } = await run(input, alwaysDown, { workflowExecutionTimeout: HOUR + 60_000 });
  assert.equal(deadlineFailureType(error), DEADLINE_EXCEEDED);
});

test('an attempt still running at the deadline is given up and the job ends JobDeadlineExceeded', async () => {
  const input = jobInput({ deadlineMs: 2000 });
  const { error } = await run(input, async () => {
    // Heartbeat until the server gives the attempt up: it learns so through the heartbeat.
    for (;;) {
      Context.current().heartbeat();
      await Context.current().sleep(100);
    }
  });
  assert.equal(deadlineFailureType(error), DEADLINE_EXCEEDED);
});

test('a job no worker picks up before its deadline ends JobDeadlineExceeded, not JobQueueTimeout', async () => {
  // No worker polls the pool's queue; with a maxQueueMs past the deadline, and without one.
  for (const maxQueueMs of [5000, undefined]) {
    const workflowQueue = `wf-${randomUUID()}`;
    const workflows = await Worker.create({ connection: env.nativeConnection, taskQueue: workflowQueue, workflowsPath: WORKFLOWS_PATH });
    const input = jobInput({ deadlineMs: 2000, maxQueueMs });
    const error = await workflows.runUntil(
      env.client.workflow
        .execute(inferenceJob, { workflowId: `test-${randomUUID()}`, taskQueue: workflowQueue, args: [input] })
        .catch((e: unknown) => e),
    );
    assert.equal(deadlineFailureType(error), DEADLINE_EXCEEDED, `maxQueueMs ${maxQueueMs}`);
  }
});

test('a cancelled job is cancelled, not timed out', async () => {
  const input = jobInput();
  const workflowQueue = `wf-${randomUUID()}`;
  const workflows = await Worker.create({ connection: env.nativeConnection, taskQueue: workflowQueue, workflowsPath: WORKFLOWS_PATH });
  let running = false;
  const pool = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: input.taskQueue,
    activities: {
      async runInference() {
        running = true;
        // Heartbeat until cancelled: cancellation reaches an activity only through heartbeats.
        for (;;) {
          Context.current().heartbeat();
          await Context.current().sleep(100);
        }
      },
    },
  });
  const handle = await env.client.workflow.start(inferenceJob, {
    workflowId: `test-${randomUUID()}`,
    taskQueue: workflowQueue,
    args: [input],
  });
  const error = await workflows.runUntil(
    pool.runUntil(async () => {
      await eventually('the inference to run', () => (running ? true : undefined));
      await handle.cancel();
      return handle.result().catch((e: unknown) => e);
    }),
  );
  assert.ok(error instanceof WorkflowFailedError);
  assert.ok(error.cause instanceof CancelledFailure);
  assert.equal((await handle.describe()).status.name, 'CANCELLED');
});

test('a recorded history replays without non-determinism', async () => {
  const { handle } = await run(jobInput(), ok);
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, handle.workflowId);
});

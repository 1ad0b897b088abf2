/**
 * A message's stages: a stage's handlers run side by side (an inference activity on their pool, or a
 * child inference job for a long one) until its fan-in policy decides, and the handlers it no longer
 * needs are cancelled.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { InferenceActivities } from '../../activities';
import {
  CHAT_FAILURES,
  type ConversationInput,
  type FailureInfo,
  type MessageRecord,
  type StageRecord,
} from '../../src/conversations/contract';
import { decideFanIn } from '../../src/conversations/fan-in';
import type { ChatHandler, ChatStage } from '../../src/conversations/pipeline';
import type { ChatMessage, InferenceRequest } from '../../src/inference/provider';
import type { InferenceOutcome } from '../../src/jobs/inference-contract';
import { NON_RETRYABLE_ERRORS } from '../../src/jobs/job';
import { poolTaskQueue } from '../../src/temporal/task-queues';
import { inferenceJob } from '../inference-job';
import { attemptsOf, failureOf } from './failures';
import { logEvent, now } from './records';

/** Backstop for a long handler's child workflow past its own deadline. */
const CHILD_BACKSTOP_MS = 60_000;

/** Runs a stage's handlers side by side until its fan-in decides; true if it succeeded. */
export async function runStage(input: ConversationInput, record: MessageRecord, stage: ChatStage, rec: StageRecord): Promise<boolean> {
  rec.status = 'running';
  const scopes = stage.handlers.map((handler, j) => startHandler(input, record, rec, handler, j));
  const decision = () =>
    decideFanIn(
      stage.fanIn,
      rec.handlers.map((h) => h.status),
    );
  await condition(() => decision().result !== 'pending');
  const { result, cancel } = decision();
  for (const j of cancel) {
    scopes[j]!.cancel();
    cancelHandler(record, rec, j);
  }
  rec.status = result === 'succeeded' ? 'succeeded' : 'failed';
  logEvent(record, { type: 'stage.completed', stage: rec.index, status: rec.status });
  return result === 'succeeded';
}

/** Starts the stage's `j`th handler in its own scope, so the fan-in can cancel it; its outcome lands in the record when it ends. */
function startHandler(
  input: ConversationInput,
  record: MessageRecord,
  rec: StageRecord,
  handler: ChatHandler,
  j: number,
): CancellationScope {
  const outcome = rec.handlers[j]!;
  const scope = new CancellationScope();
  outcome.status = 'running';
  outcome.startedAt = now();
  logEvent(record, { type: 'handler.started', stage: rec.index, handler: handler.name });
  scope
    .run(() => runHandler(input, handler, record))
    .then(
      (result) => {
        if (outcome.status !== 'running') return;
        Object.assign(outcome, {
          status: 'succeeded',
          output: result.output,
          model: result.model,
          usage: result.usage ?? null,
          attempts: result.attempt,
          finishedAt: now(),
        });
        logEvent(record, {
          type: 'handler.succeeded',
          stage: rec.index,
          handler: handler.name,
          output: result.output,
          attempts: result.attempt,
        });
      },
      (err: unknown) => {
        if (outcome.status !== 'running') return;
        if (isCancellation(err)) return cancelHandler(record, rec, j);
        const error = failureOf(err);
        const attempts = attemptsOf(err, handler.retry.maxAttempts);
        Object.assign(outcome, { status: 'failed', error, attempts, finishedAt: now() });
        logEvent(record, { type: 'handler.failed', stage: rec.index, handler: handler.name, error, attempts });
      },
    );
  return scope;
}

/** One handler: an inference activity on its pool's queue, or a child inference job for a long one. */
function runHandler(input: ConversationInput, handler: ChatHandler, record: MessageRecord): Promise<InferenceOutcome> {
  const request = requestFor(handler, record.text);
  const taskQueue = poolTaskQueue(input.taskQueuePrefix, handler.pool);
  const retry = handler.retry;
  const heartbeatTimeoutMs = Math.min(input.heartbeatTimeoutMs, handler.timeoutMs);
  if (handler.long) {
    return executeChild(inferenceJob, {
      workflowId: `${workflowInfo().workflowId}/${record.seq}/${handler.name}`,
      args: [
        {
          jobId: `${input.conversationId}/${record.seq}/${handler.name}`,
          tenant: input.tenant,
          pool: handler.pool,
          taskQueue,
          request,
          retry,
          attemptTimeoutMs: handler.timeoutMs,
          heartbeatTimeoutMs,
          deadlineMs: handler.deadlineMs,
        },
      ],
      workflowExecutionTimeout: handler.deadlineMs + CHILD_BACKSTOP_MS,
      cancellationType: ChildWorkflowCancellationType.TRY_CANCEL,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    });
  }
  const { runInference } = proxyActivities<InferenceActivities>({
    taskQueue,
    startToCloseTimeout: handler.timeoutMs,
    scheduleToCloseTimeout: handler.deadlineMs,
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: {
      maximumAttempts: retry.maxAttempts,
      initialInterval: retry.initialIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      maximumInterval: retry.maxIntervalMs,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERRORS],
    },
    // A handler that lost the fan-in is let go at once; its cancellation reaches it through heartbeats.
    cancellationType: ActivityCancellationType.TRY_CANCEL,
    summary: `${handler.name}: ${handler.task} on pool ${handler.pool} · message ${record.seq}`,
  });
  return runInference(request);
}

/** What a handler sends its pool: the message text, or for chat the handler's prompt and the text as the user's turn. */
function requestFor(handler: ChatHandler, text: string): InferenceRequest {
  if (handler.task !== 'chat') return { task: handler.task, text, model: handler.model };
  const messages: ChatMessage[] = handler.prompt ? [{ role: 'system', content: handler.prompt }] : [];
  messages.push({ role: 'user', content: text });
  return { task: handler.task, messages, model: handler.model };
}

function cancelHandler(record: MessageRecord, rec: StageRecord, j: number): void {
  const outcome = rec.handlers[j]!;
  Object.assign(outcome, { status: 'cancelled', finishedAt: now() });
  logEvent(record, { type: 'handler.cancelled', stage: rec.index, handler: outcome.name });
}

/** A stage after a failed one: it and its handlers never run. */
export function skipStage(rec: StageRecord): void {
  rec.status = 'skipped';
  for (const h of rec.handlers) h.status = 'skipped';
}

export function stageFailure(rec: StageRecord): FailureInfo {
  const failures = rec.handlers.filter((h) => h.error).map((h) => `${h.name}: ${h.error!.message}`);
  const stage = rec.name ? `stage ${rec.index} (${rec.name})` : `stage ${rec.index}`;
  return { type: CHAT_FAILURES.stageFailed, message: `${stage} failed${failures.length ? ` — ${failures.join('; ')}` : ''}` };
}

/** A message the conversation's cancellation caught, running or waiting: it ends `cancelled`, its handlers cancelled or skipped. */
export function cancelMessage(record: MessageRecord): void {
  for (const rec of record.stages) {
    rec.handlers.forEach((h, j) => {
      if (h.status === 'running') cancelHandler(record, rec, j);
      else if (h.status === 'pending') h.status = 'skipped';
    });
    if (rec.status === 'running') rec.status = 'cancelled';
    else if (rec.status === 'pending') rec.status = 'skipped';
  }
  Object.assign(record, {
    status: 'cancelled',
    error: { type: CHAT_FAILURES.conversationCancelled, message: 'the conversation was cancelled' },
    finishedAt: now(),
  });
  logEvent(record, { type: 'message.completed', status: 'cancelled' });
}

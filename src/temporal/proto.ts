/** Small readers for raw Temporal protos (decoded by ./decoded.ts first): payloads, timestamps, failures. */
import { defaultPayloadConverter } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { JobFailure } from '../jobs/resource';

type Timestamp = Parameters<typeof optionalTsToMs>[0];
type Payload = temporal.api.common.v1.IPayload;
type Failure = temporal.api.failure.v1.IFailure;
type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

const ACTIVITY_STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** Whether a worker is running the pending activity now, rather than it waiting (for a worker or a retry). */
export const isStarted = (activity: PendingActivity | undefined): boolean => activity?.state === ACTIVITY_STARTED;

/** Attempts begun so far: the current one counts once a worker has started it. */
export const attemptsBegun = (activity: PendingActivity | undefined): number => (activity?.attempt ?? 1) - (isStarted(activity) ? 0 : 1);

export function isoTime(ts: Timestamp): string | null {
  const ms = optionalTsToMs(ts);
  return ms === undefined ? null : new Date(ms).toISOString();
}

export function decodePayload<T>(payload: Payload | null | undefined): T | undefined {
  return payload ? defaultPayloadConverter.fromPayload<T>(payload) : undefined;
}

/**
 * What a failure chain is about: its first application failure (e.g. the provider's error inside an
 * ActivityFailure), else its root. An application failure is raised on purpose and names the reason
 * itself, so its own cause (e.g. the cancelled call under JobDeadlineExceeded) is detail, not the reason.
 */
export function rootFailure(failure: Failure | null | undefined): JobFailure | null {
  if (!failure) return null;
  let f = failure;
  while (f.cause && !f.applicationFailureInfo) f = f.cause;
  const type =
    f.applicationFailureInfo?.type ||
    (f.timeoutFailureInfo ? `Timeout${timeoutKind(f.timeoutFailureInfo.timeoutType)}` : undefined) ||
    (f.canceledFailureInfo ? 'Cancelled' : undefined) ||
    (f.terminatedFailureInfo ? 'Terminated' : undefined) ||
    'Error';
  return { type, message: messageOf(f) };
}

/** A failure's message, from its encoded attributes when the failure converter moved it there (./failure-converter.ts). */
function messageOf(f: Failure): string {
  const encoded = decodePayload<{ message?: unknown }>(f.encodedAttributes)?.message;
  return typeof encoded === 'string' ? encoded : (f.message ?? '');
}

const TIMEOUT_KINDS: Record<number, string> = { 1: 'StartToClose', 2: 'ScheduleToStart', 3: 'ScheduleToClose', 4: 'Heartbeat' };
function timeoutKind(t: number | null | undefined): string {
  return TIMEOUT_KINDS[t ?? 0] ?? '';
}

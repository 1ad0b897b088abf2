/**
 * The base of Switchyard's own errors. Each error is a class of its own with a `name`, which logs show
 * and which becomes the failure type when the error leaves an activity, and a stable `code` that callers
 * branch on (the API maps codes to problems in src/api/error-problems.ts). Codes are unique across
 * Switchyard; messages are for people and may change.
 */
export abstract class SwitchyardError extends Error {
  abstract override readonly name: string;
  abstract readonly code: string;
}

/**
 * Something the person running a command must do first — install a package, create a namespace, start the
 * cluster. Its message says what; the command line prints it without a stack trace.
 */
export class ActionNeeded extends SwitchyardError {
  override readonly name = 'ActionNeeded';
  readonly code = 'action-needed';
}

/**
 * `value` itself when it is an Error (an abort signal's reason usually is: Temporal's CancelledFailure, an
 * AbortError), else an Error that says what was thrown and carries it as its cause.
 */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value), { cause: value });
}

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

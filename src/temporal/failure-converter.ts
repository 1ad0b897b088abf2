/**
 * Failures with their message and stack trace moved into a payload (Temporal's "encoded attributes"),
 * which the payload codec encrypts: a provider's error may quote a prompt. Failure types stay readable,
 * so jobs are still filed and counted by them. Loaded by path — clients and workers through their data
 * converter (./codec.ts), workflow code from its bundle — so it imports only @temporalio/common.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });

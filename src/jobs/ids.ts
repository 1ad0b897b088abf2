/**
 * Job ids and the workflow ids behind them. A workflow id is `<tenant>/<job id>`: it says whose job it
 * is in the Temporal UI, and the API can check ownership from the id alone before any call.
 */
import { createHash } from 'node:crypto';
import { ulid } from 'ulid';

const JOB_ID = /^job-[0-9A-Z]{26}$/;
/** A batch's id, as a job's: `batch-` and a ULID (or, for an idempotency key, 26 characters of its hash). */
export const BATCH_ID = /^batch-[0-9A-Z]{26}$/;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A fresh, time-sortable job id. */
export function newJobId(): string {
  return `job-${ulid()}`;
}

export function newBatchId(): string {
  return `batch-${ulid()}`;
}

/** 26 Crockford characters of a hash of the tenant and key: the same tenant and key always give the same id. */
function keyedId(tenant: string, key: string): string {
  const digest = createHash('sha256').update(`${tenant}\n${key}`).digest();
  let id = '';
  for (let i = 0; i < 26; i++) id += CROCKFORD[digest[i]! % 32];
  return id;
}

/** The job id for a client's idempotency key: the same tenant and key always give the same job. */
export function jobIdForIdempotencyKey(tenant: string, key: string): string {
  return `job-${keyedId(tenant, key)}`;
}

/** The batch id for a client's idempotency key, as a job's. */
export function batchIdForIdempotencyKey(tenant: string, key: string): string {
  return `batch-${keyedId(tenant, key)}`;
}

export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

export function workflowIdFor(tenant: string, jobId: string): string {
  return `${tenant}/${jobId}`;
}

/** A stable hash of a request body, to tell a true repeat from a different request under the same key. */
export function requestFingerprint(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

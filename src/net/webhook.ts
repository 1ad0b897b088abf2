/**
 * Signed webhooks in the Standard Webhooks scheme: `webhook-id` (one per event, the same on every
 * retry), `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature: v1,<base64
 * HMAC-SHA256>` over `<id>.<timestamp>.<body>`, keyed with the UTF-8 bytes of the secret. Receivers
 * check it with verifyWebhook (or any Standard Webhooks library, given `whsec_` + base64 of the secret).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SwitchyardError } from '../errors';
import { parseRetryAfter } from '../inference/openai';
import { fetchOutbound, type OutboundPolicy } from './outbound';

export interface WebhookMessage {
  id: string;
  /** Unix seconds. */
  timestamp: number;
  body: string;
}

export class WebhookVerificationError extends SwitchyardError {
  override readonly name = 'WebhookVerificationError';
  readonly code = 'webhook-unverified';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/**
 * A delivery attempt did not get a 2xx. Not `retryable`: a redirect, or a 4xx other than 408 and 429
 * (the receiver refuses this delivery and will again).
 */
export class WebhookFailedError extends SwitchyardError {
  override readonly name = 'WebhookFailedError';
  readonly code = 'webhook-failed';
  constructor(
    message: string,
    readonly status: number,
    readonly retryable: boolean,
    /** The receiver's Retry-After, in ms, at most an hour. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** A receiver cannot park deliveries for longer than this with Retry-After. */
const MAX_RETRY_AFTER_MS = 3_600_000;

const signature = (secret: string, m: WebhookMessage) =>
  createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${m.id}.${m.timestamp}.${m.body}`).digest();

export function signWebhook(secret: string, message: WebhookMessage): Record<string, string> {
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(message.timestamp),
    'webhook-signature': `v1,${signature(secret, message).toString('base64')}`,
  };
}

const header = (headers: IncomingHttpHeaders | Record<string, string | undefined>, name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Checks a received webhook: the signature over the raw body as received, and a timestamp within
 * `toleranceS` of now (a replayed old message fails). Returns true, or throws WebhookVerificationError
 * saying why. `headers` as node gives them (lower-case names).
 */
export function verifyWebhook(
  secret: string,
  headers: IncomingHttpHeaders | Record<string, string | undefined>,
  body: string | Buffer,
  toleranceS = 300,
  nowMs = Date.now(),
): true {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures)
    throw new WebhookVerificationError('webhook-id, webhook-timestamp and webhook-signature are all needed');
  const seconds = /^\d+$/.test(timestamp) ? Number(timestamp) : NaN;
  if (!Number.isFinite(seconds)) throw new WebhookVerificationError('webhook-timestamp is not unix seconds');
  if (Math.abs(nowMs / 1000 - seconds) > toleranceS)
    throw new WebhookVerificationError(`webhook-timestamp is more than ${toleranceS} s from now`);
  const expected = signature(secret, { id, timestamp: seconds, body: body.toString() });
  // The header may carry several space-separated signatures (while a secret is being rotated).
  for (const candidate of signatures.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    const given = Buffer.from(value ?? '', 'base64');
    if (version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected)) return true;
  }
  throw new WebhookVerificationError('no signature matches');
}

export interface WebhookDelivery {
  url: string;
  /** The same id on every attempt, so receivers can drop duplicates. */
  id: string;
  event: unknown;
  secret: string;
  policy: OutboundPolicy;
  signal?: AbortSignal;
}

/**
 * One delivery attempt: a signed JSON POST through the SSRF guard. Resolves with the 2xx status.
 * Throws WebhookFailedError for any other status, and fetchOutbound's errors (UrlRefusedError, timeout,
 * network) as they are; retrying is the caller's (the activity's retry policy).
 */
export async function deliverWebhook(d: WebhookDelivery): Promise<{ status: number }> {
  const body = JSON.stringify(d.event);
  const headers = {
    'content-type': 'application/json',
    ...signWebhook(d.secret, { id: d.id, timestamp: Math.floor(Date.now() / 1000), body }),
  };
  // Redirects are not followed: a signed delivery goes to the URL it was given for, and a 301/302
  // would turn the POST into a GET without the event.
  const res = await fetchOutbound(d.url, { method: 'POST', headers, body, redirect: 'manual' }, d.policy, d.signal);
  const status = res.status;
  if (status >= 200 && status < 300) return { status };
  if (status >= 300 && status < 400) {
    throw new WebhookFailedError(
      `the webhook receiver answered HTTP ${status}, a redirect, which is not followed: give the URL it redirects to`,
      status,
      false,
    );
  }
  const retryable = status < 400 || status >= 500 || status === 408 || status === 429;
  const retryAfter = parseRetryAfter(header(res.headers, 'retry-after') ?? null);
  const said = res.body.toString('utf8', 0, 200).trim();
  throw new WebhookFailedError(
    `the webhook receiver answered HTTP ${status}${said ? `: ${said}` : ''}`,
    status,
    retryable,
    retryAfter === undefined ? undefined : Math.min(retryAfter, MAX_RETRY_AFTER_MS),
  );
}

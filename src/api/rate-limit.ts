/**
 * Per-tenant request rate limits. Each API replica keeps a token bucket per tenant holding one second of
 * its share of the tenant's rate: the tenant's requests per second divided by the replica count, so that
 * N replicas behind a load balancer admit the tenant's rate between them and never more (docs/api.md,
 * "Rate limits"). Every answer to a limited tenant says where it stands in the RateLimit-Policy and
 * RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10; over its rate it gets 429 with Retry-After.
 * Operators are not tenants and are never limited.
 */
import type { RequestHandler } from 'express';
import type { Caller } from './auth';
import { Problem } from './problems';

/** The policy's name in the RateLimit fields. */
export const RATE_LIMIT_POLICY = 'tenant';
/** The bucket refills in this window (the policy's `w`): a second's worth of requests, no more, may come at once. */
const WINDOW_S = 1;

export interface BucketState {
  allowed: boolean;
  /** Whole requests left now (`r`). */
  remaining: number;
  /** Seconds until the bucket is full again (`t`). */
  resetS: number;
  /** Seconds until the next request would be admitted: 0 when it would be now. */
  retryAfterS: number;
}

/** `quota` requests per WINDOW_S, refilled continuously; starts full. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly quota: number,
    now: number,
  ) {
    this.tokens = quota;
    this.at = now;
  }

  /** Takes one request's token if there is one; `now` in milliseconds on a monotonic clock. */
  take(now: number): BucketState {
    const perSecond = this.quota / WINDOW_S;
    this.tokens = Math.min(this.quota, this.tokens + (Math.max(0, now - this.at) / 1000) * perSecond);
    this.at = now;
    const allowed = this.tokens >= 1;
    if (allowed) this.tokens -= 1;
    return {
      allowed,
      remaining: Math.floor(this.tokens),
      resetS: Math.ceil((this.quota - this.tokens) / perSecond),
      retryAfterS: this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / perSecond),
    };
  }
}

/**
 * One replica's quota of a tenant's `requestsPerSecond` (0: no limit): its share, rounded down so the
 * replicas together stay within the rate, and at least 1 so a small rate still lets requests through.
 */
export function replicaQuota(requestsPerSecond: number, replicas: number): number {
  return requestsPerSecond === 0 ? 0 : Math.max(1, Math.floor(requestsPerSecond / replicas));
}

/** After `authenticate`: counts each tenant's requests in its bucket and refuses those over its quota. */
export function tenantRateLimit(quotaOf: (tenant: string) => number, now: () => number = () => performance.now()): RequestHandler {
  const buckets = new Map<string, TokenBucket>();
  return (_req, res, next) => {
    const { tenant, operator } = res.locals.caller as Caller;
    if (operator || tenant === undefined) return next();
    const quota = quotaOf(tenant);
    if (quota === 0) return next();
    // Tenants come from configured keys only, so the map stays as small as the key list.
    let bucket = buckets.get(tenant);
    if (bucket?.quota !== quota) buckets.set(tenant, (bucket = new TokenBucket(quota, now())));
    const state = bucket.take(now());
    res.set('RateLimit-Policy', `"${RATE_LIMIT_POLICY}";q=${quota};w=${WINDOW_S}`);
    res.set('RateLimit', `"${RATE_LIMIT_POLICY}";r=${state.remaining};t=${state.resetS}`);
    if (state.allowed) return next();
    res.set('Retry-After', String(state.retryAfterS));
    next(
      new Problem('rate-limited', `Over ${quota} requests per ${WINDOW_S} s for tenant ${tenant}; retry after ${state.retryAfterS} s`, {
        'violated-policies': [RATE_LIMIT_POLICY],
      }),
    );
  };
}

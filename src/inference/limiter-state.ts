/**
 * A fleet limiter: one pool's (or one provider account's) token budget and circuit breaker, held by the
 * limiter workflow (workflows/pool-limiter.ts) and asked by every worker of the pools that share it.
 * Pure: no I/O, time passed in as `now` — the workflow runs it deterministically, the API imports its types.
 */
import * as breaker from './breaker';
import type { BreakerSettings, BreakerState, Outcome } from './breaker';
import * as tokens from './token-window';
import type { TokenWindowState } from './token-window';

export type { BreakerSettings, Outcome } from './breaker';

/** What `limiterStateQuery` answers (and the API shows per pool). */
export interface LimiterState {
  limiter: string;
  /** null: no token limit. */
  tokens: { perMinute: number; reservedInWindow: number; available: number } | null;
  breaker: {
    enabled: boolean;
    state: 'closed' | 'open' | 'half-open';
    openUntil: string | null;
    recentFailures: number;
    /** Times opened since the limiter started. */
    opened: number;
  };
}

/** What a limiter enforces; every request carries it, so a changed configuration applies at once. */
export interface LimiterSettings {
  tokensPerMinute: number | null;
  breaker: BreakerSettings;
}

/** Everything the limiter workflow holds, carried across continue-as-new. Plain data. */
export interface LimiterData {
  limiter: string;
  window: TokenWindowState;
  breaker: BreakerState;
}

export interface AdmitRequest {
  /** Unique per call; asking again with the same id is answered the same way. */
  id: string;
  /** Estimated tokens (ignored without a token limit). */
  tokens: number;
}

export type Admission =
  | {
      id: string;
      granted: true;
      /** The breaker's test call: its outcome decides whether the pool resumes. */
      probe: boolean;
      /** Without a token limit and with the breaker closed, the asker may admit its calls locally this long. */
      leaseMs?: number;
    }
  | { id: string; granted: false; retryInMs: number; reason: string }
  /** Can never be granted (more tokens than the whole budget). */
  | { id: string; granted: false; rejected: string };

export interface Settlement {
  id: string;
  outcome: Outcome;
  /** Tokens the call actually used (the provider's usage, else the estimate; 0 if it never reached the provider). */
  tokens: number;
  retryAfterMs?: number;
}

/** One exchange with the limiter: outcomes of finished calls first, then the calls that want to go. */
export interface LimiterBatch {
  settings: LimiterSettings;
  settle: Settlement[];
  admit: AdmitRequest[];
}

/** How long a lease lets a worker admit calls without asking: how late it may learn that the breaker opened. */
export const LEASE_MS = 500;

export const newLimiter = (limiter: string): LimiterData => ({ limiter, window: tokens.emptyWindow(), breaker: breaker.closedBreaker() });

/** Applies what time alone changes: the breaker's open period ending, reservations leaving the window. */
export function advance(data: LimiterData, settings: LimiterSettings, now: number): void {
  breaker.advance(data.breaker, settings.breaker, now);
  tokens.prune(data.window, now);
}

/** Applies a batch at `now`: settlements, then admissions in order. */
export function exchange(data: LimiterData, batch: LimiterBatch, now: number): Admission[] {
  const { settings } = batch;
  advance(data, settings, now);
  for (const s of batch.settle) {
    tokens.reconcile(data.window, s.id, s.tokens);
    breaker.record(data.breaker, settings.breaker, s.id, s.outcome, s.retryAfterMs, now);
  }
  return batch.admit.map((request) => admit(data, settings, request, now));
}

function admit(data: LimiterData, settings: LimiterSettings, { id, tokens: wanted }: AdmitRequest, now: number): Admission {
  const gate = breaker.check(data.breaker, settings.breaker, id, now);
  if (gate.kind === 'wait') return { id, granted: false, retryInMs: gate.retryInMs, reason: gate.reason };
  const perMinute = settings.tokensPerMinute;
  if (perMinute !== null) {
    const r = tokens.reserve(data.window, id, wanted, perMinute, now);
    if ('tooLarge' in r) {
      return {
        id,
        granted: false,
        rejected: `the call needs an estimated ${wanted} tokens, more than the limiter's whole ${perMinute} per minute`,
      };
    }
    if (!r.granted) return { id, granted: false, retryInMs: r.retryInMs, reason: `token limit: ${perMinute} per minute` };
  }
  if (gate.kind === 'probe') {
    breaker.startProbe(data.breaker, id, now);
    return { id, granted: true, probe: true };
  }
  return { id, granted: true, probe: false, ...(perMinute === null && settings.breaker.enabled ? { leaseMs: LEASE_MS } : {}) };
}

/** The state as the query shows it at `now`. Reads only. */
export function describeLimiter(data: LimiterData, settings: LimiterSettings, now: number): LimiterState {
  const perMinute = settings.tokensPerMinute;
  const reserved = perMinute === null ? 0 : tokens.reservedTokens(data.window, now);
  const b = data.breaker;
  const phase = settings.breaker.enabled ? breaker.phaseAt(b, now) : 'closed';
  return {
    limiter: data.limiter,
    tokens: perMinute === null ? null : { perMinute, reservedInWindow: reserved, available: Math.max(0, perMinute - reserved) },
    breaker: {
      enabled: settings.breaker.enabled,
      state: phase,
      openUntil: phase === 'open' && b.openUntil !== null ? new Date(b.openUntil).toISOString() : null,
      recentFailures: breaker.recentFailures(b, settings.breaker, now),
      opened: b.opened,
    },
  };
}

/** What the API shows for a limiter that has no workflow yet: the configured limits, nothing used. */
export function neverUsedLimiter(limiter: string, settings: LimiterSettings): LimiterState {
  return describeLimiter(newLimiter(limiter), settings, 0);
}

/** When time alone next changes what the query would show: the breaker's next step, the window's next expiry. */
export function nextChanges(data: LimiterData, now: number): { breaker?: number; window?: number } {
  return { breaker: breaker.nextBreakerChange(data.breaker), window: tokens.nextExpiry(data.window, now) };
}

/** The limiter settings of a pool; null when it has neither a token limit nor an enabled breaker. */
export function limiterSettingsOf(pool: { rateLimit: { tokensPerMinute?: number }; breaker: BreakerSettings }): LimiterSettings | null {
  const settings = { tokensPerMinute: pool.rateLimit.tokensPerMinute ?? null, breaker: pool.breaker };
  return settings.tokensPerMinute === null && !settings.breaker.enabled ? null : settings;
}

/**
 * A fleet limiter: one pool's (or one provider account's) token budget, circuit breaker and the wait a
 * provider asked for (Retry-After), held by the limiter workflow (workflows/pool-limiter.ts) and asked by
 * every worker of the pools that share it. Pure: no I/O, time passed in as `now` — the workflow runs it
 * deterministically, the API imports its types.
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
  /** Until when every call waits because the provider answered with a Retry-After; null when no such wait holds. */
  retryAfterUntil: string | null;
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
  /** Until when no call goes: the latest end of a Retry-After reported (absent in state carried from a run without it). */
  retryAfterUntil?: number;
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
    }
  | { id: string; granted: false; retryInMs: number; reason: string }
  /** Can never be granted (more tokens than the whole budget). */
  | { id: string; granted: false; rejected: string };

export interface Settlement {
  id: string;
  outcome: Outcome;
  /** Tokens the call actually used (the provider's usage, else the estimate; 0 if it never reached the provider). */
  tokens: number;
  /** The provider's Retry-After on a throttled or unavailable answer: every call of the limiter waits that long. */
  retryAfterMs?: number;
}

/** One exchange with the limiter: outcomes of finished calls first, then the calls that want to go. */
export interface LimiterBatch {
  settings: LimiterSettings;
  settle: Settlement[];
  admit: AdmitRequest[];
}

export const newLimiter = (limiter: string): LimiterData => ({ limiter, window: tokens.emptyWindow(), breaker: breaker.closedBreaker() });

/** Applies what time alone changes: the breaker's open period ending, reservations leaving the window. */
export function advance(data: LimiterData, settings: LimiterSettings, now: number): void {
  breaker.advance(data.breaker, settings.breaker, now);
  tokens.prune(data.window, now);
}

/**
 * Applies a batch at `now`: settlements, then admissions in order. `holdRetryAfter`: a reported
 * Retry-After holds every call (false only where a limiter run recorded before it replays its history).
 */
export function exchange(data: LimiterData, batch: LimiterBatch, now: number, holdRetryAfter = true): Admission[] {
  const { settings } = batch;
  advance(data, settings, now);
  for (const s of batch.settle) {
    tokens.reconcile(data.window, s.id, s.tokens);
    breaker.record(data.breaker, settings.breaker, s.id, s.outcome, s.retryAfterMs, now);
    if (holdRetryAfter) holdForRetryAfter(data, settings, s, now);
  }
  return batch.admit.map((request) => admit(data, settings, request, now));
}

/**
 * A provider that answers one call with a Retry-After means the account, not the call: every call waits that
 * long from when the limiter hears of it, within the breaker's `maxOpenMs`. The breaker counts the answer apart.
 */
function holdForRetryAfter(data: LimiterData, settings: LimiterSettings, s: Settlement, now: number): void {
  if (s.retryAfterMs === undefined || (s.outcome !== 'throttled' && s.outcome !== 'unavailable')) return;
  data.retryAfterUntil = Math.max(data.retryAfterUntil ?? 0, now + Math.min(s.retryAfterMs, settings.breaker.maxOpenMs));
}

function admit(data: LimiterData, settings: LimiterSettings, { id, tokens: wanted }: AdmitRequest, now: number): Admission {
  const gate = breaker.check(data.breaker, settings.breaker, id, now);
  if (gate.kind === 'wait') return { id, granted: false, retryInMs: gate.retryInMs, reason: gate.reason };
  const heldFor = (data.retryAfterUntil ?? now) - now;
  if (heldFor > 0) return { id, granted: false, retryInMs: heldFor, reason: 'provider Retry-After' };
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
  return { id, granted: true, probe: false };
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
    retryAfterUntil: (data.retryAfterUntil ?? now) > now ? new Date(data.retryAfterUntil!).toISOString() : null,
  };
}

/** What the API shows for a limiter that has no workflow yet: the configured limits, nothing used. */
export function neverUsedLimiter(limiter: string, settings: LimiterSettings): LimiterState {
  return describeLimiter(newLimiter(limiter), settings, 0);
}

/**
 * When time alone next changes what the query would show: the breaker's next step, the window's next expiry, the end
 * of a Retry-After's hold.
 */
export function nextChanges(data: LimiterData, now: number): { breaker?: number; window?: number; retryAfter?: number } {
  const held = data.retryAfterUntil !== undefined && data.retryAfterUntil > now;
  return {
    breaker: breaker.nextBreakerChange(data.breaker),
    window: tokens.nextExpiry(data.window, now),
    retryAfter: held ? data.retryAfterUntil : undefined,
  };
}

/** Providers across a network, which may answer 429 or 503 with a Retry-After meant for every call. */
const REMOTE_PROVIDERS: readonly string[] = ['openai'];

/**
 * The limiter settings of a pool; null when it needs no limiter: no token limit, no enabled breaker, and a
 * provider on this machine (a remote one always has a limiter, to hold every call for its Retry-After).
 */
export function limiterSettingsOf(pool: {
  provider: string;
  rateLimit: { tokensPerMinute?: number };
  breaker: BreakerSettings;
}): LimiterSettings | null {
  const settings = { tokensPerMinute: pool.rateLimit.tokensPerMinute ?? null, breaker: pool.breaker };
  const needed = settings.tokensPerMinute !== null || settings.breaker.enabled || REMOTE_PROVIDERS.includes(pool.provider);
  return needed ? settings : null;
}

/**
 * The pool circuit breaker: closed → open after `failureThreshold` throttled or unavailable answers
 * within `windowMs`; open for the largest Retry-After seen (at least `minOpenMs`, growing with each
 * failed probe, at most `maxOpenMs`); then half-open, letting `probes` calls through; a probe that
 * succeeds closes it, one that fails opens it again. Pure and deterministic: time comes in as `now`.
 */
import type { PoolConfig } from '../config';

export type BreakerSettings = PoolConfig['breaker'];
export type BreakerPhase = 'closed' | 'open' | 'half-open';

/** How soon a call held back by a half-open breaker asks again: a probe's answer may come any time. */
export const PROBE_POLL_MS = 500;
/** A probe with no outcome after this is presumed lost (its worker died), and another may go. */
export const PROBE_TIMEOUT_MS = 30_000;

export interface BreakerState {
  phase: BreakerPhase;
  /** When throttled/unavailable outcomes came while closed (the last `windowMs` count). */
  failures: number[];
  openUntil: number | null;
  /** Failed probes in a row: each one doubles the open period, up to `maxOpenMs`. */
  failedProbes: number;
  /** The largest Retry-After the provider asked for since the breaker last closed. */
  largestRetryAfterMs: number;
  /** Probes let through and not yet reported. */
  probes: { id: string; at: number }[];
  /** Times it opened. */
  opened: number;
}

/** What a call may do now. */
export type Gate = { kind: 'pass' } | { kind: 'probe' } | { kind: 'wait'; retryInMs: number; reason: string };

/** What became of a call, as the breaker counts it. `abandoned`: it never reached the provider, or nobody knows. */
export type Outcome = 'ok' | 'throttled' | 'unavailable' | 'abandoned';

export const closedBreaker = (): BreakerState => ({
  phase: 'closed',
  failures: [],
  openUntil: null,
  failedProbes: 0,
  largestRetryAfterMs: 0,
  probes: [],
  opened: 0,
});

/** Time-driven transitions: open → half-open when the open period is over; lost probes free their slot. */
export function advance(b: BreakerState, s: BreakerSettings, now: number): void {
  if (!s.enabled) {
    if (b.phase !== 'closed') close(b);
    return;
  }
  if (b.phase === 'open' && b.openUntil !== null && now >= b.openUntil) {
    b.phase = 'half-open';
    b.probes = [];
  }
  b.probes = b.probes.filter((p) => p.at + PROBE_TIMEOUT_MS > now);
  b.failures = b.failures.filter((at) => at + s.windowMs > now);
}

/** Whether call `id` may go now (after `advance`). Reads only. */
export function check(b: BreakerState, s: BreakerSettings, id: string, now: number): Gate {
  if (!s.enabled || b.phase === 'closed') return { kind: 'pass' };
  if (b.phase === 'open') {
    return { kind: 'wait', retryInMs: Math.max(1, (b.openUntil ?? now) - now), reason: 'breaker open' };
  }
  if (b.probes.some((p) => p.id === id) || b.probes.length < s.probes) return { kind: 'probe' };
  return { kind: 'wait', retryInMs: PROBE_POLL_MS, reason: 'breaker half-open: waiting for a probe call' };
}

export function startProbe(b: BreakerState, id: string, now: number): void {
  if (!b.probes.some((p) => p.id === id)) b.probes.push({ id, at: now });
}

/** Counts a call's outcome. Only a probe's outcome decides a half-open breaker; late reports of older calls do not. */
export function record(
  b: BreakerState,
  s: BreakerSettings,
  id: string,
  outcome: Outcome,
  retryAfterMs: number | undefined,
  now: number,
): void {
  if (!s.enabled) return;
  const wasProbe = b.probes.some((p) => p.id === id);
  b.probes = b.probes.filter((p) => p.id !== id);
  if (outcome === 'abandoned') return;
  const failed = outcome !== 'ok';
  if (failed) b.largestRetryAfterMs = Math.max(b.largestRetryAfterMs, retryAfterMs ?? 0);

  if (b.phase === 'half-open') {
    if (!wasProbe) return;
    if (failed) {
      b.failedProbes++;
      open(b, s, now);
    } else close(b);
  } else if (b.phase === 'open') {
    // Calls that were already out when it opened: a longer Retry-After among them still counts.
    if (failed && retryAfterMs !== undefined) b.openUntil = Math.max(b.openUntil ?? now, now + Math.min(s.maxOpenMs, retryAfterMs));
  } else if (failed) {
    b.failures = [...b.failures.filter((at) => at + s.windowMs > now), now];
    if (b.failures.length >= s.failureThreshold) open(b, s, now);
  }
}

function open(b: BreakerState, s: BreakerSettings, now: number): void {
  const grown = s.minOpenMs * 2 ** b.failedProbes;
  b.phase = 'open';
  b.openUntil = now + Math.min(s.maxOpenMs, Math.max(b.largestRetryAfterMs, grown));
  b.failures = [];
  b.probes = [];
  b.opened++;
}

function close(b: BreakerState): void {
  Object.assign(b, { ...closedBreaker(), opened: b.opened });
}

/** Outcomes within the window that count towards opening, as of `now`. Reads only. */
export function recentFailures(b: BreakerState, s: BreakerSettings, now: number): number {
  return b.failures.filter((at) => at + s.windowMs > now).length;
}

/** The phase at `now`, counting an open period that has run out as half-open. Reads only (for queries). */
export function phaseAt(b: BreakerState, now: number): BreakerPhase {
  return b.phase === 'open' && b.openUntil !== null && now >= b.openUntil ? 'half-open' : b.phase;
}

/** When time alone next changes the breaker: the end of the open period, or a probe presumed lost. */
export function nextBreakerChange(b: BreakerState): number | undefined {
  if (b.phase === 'open') return b.openUntil ?? undefined;
  const oldestProbe = b.probes[0];
  return oldestProbe && oldestProbe.at + PROBE_TIMEOUT_MS;
}

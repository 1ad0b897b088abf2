/**
 * The token budget of a limiter: a sliding window of reservations. A call reserves its estimated tokens
 * before it goes out and is reconciled with the provider's reported usage afterwards. Pure and
 * deterministic (time comes in as `now`), so the limiter workflow can run it and tests can table it.
 */

/** The span the budget covers: `tokensPerMinute` is the most any 60 seconds may hold. */
export const WINDOW_MS = 60_000;
/**
 * How long after its grant a call may still reach the provider. Reservations stay in the window this
 * much longer than a minute, and the worker drops a grant older than this (see limiter-client.ts), so
 * every call the provider sees in any minute was counted together at the moment of the latest grant.
 */
export const GRANT_SLACK_MS = 2_000;
const KEEP_MS = WINDOW_MS + GRANT_SLACK_MS;
/**
 * Reconciled usage is summed per this much of grant time, dated by the end of its span (so it stays a
 * little longer, never shorter): the window's size then depends on time, not on the call rate.
 */
const BUCKET_MS = 250;
/** Asking again sooner than this gains nothing and costs an update. */
const MIN_RETRY_MS = 50;

/** Tokens held since `at` (workflow time, ms). */
interface Held {
  at: number;
  tokens: number;
}

/** A grant not yet reconciled: its estimate, under the call's id. */
export interface Reservation extends Held {
  id: string;
}

export interface TokenWindowState {
  /** Grants awaiting their call's usage, in grant order. */
  pending: Reservation[];
  /** Reconciled usage per BUCKET_MS of grant time, in time order. */
  used: Held[];
}

export type Reserve = { granted: true } | { granted: false; retryInMs: number } | { granted: false; tooLarge: true };

export const emptyWindow = (): TokenWindowState => ({ pending: [], used: [] });

const live = (h: Held, now: number) => h.at + KEEP_MS > now;
const sum = (held: Held[], now: number) => held.reduce((n, h) => (live(h, now) ? n + h.tokens : n), 0);

/** Drops what has left the window. */
export function prune(w: TokenWindowState, now: number): void {
  w.pending = w.pending.filter((h) => live(h, now));
  w.used = w.used.filter((h) => live(h, now));
}

/** Tokens held in the window at `now`. Reads only: queries call it too, and must not change state. */
export function reservedTokens(w: TokenWindowState, now: number): number {
  return sum(w.pending, now) + sum(w.used, now);
}

/**
 * Reserves `tokens` under `id` if the window has room; otherwise says when enough will have left it.
 * Asking again with an id still pending answers granted again (a retried update is harmless).
 */
export function reserve(w: TokenWindowState, id: string, tokens: number, perMinute: number, now: number): Reserve {
  if (w.pending.some((r) => r.id === id)) return { granted: true };
  if (tokens > perMinute) return { granted: false, tooLarge: true };
  prune(w, now);
  const reserved = reservedTokens(w, now);
  if (reserved + tokens <= perMinute) {
    w.pending.push({ id, tokens, at: now });
    return { granted: true };
  }
  // Walk the oldest holdings until enough would be freed; their expiry is when this one fits.
  let freed = 0;
  for (const h of [...w.pending, ...w.used].sort((a, b) => a.at - b.at)) {
    freed += h.tokens;
    if (reserved - freed + tokens <= perMinute) return { granted: false, retryInMs: Math.max(MIN_RETRY_MS, h.at + KEEP_MS - now) };
  }
  return { granted: false, retryInMs: MIN_RETRY_MS }; // unreachable: tokens ≤ perMinute fits an empty window
}

/** Replaces a reservation's estimate with what the call actually used (0 for a call that never reached the provider). */
export function reconcile(w: TokenWindowState, id: string, actualTokens: number): void {
  const index = w.pending.findIndex((r) => r.id === id);
  if (index === -1) return; // already reconciled, or already out of the window
  const [r] = w.pending.splice(index, 1);
  const at = (Math.floor(r!.at / BUCKET_MS) + 1) * BUCKET_MS;
  const bucket = w.used.find((h) => h.at === at);
  if (bucket) bucket.tokens += Math.max(0, actualTokens);
  else {
    const after = w.used.findIndex((h) => h.at > at);
    w.used.splice(after === -1 ? w.used.length : after, 0, { at, tokens: Math.max(0, actualTokens) });
  }
}

/** When the window next frees tokens, if it holds any at `now`. */
export function nextExpiry(w: TokenWindowState, now: number): number | undefined {
  const times = [...w.pending, ...w.used].filter((h) => live(h, now)).map((h) => h.at + KEEP_MS);
  return times.length ? Math.min(...times) : undefined;
}

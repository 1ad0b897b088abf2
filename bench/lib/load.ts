/**
 * Load generators. The open loop sends at a fixed arrival rate whatever the responses do, and measures
 * each latency from when the request was due, so a slow response that delays later sends is counted
 * against them too (no coordinated omission). The closed loop keeps a fixed number in flight.
 */
import { steadyRate } from './stats';

export interface LoadResult {
  /** Per request, in ms: from due (open loop) or sent (closed loop) to answered; NaN where it failed. */
  latenciesMs: number[];
  /** Per request, the epoch ms it was due or sent: the start of its end-to-end latency. */
  sentAt: number[];
  errors: string[];
  durationMs: number;
}

type Fire = (i: number) => Promise<unknown>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function recorder(count: number) {
  const result: LoadResult = {
    latenciesMs: new Array<number>(count).fill(NaN),
    sentAt: new Array<number>(count),
    errors: [],
    durationMs: 0,
  };
  const t0 = performance.now();
  const track = async (i: number, from: number, fire: Fire) => {
    result.sentAt[i] = performance.timeOrigin + from;
    try {
      await fire(i);
      result.latenciesMs[i] = performance.now() - from;
    } catch (err) {
      result.errors.push(`request ${i}: ${(err as Error)?.message ?? String(err)}`);
    }
  };
  const done = () => ({ ...result, durationMs: performance.now() - t0 });
  return { t0, track, done };
}

export async function openLoop(opts: { ratePerSec: number; count: number; fire: Fire }): Promise<LoadResult> {
  const { t0, track, done } = recorder(opts.count);
  const intervalMs = 1000 / opts.ratePerSec;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < opts.count; i++) {
    const due = t0 + i * intervalMs;
    const wait = due - performance.now();
    // Timers fire late by up to a few ms; a late send still counts its latency from `due`.
    if (wait >= 1) await sleep(wait);
    pending.push(track(i, due, opts.fire));
  }
  await Promise.all(pending);
  return done();
}

export async function closedLoop(opts: { concurrency: number; count: number; fire: Fire }): Promise<LoadResult> {
  const { track, done } = recorder(opts.count);
  let next = 0;
  const lane = async () => {
    while (next < opts.count) await track(next++, performance.now(), opts.fire);
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.count) }, lane));
  return done();
}

/** Fails the run when requests failed: numbers from a partly failed run would mislead. */
export function assertNoErrors(what: string, result: LoadResult): void {
  if (result.errors.length) {
    throw new Error(`${what}: ${result.errors.length} of ${result.sentAt.length} requests failed; first: ${result.errors[0]}`);
  }
}

/** A load's completions per second over the middle 80 % of them: no ramp-up, no tail (stats.ts steadyRate). */
export function completionRate(result: LoadResult): number {
  return steadyRate(result.sentAt.map((at, i) => at + result.latenciesMs[i]!));
}

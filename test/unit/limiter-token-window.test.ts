/** The token window: reservations, waits, reconciliation, expiry — as tables of steps at given times. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyWindow, GRANT_SLACK_MS, nextExpiry, reconcile, reservedTokens, reserve, WINDOW_MS } from '../../src/inference/token-window';

const KEEP = WINDOW_MS + GRANT_SLACK_MS;
const LIMIT = 1000;

type Step =
  | { at: number; reserve: string; tokens: number; expect: ReturnType<typeof reserve> }
  | { at: number; reconcile: string; tokens: number }
  | { at: number; reserved: number };

function play(steps: Step[]) {
  const w = emptyWindow();
  for (const [i, step] of steps.entries()) {
    if ('reserve' in step) assert.deepEqual(reserve(w, step.reserve, step.tokens, LIMIT, step.at), step.expect, `step ${i}`);
    else if ('reconcile' in step) reconcile(w, step.reconcile, step.tokens);
    else assert.equal(reservedTokens(w, step.at), step.reserved, `step ${i}: reserved at ${step.at}`);
  }
  return w;
}

const cases: { name: string; steps: Step[] }[] = [
  {
    name: 'grants while the budget lasts, then says when the oldest reservations free enough',
    steps: [
      { at: 0, reserve: 'a', tokens: 600, expect: { granted: true } },
      { at: 1000, reserve: 'b', tokens: 400, expect: { granted: true } },
      { at: 2000, reserve: 'c', tokens: 100, expect: { granted: false, retryInMs: KEEP - 2000 } },
      // 700 needs both a and b gone: b leaves at 1000 + KEEP.
      { at: 2000, reserve: 'd', tokens: 700, expect: { granted: false, retryInMs: 1000 + KEEP - 2000 } },
      { at: 2000, reserved: 1000 },
      { at: KEEP, reserve: 'c', tokens: 100, expect: { granted: true } },
      { at: KEEP, reserved: 500 },
    ],
  },
  {
    name: 'a reservation stays in the window a minute plus the grant slack',
    steps: [
      { at: 0, reserve: 'a', tokens: 1000, expect: { granted: true } },
      { at: WINDOW_MS, reserved: 1000 },
      { at: KEEP - 1, reserved: 1000 },
      { at: KEEP, reserved: 0 },
    ],
  },
  {
    name: 'reconciling frees what the call did not use, and charges what it used beyond the estimate',
    steps: [
      { at: 0, reserve: 'a', tokens: 800, expect: { granted: true } },
      { at: 10, reserve: 'b', tokens: 300, expect: { granted: false, retryInMs: KEEP - 10 } },
      { at: 20, reconcile: 'a', tokens: 500 },
      { at: 30, reserve: 'b', tokens: 300, expect: { granted: true } },
      { at: 40, reconcile: 'b', tokens: 450 }, // over the estimate: the window holds 950
      { at: 50, reserved: 950 },
      { at: 60, reconcile: 'b', tokens: 1 }, // reconciled once only
      { at: 70, reserved: 950 },
    ],
  },
  {
    name: 'reconciled usage is held by quarter-second of grant time: up to 250 ms longer, never shorter',
    steps: [
      { at: 100, reserve: 'a', tokens: 1000, expect: { granted: true } },
      { at: 200, reconcile: 'a', tokens: 1000 },
      { at: KEEP + 100, reserved: 1000 },
      { at: KEEP + 249, reserve: 'b', tokens: 1, expect: { granted: false, retryInMs: 50 } }, // 1 ms to go; asked again no sooner than 50
      { at: KEEP + 250, reserved: 0 },
    ],
  },
  {
    name: 'asking again with a granted id is granted again without a second reservation',
    steps: [
      { at: 0, reserve: 'a', tokens: 700, expect: { granted: true } },
      { at: 5, reserve: 'a', tokens: 700, expect: { granted: true } },
      { at: 10, reserved: 700 },
    ],
  },
  {
    name: 'a call bigger than the whole budget can never go',
    steps: [{ at: 0, reserve: 'huge', tokens: LIMIT + 1, expect: { granted: false, tooLarge: true } }],
  },
  {
    name: 'a reconciliation after the reservation left the window changes nothing',
    steps: [
      { at: 0, reserve: 'a', tokens: 100, expect: { granted: true } },
      { at: KEEP + 1, reserve: 'b', tokens: 100, expect: { granted: true } },
      { at: KEEP + 2, reconcile: 'a', tokens: 900 },
      { at: KEEP + 3, reserved: 100 },
    ],
  },
];

for (const c of cases) test(c.name, () => void play(c.steps));

test('reading the window changes nothing (queries must not); the next expiry is that of the oldest live reservation', () => {
  const w = play([
    { at: 0, reserve: 'a', tokens: 100, expect: { granted: true } },
    { at: 500, reserve: 'b', tokens: 100, expect: { granted: true } },
  ]);
  assert.equal(reservedTokens(w, KEEP + 10), 100);
  assert.equal(w.pending.length, 2);
  assert.equal(nextExpiry(w, 0), KEEP);
  assert.equal(nextExpiry(w, KEEP), 500 + KEEP);
  assert.equal(nextExpiry(w, 500 + KEEP), undefined);
});

test('the window holds one entry per quarter second of reconciled calls, however many calls there were', () => {
  const w = emptyWindow();
  for (let i = 0; i < 10_000; i++) {
    const at = i; // 10,000 calls in 10 s
    assert.deepEqual(reserve(w, `c${i}`, 10, 1_000_000, at), { granted: true });
    reconcile(w, `c${i}`, 7);
  }
  assert.equal(w.pending.length, 0);
  assert.equal(w.used.length, 40);
  assert.equal(reservedTokens(w, 10_000), 70_000);
});

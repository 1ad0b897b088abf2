/** The pool circuit breaker's state machine, as tables of outcomes and checks at given times. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolSchema } from '../../src/config';
import {
  advance,
  type BreakerSettings,
  check,
  closedBreaker,
  type Gate,
  type Outcome,
  PROBE_POLL_MS,
  PROBE_TIMEOUT_MS,
  phaseAt,
  record,
  recentFailures,
  startProbe,
} from '../../src/inference/breaker';

const settings = (over: Partial<BreakerSettings> = {}): BreakerSettings => ({
  ...poolSchema.parse({ provider: 'openai', baseUrl: 'http://x', model: 'm' }).breaker,
  ...over,
});

type Step =
  | { at: number; outcome: Outcome; id?: string; retryAfterMs?: number }
  /** Asks whether call `check` may go; a probe answer starts the probe. */
  | { at: number; check: string; expect: Gate }
  | { at: number; phase: 'closed' | 'open' | 'half-open'; openUntil?: number | null; opened?: number };

function play(s: BreakerSettings, steps: Step[]) {
  const b = closedBreaker();
  for (const [i, step] of steps.entries()) {
    advance(b, s, step.at);
    if ('outcome' in step) record(b, s, step.id ?? `call-${i}`, step.outcome, step.retryAfterMs, step.at);
    else if ('check' in step) {
      const gate = check(b, s, step.check, step.at);
      assert.deepEqual(gate, step.expect, `step ${i}: check ${step.check} at ${step.at}`);
      if (gate.kind === 'probe') startProbe(b, step.check, step.at);
    } else {
      assert.equal(b.phase, step.phase, `step ${i}: phase at ${step.at}`);
      if (step.openUntil !== undefined) assert.equal(b.openUntil, step.openUntil, `step ${i}: openUntil`);
      if (step.opened !== undefined) assert.equal(b.opened, step.opened, `step ${i}: opened`);
    }
  }
  return b;
}

const pass: Gate = { kind: 'pass' };
const probe: Gate = { kind: 'probe' };
const open = (retryInMs: number): Gate => ({ kind: 'wait', retryInMs, reason: 'breaker open' });
const halfOpen: Gate = { kind: 'wait', retryInMs: PROBE_POLL_MS, reason: 'breaker half-open: waiting for a probe call' };

const cases: { name: string; settings?: Partial<BreakerSettings>; steps: Step[] }[] = [
  {
    name: 'opens on the threshold within the window, for the largest Retry-After; probes; a good probe closes it',
    steps: [
      { at: 0, outcome: 'throttled', retryAfterMs: 3000 },
      { at: 100, outcome: 'unavailable' },
      { at: 150, outcome: 'ok' },
      { at: 200, check: 'x', expect: pass },
      { at: 300, outcome: 'throttled', retryAfterMs: 2000 },
      { at: 300, phase: 'open', openUntil: 3300, opened: 1 },
      { at: 1300, check: 'x', expect: open(2000) },
      { at: 3300, check: 'p', expect: probe },
      { at: 3300, phase: 'half-open' },
      { at: 3400, check: 'q', expect: halfOpen },
      { at: 3500, check: 'p', expect: probe }, // the probe asking again is still the probe
      { at: 3900, outcome: 'ok', id: 'p' },
      { at: 3900, phase: 'closed', openUntil: null, opened: 1 },
      { at: 4000, check: 'q', expect: pass },
    ],
  },
  {
    name: 'failures older than the window do not add up',
    settings: { windowMs: 1000 },
    steps: [
      { at: 0, outcome: 'throttled' },
      { at: 500, outcome: 'throttled' },
      { at: 1600, outcome: 'throttled' },
      { at: 1600, phase: 'closed' },
      { at: 1700, outcome: 'unavailable' },
      { at: 1700, outcome: 'unavailable' },
      { at: 1700, phase: 'open', openUntil: 2700 },
    ],
  },
  {
    name: 'without Retry-After it opens for minOpenMs; each failed probe doubles that, up to maxOpenMs',
    settings: { failureThreshold: 1, minOpenMs: 1000, maxOpenMs: 3000 },
    steps: [
      { at: 0, outcome: 'unavailable' },
      { at: 0, phase: 'open', openUntil: 1000 },
      { at: 1000, check: 'p1', expect: probe },
      { at: 1100, outcome: 'unavailable', id: 'p1' },
      { at: 1100, phase: 'open', openUntil: 3100, opened: 2 },
      { at: 3100, check: 'p2', expect: probe },
      { at: 3200, outcome: 'throttled', id: 'p2' },
      { at: 3200, phase: 'open', openUntil: 6200, opened: 3 }, // 4000 capped at 3000
      { at: 6200, check: 'p3', expect: probe },
      { at: 6300, outcome: 'ok', id: 'p3' },
      { at: 6300, phase: 'closed' },
      // Closed again, the growth starts over.
      { at: 7000, outcome: 'unavailable' },
      { at: 7000, phase: 'open', openUntil: 8000 },
    ],
  },
  {
    name: 'Retry-After is capped at maxOpenMs',
    settings: { failureThreshold: 1, maxOpenMs: 5000 },
    steps: [
      { at: 0, outcome: 'throttled', retryAfterMs: 3_600_000 },
      { at: 0, phase: 'open', openUntil: 5000 },
    ],
  },
  {
    name: 'calls already out when it opened: their longer Retry-After extends it; their outcomes never close it',
    settings: { failureThreshold: 2 },
    steps: [
      { at: 0, outcome: 'throttled', retryAfterMs: 1000 },
      { at: 0, outcome: 'throttled', retryAfterMs: 1000 },
      { at: 0, phase: 'open', openUntil: 1000 },
      { at: 200, outcome: 'throttled', retryAfterMs: 4000 },
      { at: 200, phase: 'open', openUntil: 4200, opened: 1 },
      { at: 300, outcome: 'ok' },
      { at: 300, phase: 'open' },
      { at: 4200, check: 'p', expect: probe },
      { at: 4300, outcome: 'ok', id: 'late-call' },
      { at: 4300, outcome: 'throttled', id: 'another-late-call' },
      { at: 4300, phase: 'half-open' },
    ],
  },
  {
    name: 'several probes at once; a lost probe frees its slot after the probe timeout; an abandoned one at once',
    settings: { failureThreshold: 1, probes: 2 },
    steps: [
      { at: 0, outcome: 'unavailable' },
      { at: 1000, check: 'p1', expect: probe },
      { at: 1000, check: 'p2', expect: probe },
      { at: 1000, check: 'q', expect: halfOpen },
      { at: 1500, outcome: 'abandoned', id: 'p2' },
      { at: 1500, check: 'q', expect: probe },
      { at: 1000 + PROBE_TIMEOUT_MS, check: 'r', expect: probe }, // p1 never reported
      { at: 1000 + PROBE_TIMEOUT_MS, phase: 'half-open' },
    ],
  },
  {
    name: 'disabled: never opens and lets everything through',
    settings: { enabled: false, failureThreshold: 1 },
    steps: [
      { at: 0, outcome: 'throttled', retryAfterMs: 5000 },
      { at: 1, check: 'x', expect: pass },
      { at: 1, phase: 'closed' },
    ],
  },
];

for (const c of cases) test(c.name, () => void play(settings(c.settings), c.steps));

test('reads for the query change nothing: an open period that ran out reads half-open; failures count within the window', () => {
  const s = settings({ failureThreshold: 3, windowMs: 1000 });
  const b = play(s, [
    { at: 0, outcome: 'throttled' },
    { at: 500, outcome: 'throttled' },
  ]);
  assert.equal(recentFailures(b, s, 600), 2);
  assert.equal(recentFailures(b, s, 1200), 1);
  assert.equal(b.failures.length, 2);
  record(b, s, 'z', 'throttled', 2000, 700);
  assert.equal(phaseAt(b, 2699), 'open');
  assert.equal(phaseAt(b, 2700), 'half-open');
  assert.equal(b.phase, 'open');
});

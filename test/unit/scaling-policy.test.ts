/** The scaling policy and the load signal, as tables of signals (and sequences of them) and the workers they want. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { poolSchema } from '../../src/config';
import { decide, NO_HISTORY, type PolicyState } from '../../src/scaling/policy';
import { loadSignal, scalingSettingsOf, type LoadSignal, type ScalingSettings, type SignalSources } from '../../src/scaling/signal';

// 8 slots per worker, 8 waiting calls per worker, 1..4 workers, a 60 s window.
const SETTINGS: ScalingSettings = scalingSettingsOf(poolSchema.parse({ provider: 'local', concurrency: 8 }));
const QUIET = { backlog: 0, backlogAgeMs: 0, addRate: 0, dispatchRate: 0 };

type Queue = NonNullable<LoadSignal['queue']>;
const signal = (over: Partial<Omit<LoadSignal, 'queue'>> & { queue?: Partial<Queue> | null } = {}): LoadSignal => ({
  workersPolling: 1,
  slotsPerWorker: 8,
  busySlots: 0,
  heldBack: null,
  ...over,
  queue: over.queue === null ? null : { ...QUIET, ...over.queue },
});

describe('one decision without history', () => {
  const cases: [string, LoadSignal, number, RegExp?, Partial<ScalingSettings>?][] = [
    ['idle pool keeps minWorkers', signal(), 1],
    ['idle pool with min 0 scales to zero', signal(), 0, /idle|busy/, { minWorkers: 0 }],
    ['a backlog within target per worker adds nobody', signal({ busySlots: 8, queue: { backlog: 8, dispatchRate: 2 } }), 1],
    ['backlog 20 at 8 per worker wants 3', signal({ busySlots: 8, queue: { backlog: 20, dispatchRate: 2 } }), 3, /backlog 20/],
    [
      'a large backlog goes to maxWorkers at once',
      signal({ busySlots: 8, queue: { backlog: 200, dispatchRate: 2 } }),
      4,
      /capped at maxWorkers 4/,
    ],
    [
      'a backlog from zero workers asks for one',
      signal({ workersPolling: 0, busySlots: 0, queue: { backlog: 3, addRate: 1 } }),
      1,
      undefined,
      { minWorkers: 0 },
    ],
    ['busy slots alone: 20 busy on 8-slot workers want 3', signal({ workersPolling: 3, busySlots: 20, queue: { dispatchRate: 3 } }), 3],
    [
      'rates: backlog growing 4/s adds 20 within the 5 s lookahead',
      signal({ busySlots: 8, queue: { backlog: 4, addRate: 6, dispatchRate: 2 } }),
      3,
      /\+20 expected/,
    ],
    ['rates: a shrinking backlog counts as it is', signal({ busySlots: 8, queue: { backlog: 16, addRate: 1, dispatchRate: 5 } }), 2],
    [
      'age: an old call wants one more worker than are polling',
      signal({ workersPolling: 2, busySlots: 16, queue: { backlog: 2, backlogAgeMs: 45_000, dispatchRate: 0.1 } }),
      3,
      /waited 45 s/,
    ],
    [
      'busy slots read: long calls with nothing dispatched for 30 s keep their workers',
      signal({ workersPolling: 3, busySlots: 24 }),
      3,
      /24 busy slots want 3/,
    ],
    [
      'busy slots read: idle slots let the pool shrink to what the running calls need',
      signal({ workersPolling: 3, busySlots: 5, queue: { dispatchRate: 2 } }),
      1,
      /5 busy slots want 1/,
    ],
    [
      'busy slots unknown with a backlog: all slots assumed busy',
      signal({ workersPolling: 2, busySlots: null, queue: { backlog: 20, dispatchRate: 4 } }),
      3,
      /assuming all 16 busy/,
    ],
    [
      'busy slots unknown, calls dispatched lately: keeps the workers',
      signal({ workersPolling: 3, busySlots: null, queue: { dispatchRate: 1 } }),
      3,
    ],
    ['busy slots unknown, nothing dispatched for 30 s: idle', signal({ workersPolling: 3, busySlots: null }), 1, /idle/],
    [
      'no task-queue statistics and no slot counts: keeps the workers',
      signal({ workersPolling: 2, busySlots: null, queue: null }),
      2,
      /no task-queue statistics/,
    ],
    [
      'paused: a backlog asks for nothing',
      signal({ workersPolling: 1, busySlots: 0, heldBack: 'paused', queue: { backlog: 500, backlogAgeMs: 120_000 } }),
      1,
      /held back by paused/,
    ],
    [
      'paused with min 0: no worker for a paused backlog',
      signal({ workersPolling: 1, busySlots: 0, heldBack: 'paused', queue: { backlog: 500 } }),
      0,
      undefined,
      { minWorkers: 0 },
    ],
    [
      'breaker open: a backlog keeps one worker for the probe',
      signal({ workersPolling: 1, busySlots: 0, heldBack: 'breaker', queue: { backlog: 500 } }),
      1,
      undefined,
      { minWorkers: 0 },
    ],
    [
      'token limit: calls waiting for tokens hold slots but add no worker',
      signal({ workersPolling: 2, busySlots: 16, heldBack: 'token-limit', queue: { backlog: 100, dispatchRate: 0.5 } }),
      2,
    ],
    [
      'token limit: may still scale down to what is busy',
      signal({ workersPolling: 3, busySlots: 8, heldBack: 'token-limit', queue: { backlog: 100, dispatchRate: 0.5 } }),
      1,
    ],
    [
      'queue rate limit: a backlog asks for nothing',
      signal({ workersPolling: 2, busySlots: 4, heldBack: 'rate-limit', queue: { backlog: 300, addRate: 30, dispatchRate: 20 } }),
      1,
      /rate-limit/,
    ],
    ['min above the recommendation', signal(), 2, /minWorkers 2/, { minWorkers: 2 }],
  ];
  for (const [name, s, expected, reason, over] of cases) {
    test(name, () => {
      const d = decide(s, { ...SETTINGS, ...over }, NO_HISTORY, 0);
      assert.equal(d.desiredWorkers, expected, d.reason);
      if (reason) assert.match(d.reason, reason);
    });
  }
});

/** Feeds signals at the given times; returns the desired workers after each. */
function play(steps: [at: number, s: LoadSignal][], settings = SETTINGS): number[] {
  let state: PolicyState = NO_HISTORY;
  return steps.map(([at, s]) => {
    const d = decide(s, settings, state, at);
    state = d.state;
    assert.ok(state.recommendations.length <= settings.maxWorkers - settings.minWorkers + 1, 'the state stays small');
    return d.desiredWorkers;
  });
}

const burst = signal({ workersPolling: 4, busySlots: 32, queue: { backlog: 100, dispatchRate: 10 } });
const done = signal({ workersPolling: 4, busySlots: 0 });

describe('stabilization', () => {
  test('scales up at once, down only when the window has passed since the last high recommendation', () => {
    assert.deepEqual(
      play([
        [0, signal()],
        [1000, burst],
        [2000, done],
        [30_000, done],
        [60_500, done],
        [61_000, done],
      ]),
      [1, 4, 4, 4, 4, 1],
    );
  });

  test('steps down through lower recommendations, each after its own window', () => {
    const busy = (n: number) => signal({ workersPolling: 4, busySlots: n * 8, queue: { dispatchRate: 1 } });
    assert.deepEqual(
      play([
        [0, busy(4)],
        [10_000, busy(2)],
        [61_000, busy(2)],
        [71_000, busy(1)],
        [132_000, busy(1)],
      ]),
      [4, 4, 2, 2, 1],
    );
  });

  test('never scales below the busy slots, however long the window has passed', () => {
    const stillBusy = signal({ workersPolling: 4, busySlots: 25, queue: { dispatchRate: 1 } });
    assert.deepEqual(
      play([
        [0, burst],
        [100_000, stillBusy],
        [200_000, stillBusy],
      ]),
      [4, 4, 4],
    );
  });

  test('a lowered maxWorkers applies at once, even over the window', () => {
    let state: PolicyState = NO_HISTORY;
    state = decide(burst, SETTINGS, state, 0).state;
    assert.equal(decide(burst, { ...SETTINGS, maxWorkers: 2 }, state, 1000).desiredWorkers, 2);
  });

  test('no flapping: a noisy backlog around a boundary holds the highest count', () => {
    // Backlog jumping between 10 and 30 (2 and 4 workers) every 5 s, then settling at 10.
    const noisy = (backlog: number) => signal({ workersPolling: 2, busySlots: 16, queue: { backlog, dispatchRate: 4 } });
    const steps: [number, LoadSignal][] = [];
    for (let t = 0; t < 120_000; t += 5000) steps.push([t, noisy(t % 10_000 === 0 ? 30 : 10)]);
    for (let t = 120_000; t <= 200_000; t += 5000) steps.push([t, noisy(10)]);
    const desired = play(steps);
    const changes = desired.filter((d, i) => i > 0 && d !== desired[i - 1]).length;
    assert.deepEqual([desired[0], desired.at(-1), changes], [4, 2, 1], JSON.stringify(desired));
    // The one scale-down comes a full window after the last high recommendation (at 110 s).
    assert.equal(steps[desired.indexOf(2)]![0], 170_000);
  });

  test('a recommendation at the window edge no longer holds', () => {
    assert.deepEqual(
      play([
        [0, burst],
        [60_000, done],
      ]),
      [4, 1],
    );
  });
});

describe('the load signal', () => {
  const NOW = Date.parse('2030-01-01T00:00:00Z');
  const sources = (over: Partial<SignalSources> = {}): SignalSources => ({
    concurrency: 8,
    queue: { ...QUIET, backlog: 10 },
    workers: [{ lastAccessAt: new Date(NOW - 5000).toISOString() }],
    paused: false,
    breakerState: 'closed',
    tokens: null,
    effectiveRequestsPerSecond: null,
    rateLimitingActive: false,
    busySlots: null,
    ...over,
  });
  const cases: [string, Partial<SignalSources>, LoadSignal['heldBack']][] = [
    ['nothing holds the work back', {}, null],
    ['paused', { paused: true }, 'paused'],
    ['a rate limit of 0 is a pause', { effectiveRequestsPerSecond: 0 }, 'paused'],
    ['open breaker', { breakerState: 'open' }, 'breaker'],
    ['half-open breaker lets only probes through', { breakerState: 'half-open' }, 'breaker'],
    ['token window nearly spent', { tokens: { perMinute: 10_000, available: 200 } }, 'token-limit'],
    ['token window with room', { tokens: { perMinute: 10_000, available: 4000 } }, null],
    [
      'dispatching at the queue rate limit',
      { effectiveRequestsPerSecond: 5, queue: { ...QUIET, backlog: 10, dispatchRate: 4.8 } },
      'rate-limit',
    ],
    ['below the queue rate limit', { effectiveRequestsPerSecond: 5, queue: { ...QUIET, backlog: 10, dispatchRate: 2 } }, null],
    ['the server says a rate limit blocked dispatches', { rateLimitingActive: true }, 'rate-limit'],
  ];
  for (const [name, over, heldBack] of cases) {
    test(`held back: ${name}`, () => assert.equal(loadSignal(sources(over), NOW).heldBack, heldBack));
  }

  test('counts only workers that polled recently', () => {
    const workers = [5000, 60_000, 200_000].map((ago) => ({ lastAccessAt: new Date(NOW - ago).toISOString() }));
    assert.equal(loadSignal(sources({ workers: [...workers, { lastAccessAt: null }] }), NOW).workersPolling, 2);
  });
});

describe('settings', () => {
  test('defaults, with the target backlog per worker following the pool concurrency', () => {
    const pool = poolSchema.parse({ provider: 'synthetic', concurrency: 16 });
    assert.deepEqual(scalingSettingsOf(pool), {
      minWorkers: 1,
      maxWorkers: 4,
      targetBacklogPerWorker: 16,
      scaleDownAfterMs: 60_000,
      maxBacklogAgeMs: 30_000,
      lookaheadMs: 5000,
    });
  });

  test('minWorkers above maxWorkers is refused', () => {
    const parsed = poolSchema.safeParse({ provider: 'local', scaling: { minWorkers: 5, maxWorkers: 2 } });
    assert.equal(parsed.success, false);
    assert.match(JSON.stringify(parsed.error?.issues), /minWorkers is above scaling.maxWorkers/);
  });
});

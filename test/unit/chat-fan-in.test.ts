/** The fan-in decision as a table: handler outcomes so far → the stage's result and the handlers to cancel. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HandlerStatus } from '../../src/conversations/contract';
import { decideFanIn, type FanInDecision } from '../../src/conversations/fan-in';
import type { FanIn } from '../../src/conversations/pipeline';

const cases: [string, FanIn, HandlerStatus[], FanInDecision][] = [
  // all: every handler settles; one failure fails the stage, but only once the others are done.
  ['all: nothing settled yet', 'all', ['running', 'running', 'pending'], { result: 'pending', cancel: [] }],
  ['all: one succeeded, others running', 'all', ['succeeded', 'running', 'running'], { result: 'pending', cancel: [] }],
  [
    'all: one failed, others still running — waits, cancels nothing',
    'all',
    ['failed', 'running', 'succeeded'],
    { result: 'pending', cancel: [] },
  ],
  ['all: one failed, the rest succeeded → failed', 'all', ['succeeded', 'failed', 'succeeded'], { result: 'failed', cancel: [] }],
  ['all: every handler succeeded → succeeded', 'all', ['succeeded', 'succeeded', 'succeeded'], { result: 'succeeded', cancel: [] }],
  ['all: a single handler that succeeded', 'all', ['succeeded'], { result: 'succeeded', cancel: [] }],

  // first-success: the first success wins and the rest are cancelled; fails only when all fail.
  [
    'first-success: one failed, others running — still undecided',
    'first-success',
    ['failed', 'running', 'running'],
    { result: 'pending', cancel: [] },
  ],
  [
    'first-success: one failed, then one succeeded → succeeded, the running one cancelled',
    'first-success',
    ['failed', 'succeeded', 'running'],
    { result: 'succeeded', cancel: [2] },
  ],
  [
    'first-success: the first one succeeds → the others cancelled',
    'first-success',
    ['running', 'succeeded', 'pending'],
    { result: 'succeeded', cancel: [0, 2] },
  ],
  ['first-success: all failed → failed', 'first-success', ['failed', 'failed', 'failed'], { result: 'failed', cancel: [] }],
  ['first-success: failed and cancelled only → failed', 'first-success', ['failed', 'cancelled'], { result: 'failed', cancel: [] }],

  // quorum k: k successes win; fails as soon as k cannot be reached.
  [
    'quorum 2 of 3: one failed, two running — reachable',
    { quorum: 2 },
    ['failed', 'running', 'running'],
    { result: 'pending', cancel: [] },
  ],
  [
    'quorum 2 of 3: one failed, two succeeded → succeeded',
    { quorum: 2 },
    ['failed', 'succeeded', 'succeeded'],
    { result: 'succeeded', cancel: [] },
  ],
  [
    'quorum 2 of 3: two succeeded, one running → succeeded, it is cancelled',
    { quorum: 2 },
    ['succeeded', 'running', 'succeeded'],
    { result: 'succeeded', cancel: [1] },
  ],
  [
    'quorum 2 of 3: two failed → unreachable, the running one cancelled',
    { quorum: 2 },
    ['failed', 'running', 'failed'],
    { result: 'failed', cancel: [1] },
  ],
  [
    'quorum 3 of 4: one failed, three running — reachable',
    { quorum: 3 },
    ['running', 'failed', 'running', 'running'],
    { result: 'pending', cancel: [] },
  ],
  [
    'quorum 3 of 4: two failed → unreachable at once',
    { quorum: 3 },
    ['running', 'failed', 'failed', 'succeeded'],
    { result: 'failed', cancel: [0] },
  ],
  ['quorum 1 behaves as first-success', { quorum: 1 }, ['running', 'succeeded'], { result: 'succeeded', cancel: [0] }],
  ['quorum k = n behaves as all, but fails early', { quorum: 3 }, ['failed', 'running', 'running'], { result: 'failed', cancel: [1, 2] }],
];

describe('fan-in decision', () => {
  for (const [name, fanIn, handlers, expected] of cases) {
    test(name, () => assert.deepEqual(decideFanIn(fanIn, handlers), expected));
  }
});

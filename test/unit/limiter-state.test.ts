/**
 * The limiter as the workflow runs it — token window, breaker and a provider's Retry-After together, probes,
 * the query's view — and how a call is estimated and its failure counted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolSchema } from '../../src/config';
import { PROBE_POLL_MS } from '../../src/inference/breaker';
import { DEFAULT_COMPLETION_TOKENS, estimateTokens, failureOutcome, PROMPT_OVERHEAD_TOKENS } from '../../src/inference/limiter-call';
import {
  describeLimiter,
  exchange,
  type LimiterSettings,
  limiterSettingsOf,
  type Settlement,
  neverUsedLimiter,
  newLimiter,
} from '../../src/inference/limiter-state';
import { ProviderError } from '../../src/inference/provider';
import { GRANT_SLACK_MS, WINDOW_MS } from '../../src/inference/token-window';

const openaiPool = (over: Record<string, unknown> = {}) =>
  poolSchema.parse({ provider: 'openai', baseUrl: 'http://x', model: 'm', ...over });
const settingsOf = (over: Record<string, unknown> = {}) => limiterSettingsOf(openaiPool(over))!;

test('which pools need a limiter: a remote provider, a token limit or an enabled breaker', () => {
  assert.deepEqual(limiterSettingsOf(poolSchema.parse({ provider: 'local' })), null);
  assert.equal(limiterSettingsOf(poolSchema.parse({ provider: 'local', rateLimit: { tokensPerMinute: 100 } }))?.tokensPerMinute, 100);
  assert.equal(limiterSettingsOf(openaiPool())?.tokensPerMinute, null);
  assert.equal(
    limiterSettingsOf(openaiPool({ breaker: { enabled: false } }))?.breaker.enabled,
    false,
    'a remote provider may send Retry-After',
  );
});

test('breaker only: every call is granted on its own; once open, nobody goes until a probe succeeds', () => {
  const settings = settingsOf({ breaker: { failureThreshold: 2, minOpenMs: 1000 } });
  const data = newLimiter('gpt');
  const ask = (at: number, ...ids: string[]) => exchange(data, { settings, settle: [], admit: ids.map((id) => ({ id, tokens: 10 })) }, at);

  assert.deepEqual(ask(0, 'a'), [{ id: 'a', granted: true, probe: false }]);
  const failures = ['x', 'y'].map((id) => ({ id, outcome: 'throttled' as const, tokens: 0, retryAfterMs: 3000 }));
  assert.deepEqual(exchange(data, { settings, settle: failures, admit: [{ id: 'b', tokens: 10 }] }, 100), [
    { id: 'b', granted: false, retryInMs: 3000, reason: 'breaker open' },
  ]);
  assert.deepEqual(describeLimiter(data, settings, 200).breaker, {
    enabled: true,
    state: 'open',
    openUntil: new Date(3100).toISOString(),
    recentFailures: 0,
    opened: 1,
  });
  assert.deepEqual(ask(3100, 'b', 'c'), [
    { id: 'b', granted: true, probe: true },
    { id: 'c', granted: false, retryInMs: PROBE_POLL_MS, reason: 'breaker half-open: waiting for a probe call' },
  ]);
  exchange(data, { settings, settle: [{ id: 'b', outcome: 'ok', tokens: 5 }], admit: [] }, 3200);
  assert.deepEqual(ask(3300, 'c'), [{ id: 'c', granted: true, probe: false }]);
});

test("a provider's Retry-After holds every call for that long from when the limiter hears it; the breaker counts on", () => {
  const settings = settingsOf({ breaker: { failureThreshold: 3, maxOpenMs: 5000 } });
  const data = newLimiter('gpt');
  const ask = (at: number, settle: Settlement[] = []) => exchange(data, { settings, settle, admit: [{ id: `ask-${at}`, tokens: 10 }] }, at);

  assert.deepEqual(ask(1000, [{ id: 'x', outcome: 'throttled', tokens: 0, retryAfterMs: 1000 }]), [
    { id: 'ask-1000', granted: false, retryInMs: 1000, reason: 'provider Retry-After' },
  ]);
  assert.equal(describeLimiter(data, settings, 1500).retryAfterUntil, new Date(2000).toISOString());
  assert.equal(ask(1999)[0]!.granted, false);
  assert.deepEqual(ask(2000), [{ id: 'ask-2000', granted: true, probe: false }]);
  assert.equal(describeLimiter(data, settings, 2000).retryAfterUntil, null);
  assert.equal(describeLimiter(data, settings, 2000).breaker.state, 'closed', 'one throttled answer is below the threshold');

  // A 503 that says when to come back holds too; a shorter Retry-After never shortens a longer one; the breaker's maxOpenMs bounds it.
  ask(3000, [{ id: 'y', outcome: 'unavailable', tokens: 10, retryAfterMs: 60_000 }]);
  ask(3100, [{ id: 'z', outcome: 'throttled', tokens: 0, retryAfterMs: 100 }]);
  assert.equal(describeLimiter(data, settings, 3200).retryAfterUntil, new Date(8000).toISOString());
  assert.equal(describeLimiter(data, settings, 3200).breaker.state, 'open', 'three failures within the window open it');
  // Without a Retry-After, a failure holds nothing; nor does one when replaying a run recorded before the hold.
  const quiet = newLimiter('gpt');
  exchange(quiet, { settings, settle: [{ id: 'a', outcome: 'unavailable', tokens: 10 }], admit: [] }, 0);
  exchange(quiet, { settings, settle: [{ id: 'b', outcome: 'throttled', tokens: 0, retryAfterMs: 1000 }], admit: [] }, 0, false);
  assert.equal(describeLimiter(quiet, settings, 1).retryAfterUntil, null);
});

test('token limit: settlements free the unused estimate before the batch’s admissions', () => {
  const settings: LimiterSettings = { ...settingsOf(), tokensPerMinute: 1000 };
  const data = newLimiter('gpt');
  assert.deepEqual(
    exchange(
      data,
      {
        settings,
        settle: [],
        admit: [
          { id: 'a', tokens: 600 },
          { id: 'b', tokens: 600 },
        ],
      },
      0,
    ),
    [
      { id: 'a', granted: true, probe: false },
      { id: 'b', granted: false, retryInMs: WINDOW_MS + GRANT_SLACK_MS, reason: 'token limit: 1000 per minute' },
    ],
  );
  const answers = exchange(data, { settings, settle: [{ id: 'a', outcome: 'ok', tokens: 350 }], admit: [{ id: 'b', tokens: 600 }] }, 10);
  assert.deepEqual(answers, [{ id: 'b', granted: true, probe: false }]);
  assert.deepEqual(describeLimiter(data, settings, 20).tokens, { perMinute: 1000, reservedInWindow: 950, available: 50 });
  assert.deepEqual(exchange(data, { settings, settle: [], admit: [{ id: 'c', tokens: 5000 }] }, 30), [
    { id: 'c', granted: false, rejected: "the call needs an estimated 5000 tokens, more than the limiter's whole 1000 per minute" },
  ]);
});

test('a changed setting applies with the next batch', () => {
  const data = newLimiter('gpt');
  const tight: LimiterSettings = { ...settingsOf(), tokensPerMinute: 100 };
  assert.equal(exchange(data, { settings: tight, settle: [], admit: [{ id: 'a', tokens: 200 }] }, 0)[0]!.granted, false);
  const wider = { ...tight, tokensPerMinute: 1000 };
  assert.equal(exchange(data, { settings: wider, settle: [], admit: [{ id: 'a', tokens: 200 }] }, 1)[0]!.granted, true);
});

test('a limiter never used shows its configured limits and nothing used', () => {
  assert.deepEqual(neverUsedLimiter('shared', { ...settingsOf(), tokensPerMinute: 5000 }), {
    limiter: 'shared',
    tokens: { perMinute: 5000, reservedInWindow: 0, available: 5000 },
    breaker: { enabled: true, state: 'closed', openUntil: null, recentFailures: 0, opened: 0 },
    retryAfterUntil: null,
  });
});

const estimateCases: { name: string; request: Parameters<typeof estimateTokens>[0]; expect: number }[] = [
  {
    name: 'chat with maxTokens',
    request: { task: 'chat', messages: [{ role: 'user', content: 'x'.repeat(41) }], maxTokens: 20 },
    expect: 11 + PROMPT_OVERHEAD_TOKENS + 20,
  },
  {
    name: 'chat without maxTokens',
    request: {
      task: 'chat',
      messages: [
        { role: 'system', content: 'abcd' },
        { role: 'user', content: 'abcd' },
      ],
    },
    expect: 2 + PROMPT_OVERHEAD_TOKENS + DEFAULT_COMPLETION_TOKENS,
  },
  { name: 'summarize', request: { task: 'summarize', text: 'y'.repeat(400), maxTokens: 50 }, expect: 100 + PROMPT_OVERHEAD_TOKENS + 50 },
  { name: 'embed has no completion', request: { task: 'embed', text: 'z'.repeat(8), maxTokens: 50 }, expect: 2 + PROMPT_OVERHEAD_TOKENS },
];
for (const c of estimateCases) test(`estimate: ${c.name}`, () => assert.equal(estimateTokens(c.request), c.expect));

const outcomeCases: { error: unknown; expect: ReturnType<typeof failureOutcome> }[] = [
  {
    error: new ProviderError('429', 'rate_limited', { status: 429, retryAfterMs: 3000 }),
    expect: { outcome: 'throttled', tokens: 0, retryAfterMs: 3000 },
  },
  { error: new ProviderError('503', 'unavailable', { status: 503 }), expect: { outcome: 'unavailable', tokens: 100 } },
  {
    error: new ProviderError('503 with Retry-After', 'unavailable', { status: 503, retryAfterMs: 2000 }),
    expect: { outcome: 'unavailable', tokens: 100, retryAfterMs: 2000 },
  },
  { error: new ProviderError('slow', 'timeout'), expect: { outcome: 'unavailable', tokens: 100 } },
  { error: new ProviderError('400', 'rejected', { status: 400 }), expect: { outcome: 'ok', tokens: 100 } },
  { error: new ProviderError('empty', 'invalid_input'), expect: { outcome: 'ok', tokens: 0 } },
  { error: new Error('cancelled'), expect: { outcome: 'abandoned', tokens: 100 } },
];
for (const c of outcomeCases) {
  test(`a failure as the limiter counts it: ${(c.error as Error).message}`, () => assert.deepEqual(failureOutcome(c.error, 100), c.expect));
}

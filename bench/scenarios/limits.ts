/**
 * limits: what a provider sees from pools with fleet-wide limits under twice the load they allow — calls
 * per second against `requestsPerSecond` (Temporal's task-queue rate limit) and tokens per minute against
 * `tokensPerMinute` (the limiter workflow), each pool with two worker processes, both at once. The provider
 * is the fake OpenAI server; its request log, with the usage it reported, is the measure.
 */
import { estimateTokens } from '../../src/inference/limiter-call';
import { startFakeOpenAI, type RecordedRequest } from '../../testkit/fake-openai';
import { assertNoErrors, openLoop } from '../lib/load';
import type { Scenario, ScenarioTarget } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { round, steadyRate } from '../lib/stats';
import { jobBody, rawSubmitter } from '../lib/submit';
import { eventually } from '../../testkit/wait';

const WORKERS = 2;
const SLOTS = 8;
const OVERLOAD = 2;
const WINDOW_MS = 60_000;
/** Each token job: a summary of this text, at most this many tokens back. */
const TEXT = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
const RPS_TEXT = 'A short text to summarize.';
const MAX_TOKENS = 30;

const SETTINGS = {
  full: { requestsPerSecond: 5, rpsLoadS: 60, tokensPerMinute: 6000, tokenLoadS: 200 },
  quick: { requestsPerSecond: 5, rpsLoadS: 4, tokensPerMinute: 3000, tokenLoadS: 10 },
};

interface Measured {
  configured: number;
  offered: number;
  /** Sustained: calls/s over the middle 80 % of calls; tokens/min as the mean over every 60-s window. */
  achieved: number;
  busiest: number;
  calls: number;
}

/** Starts `rate` jobs per second of `body` for `seconds`, and resolves when all are started. */
async function offer(stack: BenchStack, body: ReturnType<typeof jobBody>, rate: number, seconds: number): Promise<void> {
  const submit = rawSubmitter(stack, body);
  assertNoErrors(`starting ${body.pool} jobs`, await openLoop({ ratePerSec: rate, count: Math.round(rate * seconds), fire: submit }));
}

function measureCalls(requests: RecordedRequest[], configured: number, offered: number): Measured {
  const times = requests.map((r) => r.receivedAt).sort((a, b) => a - b);
  let busiest = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    busiest = Math.max(busiest, i - j + 1);
  }
  return { configured, offered, achieved: steadyRate(times), busiest, calls: times.length };
}

/** Tokens in [from, from + 60 s) of the provider's log, by its own usage counts. */
const tokensIn = (requests: RecordedRequest[], from: number) =>
  requests.reduce((sum, r) => (r.receivedAt >= from && r.receivedAt < from + WINDOW_MS ? sum + (r.usageTokens ?? 0) : sum), 0);

function measureTokens(requests: RecordedRequest[], configured: number, offered: number, end: number): Measured & { windows: number } {
  const answered = requests.filter((r) => r.status === 200);
  const start = Math.min(...answered.map((r) => r.receivedAt));
  // Every 60-s window of the run, slid by 250 ms: the busiest is what the limit bounds, the mean is the sustained rate.
  const sums: number[] = [];
  for (let from = start; from + WINDOW_MS <= end; from += 250) sums.push(tokensIn(answered, from));
  if (sums.length === 0) sums.push(tokensIn(answered, start)); // a quick run: shorter than one window
  return {
    configured,
    offered,
    achieved: sums.reduce((a, b) => a + b, 0) / sums.length,
    busiest: Math.max(...sums, ...answered.map((r) => tokensIn(answered, r.receivedAt - WINDOW_MS + 1))),
    calls: answered.length,
    windows: sums.length,
  };
}

export const limits: Scenario = {
  name: 'limits',
  description: `provider calls/s and tokens/min against the pools' configured limits under ${OVERLOAD}× overload, ${WORKERS} worker processes per pool`,
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const provider = await startFakeOpenAI();
    const pool = { provider: 'openai' as const, baseUrl: provider.url, model: 'fake-model', concurrency: SLOTS };
    const stack = await startBenchStack({
      pools: {
        rps: { ...pool, rateLimit: { requestsPerSecond: s.requestsPerSecond } },
        tokens: { ...pool, rateLimit: { tokensPerMinute: s.tokensPerMinute } },
      },
      poolWorkers: { rps: WORKERS, tokens: WORKERS },
      log,
    });
    try {
      // Token jobs wait up to a minute for the window: their attempts may, and their deadline allows the whole run.
      const patient = { timeouts: { attemptMs: 600_000, deadlineMs: 3_600_000 } };
      const rpsBody = { ...jobBody('rps'), task: 'summarize', input: { text: RPS_TEXT }, ...patient };
      const tokenBody = { ...jobBody('tokens'), task: 'summarize', input: { text: TEXT }, maxTokens: MAX_TOKENS, ...patient };
      const estimate = estimateTokens({ task: 'summarize', text: TEXT, maxTokens: MAX_TOKENS });
      // One job through each pool first: it starts the limiter workflows, and tells how many tokens a call uses.
      await Promise.all([rawSubmitter(stack, rpsBody)(), rawSubmitter(stack, tokenBody)()]);
      const firstTokenCall = await eventually('the first token job to reach the provider', () =>
        callsOf(provider.requests, 'tokens').find((r) => r.usageTokens),
      );
      const tokensPerCall = firstTokenCall.usageTokens!;
      const tokenJobsPerSec = (OVERLOAD * s.tokensPerMinute) / tokensPerCall / 60;
      log(
        `offering ${OVERLOAD * s.requestsPerSecond} rps jobs/s for ${s.rpsLoadS} s and ${round(tokenJobsPerSec, 2)} token jobs/s (${tokensPerCall} tokens each, ${estimate} estimated) for ${s.tokenLoadS} s`,
      );

      const started = Date.now();
      await Promise.all([
        offer(stack, rpsBody, OVERLOAD * s.requestsPerSecond, s.rpsLoadS),
        offer(stack, tokenBody, tokenJobsPerSec, s.tokenLoadS),
      ]);
      const end = Math.max(Date.now(), started + s.tokenLoadS * 1000);
      await new Promise((resolve) => setTimeout(resolve, end - Date.now()));

      const during = provider.requests.filter((r) => r.receivedAt >= started && r.receivedAt <= end);
      const calls = measureCalls(callsOf(during, 'rps'), s.requestsPerSecond, OVERLOAD * s.requestsPerSecond);
      // The token window counts from the first call (the warm-up job's), so its reservations count too.
      const tokens = measureTokens(
        callsOf(provider.requests, 'tokens').filter((r) => r.receivedAt <= end),
        s.tokensPerMinute,
        OVERLOAD * s.tokensPerMinute,
        end,
      );
      return report(quick, s, calls, tokens, { estimate, tokensPerCall });
    } finally {
      await stack.stop();
      await provider.close();
    }
  },
};

/** A pool's calls in the provider's log, told apart by their text. */
const callsOf = (requests: RecordedRequest[], pool: 'rps' | 'tokens') =>
  requests.filter((r) => JSON.stringify(r.body).includes(pool === 'tokens' ? TEXT : RPS_TEXT));

function report(
  quick: boolean,
  s: (typeof SETTINGS)['full'],
  calls: Measured,
  tokens: ReturnType<typeof measureTokens>,
  per: { estimate: number; tokensPerCall: number },
) {
  // What a call can use beyond its reservation; estimates above the actual count make it zero.
  const reconciliationError = Math.max(0, per.tokensPerCall - per.estimate) * tokens.calls;
  const row = (limit: string, m: Measured, unit: string) => [
    limit,
    `${m.configured} ${unit}`,
    `${m.offered} ${unit}`,
    `${round(m.achieved, 2)} ${unit}`,
    round(m.achieved / m.configured, 3),
    `${m.busiest} ${unit}`,
    m.calls,
  ];
  const targets: ScenarioTarget[] = [
    {
      name: 'calls/s vs requestsPerSecond',
      target: 'within 5 % of the limit',
      measured: `${round(calls.achieved, 2)} of ${calls.configured} (${round((100 * calls.achieved) / calls.configured, 1)} %)`,
      met: quick ? null : Math.abs(calls.achieved / calls.configured - 1) <= 0.05,
    },
    {
      name: 'tokens/min vs tokensPerMinute, sustained',
      target: 'within 5 % of the limit',
      measured: `${round(tokens.achieved)} of ${tokens.configured} (${round((100 * tokens.achieved) / tokens.configured, 1)} %)`,
      met: quick ? null : Math.abs(tokens.achieved / tokens.configured - 1) <= 0.05,
    },
    {
      name: 'tokens in any 60 s',
      target: `≤ the limit + the reconciliation error (${reconciliationError})`,
      measured: `${tokens.busiest}`,
      met: quick ? null : tokens.busiest <= tokens.configured + reconciliationError,
    },
  ];
  return {
    settings: {
      pools: `openai-compatible (the fake provider, answering at once), ${WORKERS} worker processes × ${SLOTS} slots each, breaker on (default)`,
      requestsPerSecond: s.requestsPerSecond,
      tokensPerMinute: s.tokensPerMinute,
      load: `open loop at ${OVERLOAD}× each limit: ${OVERLOAD * s.requestsPerSecond} summarize jobs/s for ${s.rpsLoadS} s; ${OVERLOAD}× the tokens per minute for ${s.tokenLoadS} s`,
      tokenJob: `summarize of ${TEXT.length} characters, maxTokens ${MAX_TOKENS}: ${per.estimate} tokens estimated, ${per.tokensPerCall} by the provider's count`,
      measure:
        "the provider's request log: calls/s over the middle 80 % of calls; tokens (the provider's usage) in every 60-s window, slid by 250 ms",
    },
    columns: ['limit', 'configured', 'offered', 'achieved', 'achieved / configured', 'busiest (1 s / 60 s)', 'calls'],
    rows: [row('requests per second', calls, 'calls/s'), row('tokens per minute', tokens, 'tokens/min')],
    metrics: {
      configuredRequestsPerSecond: calls.configured,
      achievedCallsPerSec: calls.achieved,
      configuredTokensPerMinute: tokens.configured,
      achievedTokensPerMinute: tokens.achieved,
      busiestMinuteTokens: tokens.busiest,
    },
    targets,
    notes: [
      quick
        ? 'A quick run is shorter than one 60-s window: its token figures are the tokens of the whole run.'
        : `Sustained tokens/min is the mean over ${tokens.windows} windows of 60 s.`,
      'The token window keeps each reservation 60 s plus a 2-s grant slack, so a pool with a backlog can sustain at most 60/62 of the limit (96.8 %).',
      `Reconciliation error: tokens calls used beyond their estimate (${per.tokensPerCall} used, ${per.estimate} estimated per call): ${reconciliationError}.`,
      "When calls arrive at idle workers, Temporal's queue rate limit can let the first second see up to about twice the limit; the middle-80 % rate leaves that start out.",
    ],
  };
}

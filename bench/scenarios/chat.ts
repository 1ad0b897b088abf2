/**
 * chat: conversations through the HTTP API — 100 conversations × 10 messages, each message through the
 * default pipeline's three handlers (moderation, then intent and reply side by side) — at 1, 2 and 4
 * inference worker processes. Messages/s, and each message's latency from its acceptance to its last
 * handler's end, read from the records the conversations store.
 *
 * The handlers run on a synthetic pool (100-ms timers, 2 slots per process), not on the local model: on
 * two cores the model's CPU would compete with the server and the workers, so the numbers would measure
 * wink-nlp and the machine, and more worker processes cannot add cores. With I/O-like handlers what is
 * measured is the orchestration, and worker processes add capacity the way remote model servers do.
 */
import { createBlobStore } from '../../src/blobs';
import { OPEN_TENANT } from '../../src/api/auth';
import { type MessageRecord } from '../../src/conversations/contract';
import { DEFAULT_CHAT_PIPELINE } from '../../src/conversations/pipeline';
import { loadConfig } from '../../src/config';
import { eventually } from '../../testkit/wait';
import { cpuUsed, sampleCpu } from '../lib/cpu';
import { assertNoErrors, closedLoop } from '../lib/load';
import type { Scenario, ScenarioTarget } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { round, summarize } from '../lib/stats';
import { syntheticPool } from '../lib/submit';

const POOL = 'chat';
const LATENCY_MS = 100;
const SLOTS = 2;
const SUBMIT_CONCURRENCY = 32;
/** Handler runs per message: the default pipeline's three. */
const HANDLERS = DEFAULT_CHAT_PIPELINE.stages.reduce((n, s) => n + s.handlers.length, 0);

const SETTINGS = {
  full: { conversations: 100, messages: 10, levels: [1, 2, 4], warmup: { conversations: 5, messages: 2 } },
  quick: { conversations: 10, messages: 3, levels: [1, 2], warmup: { conversations: 1, messages: 1 } },
};

/** The default pipeline with its handlers on the synthetic pool. */
const STAGES = DEFAULT_CHAT_PIPELINE.stages.map((s) => ({ ...s, handlers: s.handlers.map((h) => ({ ...h, pool: POOL })) }));

interface Level {
  workers: number;
  records: MessageRecord[];
  messagesPerSec: number;
  latency: ReturnType<typeof summarize>;
  /** Messages that started before the previous message of their conversation had finished, or out of seq order. */
  outOfTurn: number;
  cpu: Record<string, number>;
  wallS: number;
}

async function call(stack: BenchStack, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201 && res.status !== 202) throw new Error(`POST ${path} answered ${res.status}: ${await res.text()}`);
}

/** Creates `conversations` conversations and posts `messages` to each through the API; resolves with their records. */
async function converse(
  stack: BenchStack,
  label: string,
  n: { conversations: number; messages: number },
): Promise<{ records: MessageRecord[]; firstSentMs: number }> {
  const ids = Array.from({ length: n.conversations }, (_, i) => `${label}-${i}`);
  const created = await closedLoop({
    concurrency: SUBMIT_CONCURRENCY,
    count: ids.length,
    fire: (i) => call(stack, '/v1/conversations', { id: ids[i], stages: STAGES }),
  });
  assertNoErrors(`creating the ${label} conversations`, created);
  // Message k of every conversation, then k + 1: each conversation gets its messages while others do too.
  const posted = await closedLoop({
    concurrency: SUBMIT_CONCURRENCY,
    count: ids.length * n.messages,
    fire: (i) =>
      call(stack, `/v1/conversations/${ids[i % ids.length]}/messages`, {
        text: `Message ${Math.floor(i / ids.length)} of ${ids[i % ids.length]}: the deploy went fine.`,
      }),
  });
  assertNoErrors(`posting the ${label} messages`, posted);

  // Each finished message's record is stored by its conversation: counting files asks nothing of Temporal.
  const blobs = createBlobStore(loadConfig(stack.env).blobs);
  const scope = `conversations/${OPEN_TENANT}`;
  const keys = await eventually(
    `${ids.length * n.messages} ${label} messages to finish`,
    async () => {
      const all = (await blobs.list(scope)).filter((k) => k.startsWith(`${scope}/${label}-`));
      return all.length >= ids.length * n.messages ? all : undefined;
    },
    120_000 + ids.length * n.messages * 500,
  );
  const records = await Promise.all(keys.map(async (k) => JSON.parse((await blobs.get(k)).toString('utf8')) as MessageRecord));
  return { records, firstSentMs: Math.min(...posted.sentAt) };
}

/** From acceptance (the workflow's time when it took the message) to the end of its last handler. */
const latencyMs = (r: MessageRecord) =>
  Math.max(...r.stages.flatMap((s) => s.handlers.map((h) => Date.parse(h.finishedAt!)))) - Date.parse(r.acceptedAt);

function outOfTurn(records: MessageRecord[]): number {
  const byConversation = new Map<string, MessageRecord[]>();
  for (const r of records) byConversation.set(r.conversationId, [...(byConversation.get(r.conversationId) ?? []), r]);
  let count = 0;
  for (const own of byConversation.values()) {
    own.sort((a, b) => a.seq - b.seq);
    own.forEach((r, i) => {
      const before = own[i - 1];
      if (r.status !== 'succeeded' || (before && (r.seq !== before.seq + 1 || Date.parse(r.startedAt!) < Date.parse(before.finishedAt!))))
        count++;
    });
  }
  return count;
}

async function runLevel(stack: BenchStack, workers: number, s: (typeof SETTINGS)['full'], log: (line: string) => void): Promise<Level> {
  await stack.stopWorkers(POOL);
  await stack.startWorkers(POOL, workers);
  const before = sampleCpu(stack.processes());
  const { records, firstSentMs } = await converse(stack, `w${workers}`, s);
  const after = sampleCpu(stack.processes());
  const lastDone = Math.max(...records.map((r) => Date.parse(r.finishedAt!)));
  const level: Level = {
    workers,
    records,
    messagesPerSec: (records.length * 1000) / (lastDone - firstSentMs),
    latency: summarize(records.map(latencyMs)),
    outOfTurn: outOfTurn(records),
    cpu: cpuUsed(before, after),
    wallS: (after.at - before.at) / 1000,
  };
  log(
    `${workers} worker(s): ${records.length} messages at ${round(level.messagesPerSec)} messages/s, latency p50 ${round(level.latency.p50)} ms`,
  );
  return level;
}

const share = (l: Level, role: string) => `${Math.round((100 * (l.cpu[role] ?? 0)) / l.wallS)}%`;

export const chat: Scenario = {
  name: 'chat',
  description: `conversations through the API: ${SETTINGS.full.conversations} × ${SETTINGS.full.messages} messages, ${HANDLERS} handlers each (the default pipeline on a ${LATENCY_MS}-ms synthetic pool), at ${SETTINGS.full.levels.join(', ')} inference worker processes`,
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const stack = await startBenchStack({ pools: { [POOL]: syntheticPool(SLOTS, LATENCY_MS) }, api: true, log });
    try {
      log(`warm-up: ${s.warmup.conversations} × ${s.warmup.messages} messages`);
      await converse(stack, 'warmup', s.warmup);
      const levels: Level[] = [];
      for (const workers of s.levels) levels.push(await runLevel(stack, workers, s, log));
      return report(s, levels, quick);
    } finally {
      await stack.stop();
    }
  },
};

function report(s: (typeof SETTINGS)['full'], levels: Level[], quick: boolean) {
  const base = levels[0]!;
  // Each message holds a slot for LATENCY_MS per handler run: the rate the workers' slots allow.
  const ideal = (l: Level) => (l.workers * SLOTS * 1000) / (LATENCY_MS * HANDLERS);
  const rows = levels.map((l) => [
    `${l.workers} × ${SLOTS} slots`,
    `${s.conversations} × ${s.messages}`,
    round(l.messagesPerSec),
    round(l.messagesPerSec / base.messagesPerSec, 2),
    round(ideal(l)),
    round(l.latency.p50),
    round(l.latency.p99),
    `temporal ${share(l, 'temporal')} · workflows ${share(l, 'workflows')} · api ${share(l, 'api')} · pool ${share(l, `pool:${POOL}`)} · other ${share(l, 'other')}`,
  ]);
  const metrics: Record<string, number> = {};
  for (const l of levels) {
    metrics[`workers${l.workers}MessagesPerSec`] = l.messagesPerSec;
    metrics[`workers${l.workers}LatencyP50Ms`] = l.latency.p50;
    metrics[`workers${l.workers}LatencyP99Ms`] = l.latency.p99;
  }
  const outOfTurn = levels.reduce((n, l) => n + l.outOfTurn, 0);
  const targets: ScenarioTarget[] = [
    {
      name: 'each conversation: one message at a time, in seq order, all succeeded',
      target: '0 exceptions',
      measured: `${outOfTurn} of ${levels.reduce((n, l) => n + l.records.length, 0)} messages`,
      met: outOfTurn === 0,
    },
  ];
  return {
    settings: {
      conversations: s.conversations,
      messagesPerConversation: s.messages,
      pipeline: 'the default: moderation (sentiment), then intent (keywords) and reply (summarize) side by side, fan-in all',
      pool: `synthetic, ${LATENCY_MS} ms per call, ${SLOTS} slots per inference worker process`,
      levels: s.levels,
      submit: `through the API (no keys, loopback): conversations created first, then message k of every conversation before k + 1, ${SUBMIT_CONCURRENCY} requests in flight`,
      measure:
        'messages/s = messages / (first POST sent → last message finished); latency = acceptance → last handler finished (workflow times in the stored records)',
      server: 'temporal server start-dev, file-backed SQLite (as `switchyard up`); 1 workflow worker process, 1 API process',
    },
    columns: [
      'inference workers × slots',
      'conversations × messages',
      'messages/s',
      'vs 1 worker',
      'ideal messages/s',
      'latency p50 ms',
      'latency p99 ms',
      'CPU (share of one core)',
    ],
    rows,
    metrics,
    targets,
    notes: [
      `Ideal messages/s is what the slots allow: workers × ${SLOTS} slots / (${HANDLERS} handlers × ${LATENCY_MS} ms); above the server's ceiling more workers add nothing.`,
      'Latency includes the wait behind earlier messages of the same conversation: each conversation runs one message at a time.',
      ...(quick ? ['Quick run: a few messages per level; the numbers only show that the scenario runs.'] : []),
    ],
  };
}

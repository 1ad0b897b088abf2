/**
 * document: a 1 MB text document (about 1,000 chunks) through the whole pipeline on the embedded default
 * (the local model), uploaded and submitted through the HTTP API as a user would. Chunks/s at several
 * `maxParallel` settings with one inference worker, and with two workers at the highest; the job's
 * history (events and bytes over all its runs, continue-as-new included).
 */
import { workflowIdFor } from '../../src/jobs/ids';
import { OPEN_TENANT } from '../../src/api/auth';
import type { Scenario } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { historyOverRuns, type RunsHistory } from '../../testkit/jobs';
import { round } from '../lib/stats';

const POOL = 'local';
const SLOTS = 16;
const TASKS = ['sentiment', 'entities', 'keywords'];
const CHUNK_CHARS = 1000;
const POLL_MS = 500;

const SETTINGS = {
  full: {
    bytes: 1024 * 1024,
    runs: [
      { maxParallel: 4, workers: 1 },
      { maxParallel: 16, workers: 1 },
      { maxParallel: 64, workers: 1 },
      { maxParallel: 64, workers: 2 },
    ],
  },
  quick: { bytes: 40 * 1024, runs: [{ maxParallel: 8, workers: 1 }] },
};

const WORDS = (
  'the team shipped a careful release after weeks of testing while customers in Berlin and Paris reported ' +
  'faster answers and fewer errors although some invoices from March were delayed and support worked late to fix them'
).split(' ');

/** Deterministic prose of `bytes` characters: sentences of 8–20 words from a small vocabulary. */
export function prose(bytes: number): string {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const sentences: string[] = [];
  let size = 0;
  while (size < bytes) {
    const words = Array.from({ length: 8 + Math.floor(next() * 13) }, () => WORDS[Math.floor(next() * WORDS.length)]!);
    const sentence = `${words[0]!.charAt(0).toUpperCase()}${words.join(' ').slice(1)}.`;
    sentences.push(sentence);
    size += sentence.length + 1;
  }
  return sentences.join(sentences.length % 7 === 0 ? '\n\n' : ' ').slice(0, bytes);
}

async function api(stack: BenchStack, method: string, path: string, body?: string | object, contentType = 'application/json') {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': contentType },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Polls the job twice a second (a progress query each time, so not faster: it would load what is measured). */
async function finished(stack: BenchStack, id: string): Promise<any> {
  for (const deadline = Date.now() + 30 * 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, POLL_MS))) {
    const job = await api(stack, 'GET', `/v1/jobs/${id}`);
    if (job.status === 'succeeded') return job;
    if (['failed', 'cancelled', 'timed_out'].includes(job.status))
      throw new Error(`job ${id} ended ${job.status}: ${JSON.stringify(job.lastFailure)}`);
  }
  throw new Error(`job ${id} did not finish within 30 minutes`);
}

interface Run {
  maxParallel: number;
  workers: number;
  chunks: number;
  wallS: number;
  chunksPerSec: number;
  history: RunsHistory;
}

async function runOnce(
  stack: BenchStack,
  documentId: string,
  maxParallel: number,
  workers: number,
  log: (l: string) => void,
): Promise<Run> {
  const job = await api(stack, 'POST', '/v1/jobs', {
    type: 'document',
    source: { documentId },
    pool: POOL,
    tasks: TASKS,
    chunking: { targetChars: CHUNK_CHARS },
    maxParallel,
  });
  const done = await finished(stack, job.id);
  const wallS = (Date.parse(done.finishedAt) - Date.parse(done.createdAt)) / 1000;
  const chunks = done.result.chunksTotal as number;
  if (done.result.chunksDone !== chunks) throw new Error(`job ${job.id}: ${done.result.chunksDone} of ${chunks} chunks done`);
  const history = await historyOverRuns(stack.client, workflowIdFor(OPEN_TENANT, job.id));
  const run = { maxParallel, workers, chunks, wallS, chunksPerSec: chunks / wallS, history };
  log(
    `maxParallel ${maxParallel}, ${workers} worker(s): ${chunks} chunks in ${round(wallS)} s = ${round(run.chunksPerSec)} chunks/s; ${history.runs} runs, ${history.events} events`,
  );
  return run;
}

export const document: Scenario = {
  name: 'document',
  description:
    'a 1 MB text document end to end through the document pipeline: chunks/s by maxParallel and inference workers, and its history',
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const stack = await startBenchStack({
      pools: { [POOL]: { provider: 'local', concurrency: SLOTS } },
      poolWorkers: { [POOL]: 1 },
      api: true,
      log,
    });
    try {
      const text = prose(s.bytes);
      const upload = await api(stack, 'POST', '/v1/documents', text, 'text/plain');
      const runs: Run[] = [];
      let workers = 1;
      for (const r of s.runs) {
        if (r.workers > workers) {
          await stack.startWorkers(POOL, r.workers - workers);
          workers = r.workers;
        }
        runs.push(await runOnce(stack, upload.id, r.maxParallel, r.workers, log));
      }
      const base = runs[0]!;
      const metrics: Record<string, number> = {
        chunks: base.chunks,
        historyEvents: base.history.events,
        historyBytes: base.history.bytes,
        runsPerJob: base.history.runs,
      };
      for (const r of runs) metrics[`parallel${r.maxParallel}Workers${r.workers}ChunksPerSec`] = r.chunksPerSec;
      return {
        settings: {
          document: `${s.bytes} bytes of generated English prose, uploaded with POST /v1/documents`,
          job: { tasks: TASKS, chunking: { targetChars: CHUNK_CHARS }, failurePolicy: 'continue (default)' },
          pool: `local model (wink-nlp), ${SLOTS} slots per inference worker process`,
          server: 'temporal server start-dev, file-backed SQLite (as `switchyard up`); 1 workflow worker process; API on loopback',
          rate: 'chunks / (job finished − job accepted): upload not counted; extraction, splitting, aggregation and publishing are',
        },
        columns: [
          'maxParallel',
          'inference workers',
          'chunks',
          'seconds',
          'chunks/s',
          'runs (continue-as-new)',
          'history events',
          'history KB',
        ],
        rows: runs.map((r) => [
          r.maxParallel,
          r.workers,
          r.chunks,
          round(r.wallS),
          round(r.chunksPerSec),
          r.history.runs,
          r.history.events,
          round(r.history.bytes / 1024),
        ]),
        metrics,
        targets: [],
        notes: [
          'Each chunk is one activity on the pool: about 3 history events (scheduled, started, completed) plus its share of workflow tasks; the workflow continues as new when Temporal suggests it, so no run grows past a few thousand events.',
          'The local model runs on the same two cores as the server and the workers: past a few chunks in flight, the cores, not maxParallel, set the pace.',
        ],
      };
    } finally {
      await stack.stop();
    }
  },
};

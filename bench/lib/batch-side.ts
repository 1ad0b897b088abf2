/**
 * Switchyard's batches as a client runs them, on a bench stack of their own (dev server, workflow worker,
 * one inference worker process on a synthetic pool, the API): a JSONL file POSTed to /v1/batches, the
 * batch polled with GET /v1/batches/:id until it has ended, its output and errors read back and checked
 * against the file, and its workflow's history summed over all its runs.
 */
import { OPEN_TENANT } from '../../src/api/auth';
import { batchWorkflowId, type BatchStatus } from '../../src/batches/contract';
import { ENDED } from '../../src/clients/batches/resource';
import { loadConfig, type Config } from '../../src/config';
import { startBenchStack } from '../../testkit/bench-stack';
import { historyOverRuns, type RunsHistory } from '../../testkit/jobs';
import { cpuUsed, sampleCpu } from './cpu';
import { jobBody, syntheticPool } from './submit';

export const BATCH_POOL = 'synthetic';
/** GET /v1/batches/:id twice a second: each answer describes the workflow, so polling faster would load what is measured. */
const POLL_MS = 500;
const WAIT_LIMIT_MS = 30 * 60_000;

/** `items` lines of Switchyard's job shape, each the job the other benchmarks send (jobBody), custom_ids `item-1`…. */
export function batchFile(items: number): string {
  const { task, input } = jobBody(BATCH_POOL);
  return Array.from({ length: items }, (_, i) => `${JSON.stringify({ custom_id: `item-${i + 1}`, task, input })}\n`).join('');
}

export interface BatchFigures {
  items: number;
  /** POST sent → its 202: the file streamed into the blob store, validated whole and split into groups, and the workflow started. */
  uploadMs: number;
  /** The 202 → the batch's `finalizingAt` (every item had run). */
  acceptedToLastItemMs: number;
  /** The 202 → its `completedAt` (finalized: the batch as a whole finished). */
  acceptedToFinishedMs: number;
  /** Items over accepted → last item. */
  itemsPerSec: number;
  history: RunsHistory;
  /** CPU ms per item by process, from the POST to the poll that saw the batch completed. */
  cpuMsPerItem: Record<string, number>;
  /** What the output check found, e.g. "10000 custom_ids once each, all succeeded; 0 errors". */
  output: string;
}

interface BatchResource {
  id: string;
  status: BatchStatus;
  requestCounts: { total: number; completed: number; failed: number };
  finalizingAt: string | null;
  completedAt: string | null;
  error: unknown;
}

export interface BatchSide {
  /** The batch settings the stack's API and workers run with (group size, groups at once, limits). */
  settings: Config['batches'];
  /** Runs a batch of `items` through the API, unmeasured: JIT, connections and the workflow bundle warm. */
  warmUp(items: number): Promise<void>;
  /** Runs a batch of `items` through the API, measures it, and checks its output. */
  run(items: number): Promise<BatchFigures>;
  stop(): Promise<void>;
}

export async function startBatchSide(opts: { slots: number; latencyMs: number; log: (line: string) => void }): Promise<BatchSide> {
  const stack = await startBenchStack({ pools: { [BATCH_POOL]: syntheticPool(opts.slots, opts.latencyMs) }, api: true, log: opts.log });
  const api = stack.apiUrl!;

  async function get(path: string): Promise<Response> {
    const res = await fetch(`${api}${path}`);
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return res;
  }

  async function ended(id: string): Promise<BatchResource> {
    for (const deadline = Date.now() + WAIT_LIMIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, POLL_MS))) {
      const batch = (await (await get(`/v1/batches/${id}`)).json()) as BatchResource;
      if (!ENDED.includes(batch.status)) continue;
      if (batch.status !== 'completed') throw new Error(`batch ${id} ended ${batch.status}: ${JSON.stringify(batch.error)}`);
      return batch;
    }
    throw new Error(`batch ${id} did not end within ${WAIT_LIMIT_MS / 60_000} minutes`);
  }

  /** Every custom_id of the file once in the output, each a result; the errors file empty. */
  async function checkOutput(batch: BatchResource, items: number): Promise<string> {
    const seen = new Map<string, number>();
    for (const text of (await (await get(`/v1/batches/${batch.id}/output`)).text()).split('\n')) {
      if (text === '') continue;
      const line = JSON.parse(text) as { custom_id: string; result?: unknown };
      if (line.result === undefined) throw new Error(`batch ${batch.id}: output line without a result: ${text}`);
      seen.set(line.custom_id, (seen.get(line.custom_id) ?? 0) + 1);
    }
    const missing = Array.from({ length: items }, (_, i) => `item-${i + 1}`).filter((id) => seen.get(id) !== 1);
    const errors = (await (await get(`/v1/batches/${batch.id}/errors`)).text()).split('\n').filter(Boolean).length;
    const { completed, failed } = batch.requestCounts;
    if (missing.length || seen.size !== items || errors || completed !== items || failed) {
      const counted = `${seen.size} custom_ids in the output, ${missing.length} missing or repeated (first: ${missing[0]}), ${errors} errors`;
      throw new Error(`batch ${batch.id} of ${items} items: ${counted}; requestCounts completed ${completed}, failed ${failed}`);
    }
    return `${items} custom_ids once each, all succeeded; 0 errors`;
  }

  /** POSTs a batch of `items` and waits until it has completed. */
  async function submit(items: number) {
    const file = batchFile(items);
    const sent = performance.now();
    const res = await fetch(`${api}/v1/batches?pool=${BATCH_POOL}&completionWindow=24h`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: file,
    });
    const acceptedAt = Date.now();
    const uploadMs = performance.now() - sent;
    if (res.status !== 202) throw new Error(`POST /v1/batches answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as BatchResource;
    return { batch: await ended(id), acceptedAt, uploadMs };
  }

  return {
    settings: loadConfig(stack.env).batches,
    async warmUp(items) {
      await submit(items);
    },
    async run(items) {
      const before = sampleCpu(stack.processes());
      const { batch, acceptedAt, uploadMs } = await submit(items);
      const cpu = cpuUsed(before, sampleCpu(stack.processes()));
      const lastItemAt = Date.parse(batch.finalizingAt!);
      return {
        items,
        uploadMs,
        acceptedToLastItemMs: lastItemAt - acceptedAt,
        acceptedToFinishedMs: Date.parse(batch.completedAt!) - acceptedAt,
        itemsPerSec: (1000 * items) / (lastItemAt - acceptedAt),
        history: await historyOverRuns(stack.client, batchWorkflowId(OPEN_TENANT, batch.id)),
        cpuMsPerItem: Object.fromEntries(
          Object.entries(cpu)
            .filter(([name]) => !['machine', 'iowait'].includes(name))
            .map(([name, seconds]) => [name, (1000 * seconds) / items]),
        ),
        output: await checkOutput(batch, items),
      };
    },
    stop: () => stack.stop(),
  };
}

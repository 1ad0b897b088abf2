/** `switchyard batch submit | status | cancel | output | errors | list`: batches from a terminal. */
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { BATCH_FILE_TYPES } from '../api/routes/batches';
import { ENDED, type BatchResource } from '../clients/batches/resource';
import type { Config } from '../config';
import { apiClient, apiRequest, printJson } from './api-client';

const BATCH_USAGE = `switchyard batch <command>

  submit FILE.jsonl [--pool P] [--window 1h|24h|7d] [--priority 1-5] [--wait]
                              send a batch file; --wait follows it to its end with a progress bar
  status BATCH_ID             print a batch
  cancel BATCH_ID             cancel a batch
  output BATCH_ID             the items that succeeded, as JSON Lines (once the batch has ended)
  errors BATCH_ID             the items that failed, as JSON Lines (once the batch has ended)
  list                        the newest batches`;

/** How often a batch is read while it is followed; without a terminal a line is printed only this often. */
const POLL_MS = 500;
const PLAIN_LINE_MS = 5000;

export async function batchCommand(config: Config, args: string[]): Promise<number> {
  const call = apiClient(config);
  const request = apiRequest(config);
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { pool: { type: 'string' }, window: { type: 'string' }, priority: { type: 'string' }, wait: { type: 'boolean' } },
  });
  const [command, target] = positionals;
  if (command === 'list') {
    printJson(await call('GET', '/v1/batches'));
    return 0;
  }
  if (!command || !target) {
    console.error(BATCH_USAGE);
    return 2;
  }
  const path = `/v1/batches/${encodeURIComponent(target)}`;
  switch (command) {
    case 'submit': {
      const query = new URLSearchParams();
      if (values.pool) query.set('pool', values.pool);
      if (values.window) query.set('completionWindow', values.window);
      if (values.priority) query.set('priority', values.priority);
      const res = await request('POST', `/v1/batches?${query.toString()}`, {
        body: Readable.toWeb(createReadStream(target)) as ReadableStream<Uint8Array>,
        headers: { 'content-type': BATCH_FILE_TYPES[0]!, 'content-length': String(statSync(target).size) },
      });
      const batch = (await res.json()) as BatchResource;
      if (!values.wait) return print(batch);
      console.error(`${batch.id}: ${batch.requestCounts.total} items on pool ${batch.pool}`);
      return print(await follow(batch.id));
    }
    case 'status':
      return print(await call('GET', path));
    case 'cancel':
      return print(await call('POST', `${path}/cancel`));
    case 'output':
    case 'errors': {
      const res = await request('GET', `${path}/${command}`);
      await pipeline(Readable.fromWeb(res.body!), process.stdout);
      return 0;
    }
    default:
      console.error(`unknown batch command "${command}"\n\n${BATCH_USAGE}`);
      return 2;
  }

  /** Reads the batch until it ends, showing its progress on stderr; the batch as it ended. */
  async function follow(id: string): Promise<BatchResource> {
    const progress = progressReporter(process.stderr);
    for (;;) {
      const batch = await call<BatchResource>('GET', `/v1/batches/${id}`);
      progress.show(batch);
      if (ENDED.includes(batch.status)) return batch;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/**
 * Progress as a batch's counts come in: on a terminal a bar redrawn in place (items done and failed of
 * the total, items per second, time left); otherwise a plain line every few seconds and at each change of status.
 */
function progressReporter(out: NodeJS.WriteStream) {
  let first: { at: number; done: number } | undefined;
  let printed = { at: 0, status: '' };
  return {
    show(batch: BatchResource) {
      const { total, completed, failed } = batch.requestCounts;
      const done = completed + failed;
      const now = Date.now();
      first ??= { at: now, done };
      const rate = now > first.at ? ((done - first.done) * 1000) / (now - first.at) : 0;
      const eta = rate > 0 ? formatDuration(((total - done) / rate) * 1000) : '–';
      const counts = `${done}/${total} done · ${failed} failed · ${rate.toFixed(1)} items/s · ETA ${eta}`;
      const ended = ENDED.includes(batch.status);
      if (out.isTTY) {
        out.write(`\r\x1b[2K${batch.status} ${bar(done, total)} ${counts}${ended ? '\n' : ''}`);
      } else if (ended || batch.status !== printed.status || now - printed.at >= PLAIN_LINE_MS) {
        out.write(`${new Date(now).toISOString().slice(11, 19)}  ${batch.id}  ${batch.status}  ${counts}\n`);
        printed = { at: now, status: batch.status };
      }
    },
  };
}

const BAR_WIDTH = 30;
function bar(done: number, total: number): string {
  const filled = total ? Math.round((done / total) * BAR_WIDTH) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

function formatDuration(ms: number): string {
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(h ? 2 : 1, '0')}:${String(s % 60).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

/** Prints the batch; the exit code says whether it failed or expired. */
function print(batch: BatchResource): number {
  printJson(batch);
  return batch.status === 'failed' || batch.status === 'expired' ? 1 : 0;
}

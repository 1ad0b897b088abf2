/** `switchyard submit | status | watch | cancel | retry`: the job API from a terminal. */
import { parseArgs } from 'node:util';
import type { Config } from '../config';
import type { JobResource } from '../jobs/resource';
import { apiClient, printJson } from './api-client';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

export async function jobsCommand(config: Config, command: string, args: string[]): Promise<number> {
  const api = apiClient(config);
  const call = (method: string, path: string, body?: unknown) => api<JobResource>(method, path, body);

  if (command === 'submit') {
    const { values } = parseArgs({
      args,
      options: {
        task: { type: 'string' },
        text: { type: 'string' },
        message: { type: 'string', multiple: true },
        pool: { type: 'string' },
        priority: { type: 'string' },
        wait: { type: 'boolean' },
      },
    });
    if (!values.task) throw new Error('--task is required');
    const messages = values.message?.map((m) => {
      const at = m.indexOf(':');
      return { role: m.slice(0, at), content: m.slice(at + 1) };
    });
    const job = await call('POST', '/v1/jobs', {
      type: 'inference',
      task: values.task,
      input: messages ? { messages } : { text: values.text },
      ...(values.pool ? { pool: values.pool } : {}),
      ...(values.priority ? { priority: Number(values.priority) } : {}),
    });
    if (!values.wait) return print(job);
    return watch(job.id);
  }

  const [id] = args;
  if (!id) throw new Error(`usage: switchyard ${command} JOB_ID`);
  if (command === 'status') return print(await call('GET', `/v1/jobs/${id}`));
  if (command === 'cancel') return print(await call('POST', `/v1/jobs/${id}/cancel`));
  if (command === 'retry') return print(await call('POST', `/v1/jobs/${id}/retry`));
  return watch(id);

  async function watch(jobId: string): Promise<number> {
    let last = '';
    for (;;) {
      const job = await call('GET', `/v1/jobs/${jobId}`);
      const line = `${job.id}  ${job.status}  attempts ${job.attempts}${progressOf(job)}${job.lastFailure ? `  last failure: ${job.lastFailure.type}` : ''}`;
      if (line !== last) console.error(`${new Date().toISOString().slice(11, 19)}  ${line}`);
      last = line;
      if (TERMINAL.has(job.status)) return print(job);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** A document job's stage and chunk counts, e.g. `  analysing 12/40 chunks (1 failed)`. */
function progressOf(job: JobResource): string {
  const p = job.progress;
  if (!p) return '';
  const chunks =
    p.chunksTotal === null ? '' : ` ${p.chunksDone}/${p.chunksTotal} chunks${p.chunksFailed ? ` (${p.chunksFailed} failed)` : ''}`;
  return `  ${p.stage}${chunks}`;
}

function print(job: JobResource): number {
  printJson(job);
  return job.status === 'failed' || job.status === 'timed_out' ? 1 : 0;
}

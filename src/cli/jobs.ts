/** `switchyard submit | status | watch | cancel`: the job API from a terminal. */
import { parseArgs } from 'node:util';
import type { Config } from '../config';
import type { JobResource } from '../jobs/resource';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

export async function jobsCommand(config: Config, command: string, args: string[]): Promise<number> {
  const call = async (method: string, path: string, body?: unknown): Promise<JobResource> => {
    const res = await fetch(`${config.cli.apiUrl}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(config.cli.apiKey ? { authorization: `Bearer ${config.cli.apiKey}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as JobResource & { detail?: string; code?: string };
    if (!res.ok) throw new Error(`${res.status} ${json.code ?? ''}: ${json.detail ?? ''}`);
    return json;
  };

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
  return watch(id);

  async function watch(jobId: string): Promise<number> {
    let last = '';
    for (;;) {
      const job = await call('GET', `/v1/jobs/${jobId}`);
      const line = `${job.id}  ${job.status}  attempts ${job.attempts}${job.lastFailure ? `  last failure: ${job.lastFailure.type}` : ''}`;
      if (line !== last) console.error(`${new Date().toISOString().slice(11, 19)}  ${line}`);
      last = line;
      if (TERMINAL.has(job.status)) return print(job);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function print(job: JobResource): number {
  console.log(JSON.stringify(job, null, 2));
  return job.status === 'failed' || job.status === 'timed_out' ? 1 : 0;
}

/**
 * Switchyard as an engine-cost side: a bench stack (dev server, workflow worker, one inference worker per
 * pool, the API) whose jobs are sent through `POST /v1/jobs`, and read back through `GET /v1/jobs/:id`.
 */
import http from 'node:http';
import { startBenchStack } from '../../testkit/bench-stack';
import { jobsQuery } from '../../testkit/jobs';
import type { EngineSide } from './engine-side';
import { closedLoop, openLoop } from './load';
import { apiSubmitter, jobBody, syntheticPool } from './submit';

export interface SwitchyardSideOptions {
  slots: number;
  /** The inference latencies the loads use: one synthetic pool each. */
  latenciesMs: readonly number[];
  env?: Record<string, string>;
  dynamicConfig?: readonly string[];
  log: (line: string) => void;
}

const poolOf = (ms: number) => `synthetic-${ms}ms`;

export async function startSwitchyardSide(opts: SwitchyardSideOptions): Promise<EngineSide & { readBack(ids: string[]): Promise<number> }> {
  const pools = Object.fromEntries(opts.latenciesMs.map((ms) => [poolOf(ms), syntheticPool(opts.slots, ms)]));
  const stack = await startBenchStack({ pools, api: true, env: opts.env, dynamicConfig: opts.dynamicConfig, log: opts.log });
  const submitters = new Map(opts.latenciesMs.map((ms) => [ms, apiSubmitter(stack, jobBody(poolOf(ms)))]));
  return {
    serverPid: stack.processes()[0]!.pid,
    client: stack.client,
    query: jobsQuery(stack.workflowTaskQueue),
    processes: () => stack.processes(),
    async run(load) {
      const submit = submitters.get(load.activityMs);
      if (!submit) throw new Error(`no pool of ${load.activityMs} ms in this stack`);
      const ids: string[] = [];
      const fire = async (i: number) => void (ids[i] = await submit());
      const result = await (load.ratePerSec
        ? openLoop({ ratePerSec: load.ratePerSec, count: load.jobs, fire })
        : closedLoop({ concurrency: load.inFlight ?? 1, count: load.jobs, fire }));
      return { ids, load: result };
    },
    /** Reads every job back as a client would; resolves with how many say `succeeded`. */
    async readBack(ids) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16, timeout: 4000 });
      // The workflow id is `<tenant>/<job id>`.
      const statusOf = (workflowId: string) =>
        fetchJson(`${stack.apiUrl}/v1/jobs/${workflowId.slice(workflowId.indexOf('/') + 1)}`, agent).then(
          (job) => (job as { status?: string }).status,
        );
      let succeeded = 0;
      await closedLoop({
        concurrency: 16,
        count: ids.length,
        fire: async (i) => void ((await statusOf(ids[i]!)) === 'succeeded' && succeeded++),
      });
      agent.destroy();
      return succeeded;
    },
    stop: () => stack.stop(),
  };
}

function fetchJson(url: string, agent: http.Agent): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`GET ${url}: ${res.statusCode} ${text}`)),
        );
      })
      .on('error', reject);
  });
}

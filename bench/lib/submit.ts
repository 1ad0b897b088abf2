/**
 * Submitting benchmark jobs: through the HTTP API, or straight through the Temporal client with exactly
 * the workflow options the API uses (`jobStartOptions`), where the API must not be the bottleneck or is
 * what is compared. Both resolve with the job's workflow id once it is accepted.
 */
import http from 'node:http';
import { OPEN_TENANT } from '../../src/api/auth';
import { loadConfig, tenantPolicy, type PoolSettings } from '../../src/config';
import { newJobId, requestFingerprint, workflowIdFor } from '../../src/jobs/ids';
import { buildSubmitSchema } from '../../src/jobs/spec';
import { jobStartOptions } from '../../src/clients/jobs/start';
import { INFERENCE_JOB_WORKFLOW } from '../../src/jobs/inference-contract';
import type { BenchStack } from '../../testkit/bench-stack';

/** A synthetic pool (see src/inference/synthetic.ts) of `slots` per process and a fixed latency. */
export function syntheticPool(slots: number, latencyMs: number): PoolSettings {
  return { provider: 'synthetic', concurrency: slots, latencyMs, jitterMs: 0 };
}

/** A job body as a client would POST it to /v1/jobs. */
export const jobBody = (pool: string) => ({ type: 'inference', task: 'sentiment', pool, input: { text: 'A benchmark job.' } });

/**
 * Returns a function that starts one job like `POST /v1/jobs` with `body` would (by default as the tenant
 * of a keyless API) and resolves with its workflow id. `fair: false` drops the fairness key and weight,
 * so the job's tasks are served first come, first served within their priority.
 */
export function rawSubmitter(
  stack: BenchStack,
  body: ReturnType<typeof jobBody>,
  opts: { tenant?: string; fair?: boolean } = {},
): () => Promise<string> {
  const config = loadConfig(stack.env);
  const spec = buildSubmitSchema(config.limits, Object.keys(config.pools)).parse(body);
  if (spec.type !== 'inference') throw new Error('benchmark jobs are inference jobs');
  const fingerprint = requestFingerprint(body);
  const tenant = opts.tenant ?? OPEN_TENANT;
  return async () => {
    const { options } = jobStartOptions({
      tenant,
      jobId: newJobId(),
      spec,
      fingerprint,
      taskQueuePrefix: stack.prefix,
      heartbeatTimeoutMs: config.limits.heartbeatTimeoutMs,
      tenantWeight: tenantPolicy(config.tenants, tenant).weight,
    });
    if (opts.fair === false) options.priority = { priorityKey: options.priority?.priorityKey };
    await stack.client.workflow.start(INFERENCE_JOB_WORKFLOW, options);
    return options.workflowId;
  };
}

/** POSTs a job to the stack's API (started with `api: true`) over kept-alive connections; to its API processes in turn when it has several. */
export function apiSubmitter(stack: BenchStack, body: ReturnType<typeof jobBody>): () => Promise<string> {
  // Drop idle sockets before the API's 5 s keep-alive timeout closes them under a request ("socket hang up").
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 4000 });
  const data = JSON.stringify(body);
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) };
  let sent = 0;
  return () =>
    new Promise((resolve, reject) => {
      const url = stack.apiUrls[sent++ % stack.apiUrls.length];
      const req = http.request(`${url}/v1/jobs`, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const id = res.statusCode === 202 ? (JSON.parse(text) as { id?: string }).id : undefined;
          if (id) resolve(workflowIdFor(OPEN_TENANT, id));
          else reject(new Error(`POST /v1/jobs answered ${res.statusCode}: ${text}`));
        });
      });
      req.on('error', reject);
      req.end(data);
    });
}

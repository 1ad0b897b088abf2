/**
 * `npm run test:cluster [-- files…]`: the integration suites of jobs, flow control (priority, fairness, rate
 * limits), documents and conversations against the local multi-service Temporal cluster on PostgreSQL
 * instead of the dev server. It brings the cluster up (`switchyard cluster up`) unless it runs already, points
 * test/run.ts at it with TEMPORAL_ADDRESS, and stops it afterwards if this run started it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { clusterStatus } from '../src/local/cluster/cluster';

const ROOT = path.resolve(__dirname, '..');
const SUITES = [
  'test/integration/jobs-api.test.ts',
  'test/integration/priority-fairness.test.ts',
  'test/integration/rate-limits.test.ts',
  'test/integration/documents-flow.test.ts',
  'test/integration/conversations.test.ts',
];

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal; this process waits for it and then cleans up.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

const switchyard = (...args: string[]) => run([path.join(ROOT, 'bin', 'switchyard'), ...args]);

async function main(): Promise<number> {
  const files = process.argv.slice(2);
  const config = loadConfig();
  const t0 = Date.now();
  // The UI is for people: a running cluster without one is used as it is.
  const wasUp = (await clusterStatus(config.cluster.dir))?.processes.every((p) => p.up || p.name === 'ui') ?? false;
  if (wasUp) console.error('test:cluster: the local cluster is running; it is used as it is and left running');
  try {
    if (!wasUp && (await switchyard('cluster', 'up')) !== 0) return 1;
    const upMs = Date.now() - t0;
    const found = await clusterStatus(config.cluster.dir);
    if (!found) throw new Error('cluster up succeeded but left no state');
    const { state } = found;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: state.address,
      ...(state.ui ? { TEMPORAL_UI_URL: `http://127.0.0.1:${state.ui.port}` } : {}),
    };
    const t1 = Date.now();
    const code = await run(['--import', 'tsx', path.join(ROOT, 'test', 'run.ts'), ...(files.length ? files : SUITES)], env);
    console.error(
      `test:cluster: ${code === 0 ? 'passed' : 'FAILED'} on Temporal ${state.version} at ${state.address} ` +
        `(cluster up ${(upMs / 1000).toFixed(1)} s, tests ${((Date.now() - t1) / 1000).toFixed(1)} s; server logs in ${path.join(config.cluster.dir, 'logs')})`,
    );
    return code;
  } finally {
    if (!wasUp) await switchyard('cluster', 'down');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error((err as Error)?.stack ?? err);
    process.exit(1);
  },
);

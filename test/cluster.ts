/**
 * `npm run test:cluster [-- files…]`: the integration suites of jobs, flow control (priority, fairness, rate
 * limits), documents and conversations against the local multi-service Temporal cluster on PostgreSQL
 * instead of the dev server, then the cluster's fault tests (test/cluster/) on their own. It brings the
 * cluster up (`switchyard cluster up`) unless it runs already, points test/run.ts at it with TEMPORAL_ADDRESS,
 * and stops it afterwards if this run started it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { useLocalCluster } from '../testkit/cluster';

const ROOT = path.resolve(__dirname, '..');
const SUITES = [
  'test/integration/jobs-api.test.ts',
  'test/integration/priority-fairness.test.ts',
  'test/integration/rate-limits.test.ts',
  'test/integration/documents-flow.test.ts',
  'test/integration/conversations.test.ts',
];
/** After the suites and alone: they stop parts of the cluster, which would fail whatever ran beside them. */
const FAULT_SUITES = ['test/cluster/faults.test.ts'];

function runTests(files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test', 'run.ts'), ...files], {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    });
    // Ctrl-C reaches the child through the terminal; this process waits for it and then cleans up.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

async function main(): Promise<number> {
  const files = process.argv.slice(2);
  const t0 = Date.now();
  const cluster = await useLocalCluster((line) => console.error(`test:cluster: ${line}`));
  try {
    const upMs = Date.now() - t0;
    const { state } = cluster;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: state.address,
      ...(state.ui ? { TEMPORAL_UI_URL: `http://127.0.0.1:${state.ui.port}` } : {}),
    };
    const t1 = Date.now();
    let code = 0;
    for (const batch of files.length ? [files] : [SUITES, FAULT_SUITES]) code = (await runTests(batch, env)) || code;
    console.error(
      `test:cluster: ${code === 0 ? 'passed' : 'FAILED'} on Temporal ${state.version} at ${state.address} ` +
        `(cluster up ${(upMs / 1000).toFixed(1)} s, tests ${((Date.now() - t1) / 1000).toFixed(1)} s; server logs in ${path.join(cluster.dir, 'logs')})`,
    );
    return code;
  } finally {
    await cluster.release();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error((err as Error)?.stack ?? err);
    process.exit(1);
  },
);

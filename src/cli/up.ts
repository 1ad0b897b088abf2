/**
 * `switchyard up` (`npm start`): the whole service on one machine — the Temporal dev server on a
 * SQLite file (unless TEMPORAL_ADDRESS points elsewhere), a workflow worker, one inference worker per
 * pool (or, with --autoscale, `switchyard autoscale` running as many as each pool's policy wants), and the
 * API — as separate processes, each started again when it dies (the dev server on the same port and file;
 * the others reconnect to it on their own). Ctrl-C stops them all; the next run resumes the jobs.
 */
import path from 'node:path';
import { offLoopbackProblems } from '../api/auth';
import { childEnvironment, type Config } from '../config';
import { ActionNeeded } from '../errors';
import { resolveTemporalBinary } from '../local/binaries';
import { startDevServer, type DevServer } from '../local/dev-server';
import { localEncryptionKey } from '../local/encryption-key';
import { processName, startSwitchyard, stopGraceFor } from '../local/processes';
import { onLocalCluster } from './cluster';
import { setup } from './setup';

export async function up(given: Config, args: string[]): Promise<number> {
  const t0 = Date.now();
  const config = args.includes('--cluster') ? await onLocalCluster(given) : given;
  const say = (line: string) => console.log(line);
  const offLoopback = offLoopbackProblems(config);
  if (offLoopback.length) throw new ActionNeeded(offLoopback.join('\n'));
  // Without keys (so on loopback) the embedded default still encrypts: with a key of its own in the data directory.
  const localKey = config.temporal.payloads.keys.length ? null : localEncryptionKey(config.dataDir);
  if (localKey) say(`${localKey.created ? 'Made an encryption key' : 'Encrypting with the key'} in ${localKey.file} (docs/security.md)`);
  const apiUrl = `http://${config.api.host}:${config.api.port}`;
  const autoscaled = args.includes('--autoscale');
  const workers: string[][] = [
    ['worker', '--workflows'],
    ...(autoscaled ? [['autoscale']] : Object.keys(config.pools).map((pool) => ['worker', '--pool', pool])),
  ];
  // The autoscaler serves its own metrics at its address and gives its workers the ports above it.
  const metrics = workerMetricsAddresses(config.worker.metricsAddress, workers.length);
  let server: DevServer | undefined;
  let address = config.temporal.address;
  let uiUrl = config.temporal.uiUrl;

  if (config.temporal.external) {
    say(`Using the Temporal server at ${address} (namespace ${config.temporal.namespace})`);
    await setup(config, say);
  } else {
    const cli = await resolveTemporalBinary('cli', {
      explicitPath: config.temporal.cliPath,
      toolsDir: config.toolsDir,
      searchPath: config.searchPath,
      log: say,
    });
    server = await startDevServer({
      cliPath: cli.path,
      port: config.devServer.port,
      uiPort: config.devServer.uiPort,
      // The UI shows payloads decoded by the API's codec server: for operators only, once there are keys.
      codecEndpoint: `${apiUrl}/codec`,
      dbFile: config.devServer.dbFile,
      namespace: config.temporal.namespace,
      logFile: path.join(config.dataDir, 'logs', 'temporal.log'),
      log: say,
      restart: true,
    });
    address = server.address;
    uiUrl = server.uiUrl ?? uiUrl;
  }

  const env = childEnvironment({
    TEMPORAL_ADDRESS: address,
    ...(uiUrl === null ? {} : { TEMPORAL_UI_URL: uiUrl }),
    ...(localKey ? { SWITCHYARD_ENCRYPTION_KEYS: localKey.entry } : {}),
  });
  // Each is restarted when it crashes (kill a worker and the job still finishes); a hung one is killed after its drain grace.
  const supervise = (command: string[], childEnv: NodeJS.ProcessEnv) =>
    startSwitchyard(command, {
      env: childEnv,
      print: say,
      restart: true,
      stopGraceMs: stopGraceFor(command, config.worker.shutdownGraceMs),
    });
  const children = [
    ...workers.map((args, i) => supervise(args, metrics ? { ...env, SWITCHYARD_WORKER_METRICS_ADDRESS: metrics[i]! } : env)),
    supervise(['api'], env),
  ];

  const stopped = new Promise<string>((resolve) => {
    // `on`, not `once`: with no listener left, a second Ctrl-C while stopping would kill `up` at once
    // (Node's default) and leave the dev server and draining workers running without it.
    process.on('SIGINT', () => resolve('SIGINT'));
    process.on('SIGTERM', () => resolve('SIGTERM'));
  });
  const allReady = Promise.all(children.map((c) => c.ready)).then(() => waitForReady(apiUrl));
  const ready = await Promise.race([allReady, stopped.then(() => false)]);
  const workerMetrics =
    metrics &&
    workers.map(
      (args, i) => `${processName(args)} http://${metrics[i]}/metrics${args[0] === 'autoscale' ? ' (its workers: the ports above)' : ''}`,
    );
  if (ready)
    say(
      banner(config, {
        address,
        uiUrl,
        apiUrl,
        dbFile: server ? config.devServer.dbFile : null,
        ms: Date.now() - t0,
        metrics: workerMetrics,
      }),
    );

  const signal = await stopped;
  say(`\n${signal}: stopping — workers finish in-flight inference (up to ${config.worker.shutdownGraceMs} ms)`);
  await Promise.all(children.map((c) => c.stop()));
  await server?.stop();
  say('stopped');
  return 0;
}

/**
 * One metrics address per worker process: processes on one machine cannot share a port, so the
 * configured address is the first and each further process takes the next port (what one would
 * write by hand; the banner lists them for the scrape config).
 */
function workerMetricsAddresses(base: string | undefined, count: number): string[] | null {
  if (!base) return null;
  const at = base.lastIndexOf(':');
  const port = Number(base.slice(at + 1));
  if (port + count - 1 > 65535)
    throw new Error(`SWITCHYARD_WORKER_METRICS_ADDRESS: ${count} worker processes need ports ${port}–${port + count - 1}`);
  return Array.from({ length: count }, (_, i) => `${base.slice(0, at)}:${port + i}`);
}

async function waitForReady(apiUrl: string): Promise<boolean> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
    const ok = await fetch(`${apiUrl}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function banner(
  config: Config,
  at: { address: string; uiUrl: string | null; apiUrl: string; dbFile: string | null; ms: number; metrics: string[] | null },
): string {
  const auth = config.api.keys[0] ? ` -H 'Authorization: Bearer ${config.api.keys[0].key}'` : '';
  return `
Switchyard is up (ready in ${(at.ms / 1000).toFixed(1)} s)
  API          ${at.apiUrl}   (docs: ${at.apiUrl}/docs)
  Temporal     ${at.address}   namespace ${config.temporal.namespace}${at.dbFile ? `   data: ${at.dbFile}` : ''}
  Temporal UI  ${at.uiUrl ?? `unknown: set TEMPORAL_UI_URL so job links open your cluster's UI`}
  Pools        ${Object.keys(config.pools).join(', ')}
  Metrics      http://${config.api.metricsAddress}/metrics${at.metrics ? at.metrics.map((m) => `\n               ${m}`).join('') : '   (workers: set SWITCHYARD_WORKER_METRICS_ADDRESS)'}

Try it:
  curl -s -X POST ${at.apiUrl}/v1/jobs${auth} -H 'Content-Type: application/json' \\
    -d '{"type":"inference","task":"sentiment","input":{"text":"Switchyard makes queues boring. I love it."}}'
  curl -s ${at.apiUrl}/v1/jobs/<id>${auth}

Ctrl-C stops everything; jobs in flight resume on the next start.
`;
}

/**
 * The Temporal Web UI beside the local cluster: the UI server built from its Go module (its web assets are
 * embedded in the binary), configured with the frontend's gRPC address and run as one more daemon.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, type Daemon } from './daemon';
import { ensureGoProgram, type GoBuildOptions, type GoProgram } from './go-build';
import type { ClusterPaths } from './state';

/**
 * v2.58 and later need a go.temporal.io/api version the module proxy does not serve. The same version runs in
 * docker-compose.yml and deploy/k8s/temporal (test/unit/deploy-manifests.test.ts).
 */
export const TEMPORAL_UI: GoProgram = {
  name: 'temporal-ui-server',
  module: 'github.com/temporalio/ui-server/v2',
  version: 'v2.56.4',
  packages: ['cmd/server'],
};

const READY_TIMEOUT_MS = 60_000;

export async function ensureUiServer(opts: GoBuildOptions): Promise<string> {
  const { dir } = await ensureGoProgram(TEMPORAL_UI, opts);
  return path.join(dir, 'server');
}

/** Starts the UI on `port` against the frontend at `address`; resolves once it answers HTTP. */
export async function startUi(bin: string, paths: ClusterPaths, at: { address: string; port: number; namespace: string }): Promise<Daemon> {
  fs.mkdirSync(paths.uiConfigDir, { recursive: true });
  const config = {
    temporalGrpcAddress: at.address,
    host: '127.0.0.1',
    port: at.port,
    enableUi: true,
    defaultNamespace: at.namespace,
    refreshInterval: '1m',
    distribution: 'server',
    cors: { cookieInsecure: true, allowOrigins: [`http://127.0.0.1:${at.port}`] },
  };
  // The UI server reads <root>/<config dir>/base.yaml and <env>.yaml; JSON is YAML.
  fs.writeFileSync(path.join(paths.uiConfigDir, 'development.yaml'), `${JSON.stringify(config, null, 2)}\n`);
  const daemon = startDaemon(
    'ui',
    bin,
    ['--root', paths.root, '--config', path.basename(paths.uiConfigDir), '--env', 'development', 'start'],
    {
      logFile: path.join(paths.logs, 'ui.log'),
      cwd: paths.root,
    },
  );
  for (const deadline = Date.now() + READY_TIMEOUT_MS; ;) {
    const status = daemon.exited();
    if (status !== undefined) throw new Error(`the Temporal UI exited (${status}); ${daemon.logFile} ends with:\n${daemon.tail()}`);
    const ok = await fetch(`http://127.0.0.1:${at.port}/api/v1/settings`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return daemon;
    if (Date.now() > deadline) throw new Error(`the Temporal UI did not answer on port ${at.port} within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

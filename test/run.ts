/**
 * `npm test`: finds or installs the Temporal binaries, starts one real dev server for the run (unless
 * TEMPORAL_ADDRESS names one), then runs every test file with node's test runner against it. Given files
 * or folders (`npm run test:faults` gives test/faults), it runs those instead.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { resolveTemporalBinary } from '../src/local/binaries';
import { pickFreePort, startDevServer } from '../src/local/dev-server';

const ROOT = path.resolve(__dirname, '..');
/** `npm test`'s folders; test/faults (processes SIGKILLed under load, minutes of it) has a script of its own. */
const SUITES = ['test/unit', 'test/workflows', 'test/integration'];

/** A test file as it is, a folder as the test files in it. */
function testFiles(where: string): string[] {
  if (!statSync(path.join(ROOT, where)).isDirectory()) return [where];
  return readdirSync(path.join(ROOT, where))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => path.join(where, f));
}

async function main(): Promise<number> {
  const only = process.argv.slice(2);
  const files = (only.length ? only : SUITES).flatMap(testFiles);

  const config = loadConfig();
  const cli = await resolveTemporalBinary('cli', {
    explicitPath: config.temporal.cliPath,
    toolsDir: config.toolsDir,
    searchPath: config.searchPath,
  });
  const testServer = await resolveTemporalBinary('testServer', {
    explicitPath: config.temporal.testServerPath,
    toolsDir: config.toolsDir,
    searchPath: config.searchPath,
  });
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_CLI_PATH: cli.path, TEMPORAL_TEST_SERVER_PATH: testServer.path };

  let server: Awaited<ReturnType<typeof startDevServer>> | undefined;
  // The run's server state and log; kept only when the run fails, for a look at what happened.
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'switchyard-test-'));
  if (!process.env.TEMPORAL_ADDRESS) {
    server = await startDevServer({
      cliPath: cli.path,
      port: await pickFreePort(),
      uiPort: null,
      dbFile: path.join(scratch, 'temporal.sqlite'),
      namespace: 'default',
      logFile: path.join(scratch, 'temporal.log'),
    });
    env.TEMPORAL_ADDRESS = server.address;
  }
  let code = 1;
  try {
    code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
        cwd: ROOT,
        env,
        stdio: 'inherit',
      });
      child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
    return code;
  } finally {
    await server?.stop();
    if (code === 0) rmSync(scratch, { recursive: true, force: true });
    else if (server) console.error(`the Temporal dev server's database and log are in ${scratch}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error((err as Error)?.message ?? err);
    process.exit(1);
  },
);

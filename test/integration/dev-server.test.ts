import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { resolveTemporalBinary } from '../../src/local/binaries';
import { pickFreePort, startDevServer, type DevServer } from '../../src/local/dev-server';
import { ensureSearchAttributes, SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes';
import { eventually } from '../../testkit/wait';

const NAMESPACE = 'switchyard-it';
const config = loadConfig();
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-dev-server-'));
const dbFile = path.join(tmpDir, 'nested', 'temporal.sqlite'); // the directory does not exist yet
const logFile = path.join(tmpDir, 'server.log');
const quiet = () => undefined;
let cliPath = '';
const running: DevServer[] = [];

before(async () => {
  cliPath = (
    await resolveTemporalBinary('cli', { explicitPath: config.temporal.cliPath, toolsDir: config.toolsDir, searchPath: config.searchPath })
  ).path;
});
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

async function start(): Promise<DevServer> {
  const server = await startDevServer({
    cliPath,
    port: await pickFreePort(),
    uiPort: null,
    dbFile,
    namespace: NAMESPACE,
    logFile,
    log: (line) => console.error(`  ${line}`),
  });
  running.push(server);
  return server;
}

async function withConnection<T>(address: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

const customAttributes = (c: Connection) =>
  c.operatorService.listSearchAttributes({ namespace: NAMESPACE }).then((r) => r.customAttributes ?? {});

function assertExited(server: DevServer) {
  assert.notEqual(server.process.exitStatus, undefined, 'process has exited');
  assert.throws(() => process.kill(server.process.pid, 0), { code: 'ESRCH' });
}

test('the dev server starts with the namespace and search attributes, and survives a restart', { timeout: 180_000 }, async () => {
  const first = await start();
  assert.equal(first.uiUrl, null);
  assert.ok(fs.existsSync(dbFile), 'SQLite file created');
  // The header's read/write versions are 2 in write-ahead-log mode (1 with a rollback journal).
  assert.deepEqual([...fs.readFileSync(dbFile).subarray(18, 20)], [2, 2], 'the SQLite file is in WAL mode');
  await withConnection(first.address, async (c) => {
    const ns = await c.workflowService.describeNamespace({ namespace: NAMESPACE });
    assert.equal(ns.namespaceInfo?.name, NAMESPACE);
    const attrs = await customAttributes(c);
    // IndexedValueType: 2 = KEYWORD, 3 = INT
    assert.equal(attrs[SEARCH_ATTRIBUTES.tenant.name], 2);
    assert.equal(attrs[SEARCH_ATTRIBUTES.type.name], 2);
    assert.equal(attrs[SEARCH_ATTRIBUTES.pool.name], 2);
    assert.equal(attrs[SEARCH_ATTRIBUTES.priority.name], 3);
    assert.deepEqual(await ensureSearchAttributes(c, NAMESPACE, quiet), { added: [], notAllowed: false });

    // The external-server path: a missing attribute gets registered, once.
    await c.operatorService.removeSearchAttributes({ namespace: NAMESPACE, searchAttributes: [SEARCH_ATTRIBUTES.pool.name] });
    assert.equal((await customAttributes(c))[SEARCH_ATTRIBUTES.pool.name], undefined);
    assert.deepEqual(await ensureSearchAttributes({ connection: c }, NAMESPACE, quiet), { added: ['JobPool'], notAllowed: false });
    assert.equal((await customAttributes(c))[SEARCH_ATTRIBUTES.pool.name], 2);
  });

  await first.stop();
  assertExited(first);
  await first.stop(); // idempotent

  const second = await start();
  await withConnection(second.address, async (c) => {
    await c.workflowService.describeNamespace({ namespace: NAMESPACE });
    assert.equal(Object.keys(await customAttributes(c)).filter((k) => k.startsWith('Job')).length, Object.keys(SEARCH_ATTRIBUTES).length);
  });
  await second.stop();
  assertExited(second);
  assert.ok(fs.statSync(logFile).size > 0, 'server output went to the log file');
});

test('with restart, a server killed with SIGKILL comes back on its port with its data, and says so', { timeout: 180_000 }, async () => {
  const lines: string[] = [];
  const server = await startDevServer({
    cliPath,
    port: await pickFreePort(),
    uiPort: null,
    dbFile: path.join(tmpDir, 'restarted.sqlite'),
    namespace: NAMESPACE,
    restart: true,
    log: (line) => lines.push(line),
  });
  running.push(server);
  const workflowId = `kept-${Date.now()}`;
  await withConnection(server.address, (connection) =>
    new Client({ connection, namespace: NAMESPACE }).workflow.start('nothingRunsThis', { taskQueue: 'nobody-polls', workflowId }),
  );

  const firstPid = server.process.pid;
  server.process.kill('SIGKILL');
  await eventually('the server to be ready again', () =>
    lines.some((l) => /^Temporal dev server ready again at /.test(l)) ? true : undefined,
  );
  assert.ok(
    lines.some((l) => /^\[temporal\] exited \(SIGKILL\); restarting in 1000 ms$/.test(l)),
    lines.join('\n'),
  );
  assert.notEqual(server.process.pid, firstPid);
  const described = await withConnection(server.address, (connection) =>
    new Client({ connection, namespace: NAMESPACE }).workflow.getHandle(workflowId).describe(),
  );
  assert.equal(described.status.name, 'RUNNING', 'the workflow started before the kill is still there');

  await server.stop();
  assertExited(server);
});

test('a server that exits early is reported with its exit code and output', async () => {
  const fake = path.join(tmpDir, 'fake-temporal');
  fs.writeFileSync(fake, '#!/bin/sh\necho "starting"\necho "bind: address already in use" >&2\nexit 3\n', { mode: 0o755 });
  await assert.rejects(
    startDevServer({ cliPath: fake, port: await pickFreePort(), uiPort: null, dbFile: null, namespace: NAMESPACE, log: quiet }),
    /exited with code 3[\s\S]*bind: address already in use/,
  );
});

test('a busy port is refused before starting anything', async () => {
  const busy = await startDevServer({
    cliPath,
    port: await pickFreePort(),
    uiPort: null,
    dbFile: null,
    namespace: NAMESPACE,
    log: quiet,
  });
  running.push(busy);
  const port = Number(busy.address.split(':')[1]);
  await assert.rejects(
    startDevServer({ cliPath, port, uiPort: null, dbFile: null, namespace: NAMESPACE, log: quiet }),
    /gRPC port 127\.0\.0\.1:\d+ is not free/,
  );
  await busy.stop();
});

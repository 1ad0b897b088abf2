/**
 * The Go programs of the local cluster are built once per version and machine, into the tools cache, and a
 * clone's tools directory links to the cached build: what a new clone (a CI run) needs no Go for, and what it
 * says when Go is missing or too old. A fake program and fake `go` commands stand in; nothing is built.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ensureGoProgram, type GoProgram } from '../../src/local/cluster/go-build';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-go-build-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const PROGRAM: GoProgram = {
  name: 'fake',
  module: 'example.com/fake',
  version: 'v1.2.3',
  packages: ['cmd/fake'],
  moduleFolders: ['schema'],
};
const quiet = { log: () => undefined };

function dirs(name: string) {
  const dir = path.join(root, name);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  return { toolsDir: path.join(dir, 'tools'), cacheDir: path.join(dir, 'cache'), bin };
}

/** A complete build of PROGRAM in `cacheDir`: its executable and the copied module folder. */
function cachedBuild(cacheDir: string): string {
  const dir = path.join(cacheDir, 'fake-v1.2.3');
  fs.mkdirSync(path.join(dir, 'schema'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'fake'), '#!/bin/sh\n', { mode: 0o755 });
  return dir;
}

/** A `go` command on `bin` that answers `go env GOVERSION` with `version` and fails anything else. */
function fakeGo(bin: string, version: string): void {
  fs.writeFileSync(path.join(bin, 'go'), `#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo ${version} && exit 0\nexit 3\n`, {
    mode: 0o755,
  });
}

test('a build in the cache is linked into the tools directory, with no Go needed', async () => {
  const { toolsDir, cacheDir, bin } = dirs('cached');
  const cached = cachedBuild(cacheDir);
  const { dir, builtMs } = await ensureGoProgram(PROGRAM, { toolsDir, cacheDir, searchPath: bin, ...quiet });
  assert.equal(builtMs, null);
  assert.equal(dir, path.join(toolsDir, 'fake-v1.2.3'));
  assert.equal(fs.realpathSync(dir), fs.realpathSync(cached));
  // A second call finds the link complete and leaves it.
  assert.equal((await ensureGoProgram(PROGRAM, { toolsDir, cacheDir, searchPath: bin, ...quiet })).dir, dir);
});

test('a half-finished build does not count: without Go, it says how to get Go', async () => {
  const { toolsDir, cacheDir, bin } = dirs('no-go');
  fs.rmSync(path.join(cachedBuild(cacheDir), 'schema'), { recursive: true }); // stopped before the schemas were copied
  await assert.rejects(ensureGoProgram(PROGRAM, { toolsDir, cacheDir, searchPath: bin, ...quiet }), (err: Error) => {
    assert.match(err.message, /Go is not installed \(no `go` on PATH\).*example\.com\/fake@v1\.2\.3.*Go 1\.21 or later/);
    return true;
  });
});

test('a go command older than 1.21 cannot fetch the toolchain: it says so', async () => {
  const { toolsDir, cacheDir, bin } = dirs('old-go');
  fakeGo(bin, 'go1.19.8');
  await assert.rejects(
    ensureGoProgram(PROGRAM, { toolsDir, cacheDir, searchPath: bin, ...quiet }),
    /go1\.19\.8, too old to fetch the Go .* needs \(GOTOOLCHAIN=go1\.27\.3\)/,
  );
});

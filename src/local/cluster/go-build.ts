/**
 * Go programs built from their pinned module versions with `go install` into `<tools>/<name>-<version>/`,
 * once per version: the Temporal server and its SQL tool, the Temporal UI server. The Go module and build
 * caches live outside the clone (`go env GOMODCACHE`, `GOCACHE`), so a second build on a machine is fast.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ActionNeeded } from '../../errors';
import { findOnPath, isExecutable } from '../pip-install';

const run = promisify(execFile);

/**
 * The Go toolchain the builds use: go.temporal.io/server v1.32 needs a newer Go than many machines carry,
 * and with GOTOOLCHAIN set the go command fetches this one through the module proxy (Go ≥ 1.21 does that).
 */
export const GO_TOOLCHAIN = 'go1.27.3';
const BUILD_TIMEOUT_MS = 30 * 60_000;

export interface GoProgram {
  /** The folder's name in the tools directory, before `-<version>`. */
  name: string;
  module: string;
  version: string;
  /** Packages of the module, relative to it, and the executables they build (`cmd/server` → `server`). */
  packages: string[];
}

export interface GoBuildOptions {
  toolsDir: string;
  /** The PATH to find `go` on. */
  searchPath: string;
  log: (line: string) => void;
  /** Runs on the new folder before it is moved into place (e.g. to copy files from the module's source). */
  finish?: (dir: string, moduleDir: string) => Promise<void>;
}

export const programDir = (toolsDir: string, p: GoProgram) => path.join(toolsDir, `${p.name}-${p.version}`);
const exesOf = (p: GoProgram) => p.packages.map((pkg) => path.basename(pkg));

async function findGo(searchPath: string, p: GoProgram): Promise<string> {
  const go = await findOnPath('go', searchPath);
  if (go) return go;
  throw new ActionNeeded(
    `Go is not installed (no \`go\` on PATH), and ${p.module}@${p.version} is built from its source once per version. ` +
      `Install Go 1.21 or later (Debian: apt-get install golang-go) and run this again; GOTOOLCHAIN=${GO_TOOLCHAIN} makes it fetch the Go it needs.`,
  );
}

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: GO_TOOLCHAIN, ...extra };
}

/** The module's source folder in the Go module cache, downloaded if it is not there. */
export async function goModuleDir(go: string, p: Pick<GoProgram, 'module' | 'version'>): Promise<string> {
  const { stdout } = await run(go, ['mod', 'download', '-json', `${p.module}@${p.version}`], {
    env: goEnv(),
    cwd: fs.realpathSync(os.tmpdir()),
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 1 << 20,
  });
  const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (!dir) throw new Error(`go mod download ${p.module}@${p.version} named no folder:\n${stdout}`);
  return dir;
}

/** The program's folder, built first unless every executable is there already. */
export async function ensureGoProgram(p: GoProgram, opts: GoBuildOptions): Promise<{ dir: string; builtMs: number | null }> {
  const dir = programDir(opts.toolsDir, p);
  const have = await Promise.all(exesOf(p).map((exe) => isExecutable(path.join(dir, exe))));
  if (have.every(Boolean)) return { dir, builtMs: null };

  const go = await findGo(opts.searchPath, p);
  const t0 = Date.now();
  opts.log(
    `Building ${p.module}@${p.version} (${exesOf(p).join(', ')}) with GOTOOLCHAIN=${GO_TOOLCHAIN} into ${dir}: ` +
      'minutes the first time on a machine, seconds once the Go caches hold it',
  );
  fs.mkdirSync(opts.toolsDir, { recursive: true });
  const building = fs.mkdtempSync(`${dir}.building-`);
  try {
    // Outside any Go module, so `pkg@version` builds exactly the pinned module's own requirements.
    await run(go, ['install', ...p.packages.map((pkg) => `${p.module}/${pkg}@${p.version}`)], {
      env: goEnv({ GOBIN: building }),
      cwd: fs.realpathSync(os.tmpdir()),
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 << 20,
    }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`go install of ${p.module}@${p.version} failed:\n${(err.stderr ?? err.message).trim()}`, { cause: err });
    });
    if (opts.finish) await opts.finish(building, await goModuleDir(go, p));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(building, dir);
  } finally {
    fs.rmSync(building, { recursive: true, force: true });
  }
  const builtMs = Date.now() - t0;
  opts.log(`Built ${p.module}@${p.version} in ${(builtMs / 1000).toFixed(1)} s`);
  return { dir, builtMs };
}

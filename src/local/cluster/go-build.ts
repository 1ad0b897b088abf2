/**
 * Go programs built from their pinned module versions with `go install`, once per version and machine: the
 * Temporal server and its SQL tool, the Temporal UI server. A build lands in the tools cache outside any clone
 * (`<cache>/<name>-<version>/`, by default ~/.cache/switchyard-tools), and a clone's `<tools>/<name>-<version>`
 * links to it, so a new clone — a CI run — takes seconds where a build takes minutes.
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
/** The oldest go command that honours GOTOOLCHAIN. */
const MIN_GO = [1, 21] as const;
const BUILD_TIMEOUT_MS = 30 * 60_000;

export interface GoProgram {
  /** The folder's name in the tools directory, before `-<version>`. */
  name: string;
  module: string;
  version: string;
  /** Packages of the module, relative to it, and the executables they build (`cmd/server` → `server`). */
  packages: string[];
  /** Folders of the module's source copied beside the executables (e.g. its SQL schemas). */
  moduleFolders?: string[];
}

export interface GoBuildOptions {
  /** The clone's tools directory: `<name>-<version>` there is the cached build, or links to it. */
  toolsDir: string;
  /** Builds by version, outside any clone. */
  cacheDir: string;
  /** The PATH to find `go` on. */
  searchPath: string;
  log: (line: string) => void;
}

export const programDir = (dir: string, p: GoProgram) => path.join(dir, `${p.name}-${p.version}`);
const exesOf = (p: GoProgram) => p.packages.map((pkg) => path.basename(pkg));

/** Every executable and copied folder is there: a build that stopped half-way is no build. */
async function isComplete(dir: string, p: GoProgram): Promise<boolean> {
  const exes = await Promise.all(exesOf(p).map((exe) => isExecutable(path.join(dir, exe))));
  return exes.every(Boolean) && (p.moduleFolders ?? []).every((f) => fs.existsSync(path.join(dir, f)));
}

async function findGo(searchPath: string, p: GoProgram): Promise<string> {
  const why = `${p.module}@${p.version} is built from its source once per version and machine`;
  const install = `Install Go ${MIN_GO.join('.')} or later (https://go.dev/dl; Debian 12's golang-go is 1.19, too old)`;
  const go = await findOnPath('go', searchPath);
  if (!go) throw new ActionNeeded(`Go is not installed (no \`go\` on PATH), and ${why}. ${install} and run this again.`);
  // Without GOTOOLCHAIN in the environment, so the answer is the installed go command's own version.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'GOTOOLCHAIN'));
  const { stdout } = await run(go, ['env', 'GOVERSION'], { env, cwd: fs.realpathSync(os.tmpdir()), timeout: 30_000 });
  const [major = 0, minor = 0] = (/^go(\d+)\.(\d+)/.exec(stdout.trim()) ?? []).slice(1).map(Number);
  if (major < MIN_GO[0] || (major === MIN_GO[0] && minor < MIN_GO[1]))
    throw new ActionNeeded(
      `${go} is ${stdout.trim()}, too old to fetch the Go that ${why} needs (GOTOOLCHAIN=${GO_TOOLCHAIN}). ${install}.`,
    );
  return go;
}

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: GO_TOOLCHAIN, ...extra };
}

/** The module's source folder in the Go module cache, downloaded if it is not there. */
async function goModuleDir(go: string, p: GoProgram): Promise<string> {
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

/**
 * The program's folder in the tools directory: as it is when complete; else a link to the cached build, built
 * first when the cache has none. Returns how long a build took, or null when none was needed.
 */
export async function ensureGoProgram(p: GoProgram, opts: GoBuildOptions): Promise<{ dir: string; builtMs: number | null }> {
  const dir = programDir(opts.toolsDir, p);
  if (await isComplete(dir, p)) return { dir, builtMs: null };
  const cached = programDir(opts.cacheDir, p);
  const builtMs = (await isComplete(cached, p)) ? null : await build(p, cached, opts);
  if (path.resolve(dir) !== path.resolve(cached)) {
    fs.mkdirSync(opts.toolsDir, { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true }); // an incomplete folder, or a link to a build that is gone
    fs.symlinkSync(cached, dir, 'dir');
    if (builtMs === null) opts.log(`${p.module}@${p.version}: ${dir} → ${cached} (built before)`);
  }
  return { dir, builtMs };
}

async function build(p: GoProgram, target: string, opts: GoBuildOptions): Promise<number> {
  const go = await findGo(opts.searchPath, p);
  const t0 = Date.now();
  opts.log(
    `Building ${p.module}@${p.version} (${exesOf(p).join(', ')}) with GOTOOLCHAIN=${GO_TOOLCHAIN} into ${target}: ` +
      'minutes the first time on a machine, seconds once the Go caches hold it',
  );
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const building = fs.mkdtempSync(`${target}.building-`);
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
    if (p.moduleFolders?.length) {
      const moduleDir = await goModuleDir(go, p);
      for (const folder of p.moduleFolders) {
        await fs.promises.cp(path.join(moduleDir, folder), path.join(building, folder), { recursive: true });
      }
      // The module cache is read-only; the copies need not be.
      await run('chmod', ['-R', 'u+w', building]);
    }
    // Another build of the same version may have finished meanwhile: keep that one, which may be in use.
    if (!(await isComplete(target, p))) {
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(building, target);
    }
  } finally {
    fs.rmSync(building, { recursive: true, force: true });
  }
  const builtMs = Date.now() - t0;
  opts.log(`Built ${p.module}@${p.version} in ${(builtMs / 1000).toFixed(1)} s`);
  return builtMs;
}

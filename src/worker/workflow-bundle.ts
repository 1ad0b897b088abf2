/**
 * The workflow bundle a workflow worker runs. Bundling (webpack) takes seconds of CPU, so a bundle is
 * built once per version of the code and kept in a cache folder; later workers start from the file.
 * The version is a hash over every source file and the lockfile, so any change builds a new bundle —
 * a stale bundle would run old workflow code, which is worse than a slow start.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { Logger } from '../logger';
import { FAILURE_CONVERTER_PATH } from '../temporal/codec';

const ROOT = path.resolve(__dirname, '../..');
/** What the bundle can contain: workflow code and everything it may import, and the pinned packages. */
const SOURCES = ['workflows', 'src', 'activities', 'package-lock.json'];
export const DEFAULT_BUNDLE_CACHE = path.join(ROOT, 'node_modules', '.cache', 'switchyard');

function filesUnder(entry: string): string[] {
  const full = path.join(ROOT, entry);
  if (!statSync(full, { throwIfNoEntry: false })) return [];
  if (!statSync(full).isDirectory()) return [entry];
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(entry, f))
    .filter((f) => statSync(path.join(ROOT, f)).isFile())
    .sort();
}

/** A hash of the code the bundle is built from. */
export function workflowCodeVersion(): string {
  const hash = createHash('sha256');
  for (const file of SOURCES.flatMap(filesUnder)) {
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(path.join(ROOT, file)))
      .update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds the bundle with webpack's chatter kept out of the logs: one summary line is enough. */
async function build(log: Logger): Promise<string> {
  const quiet = new DefaultLogger('WARN', (entry) => log.log('warn', entry.message));
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    // Failures workflow code raises are encoded like those of activities: their messages encrypted.
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: quiet,
  });
  return code;
}

/** The bundle for the current code: from the cache when it is there, else built and stored. */
export async function workflowBundle(log: Logger, cacheDir = DEFAULT_BUNDLE_CACHE): Promise<{ code: string; path: string }> {
  const started = Date.now();
  const version = workflowCodeVersion();
  const file = path.join(cacheDir, `workflows-${version}.js`);
  try {
    const code = readFileSync(file, 'utf8');
    log.log('info', 'workflow bundle loaded', { version, bytes: code.length, ms: Date.now() - started });
    return { code, path: file };
  } catch {
    // not built yet for this version
  }
  const code = await build(log);
  try {
    store(cacheDir, file, code);
  } catch (err) {
    // A read-only file system (a locked-down container) only costs the next worker a rebuild.
    log.log('warn', 'workflow bundle not cached', { file, error: String((err as Error).message) });
  }
  log.log('info', 'workflow bundle built', { version, bytes: code.length, ms: Date.now() - started });
  return { code, path: file };
}

/** Writes the bundle under a temporary name and renames it, so a worker starting alongside never reads half a file; drops older versions. */
function store(cacheDir: string, file: string, code: string): void {
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, code);
  renameSync(partial, file);
  for (const old of readdirSync(cacheDir)) {
    if (old.startsWith('workflows-') && path.join(cacheDir, old) !== file && !old.endsWith('.partial')) {
      rmSync(path.join(cacheDir, old), { force: true });
    }
  }
}

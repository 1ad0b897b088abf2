/**
 * A Python tool that tests run beside the stack (moto, schemathesis): installed from the Python package
 * index into `<toolsDir>/<folder>` with pip on first use, like the Temporal binaries, or a message that
 * says how to install it by hand.
 */
import path from 'node:path';
import { loadConfig } from '../src/config';
import { findOnPath, installWheels, wheelVersionIn } from '../src/local/pip-install';

export interface PythonTool {
  /** The pip distribution whose version marks a complete install, e.g. `moto`. */
  distribution: string;
  version: string;
  /** pip requirement strings, the distribution's own pinned one included. */
  requirements: string[];
  /** What the tests use it for, for the error message. */
  purpose: string;
}

/** The python3 to run the tool with, and the folder to put on its PYTHONPATH. */
export async function installPythonTool(tool: PythonTool): Promise<{ python: string; dir: string }> {
  const config = loadConfig();
  const dir = path.join(config.toolsDir, tool.distribution);
  const python = await findOnPath('python3', config.searchPath);
  const isComplete = async (d: string) => (await wheelVersionIn(d, tool.distribution)) === tool.version;
  try {
    if (!python) throw new Error('python3 is not on PATH');
    if (!(await isComplete(dir))) {
      await installWheels({
        toolsDir: config.toolsDir,
        folder: tool.distribution,
        requirements: tool.requirements,
        searchPath: config.searchPath,
        isComplete,
        log: console.error,
      });
    }
    return { python, dir };
  } catch (err) {
    throw new Error(
      `${tool.purpose} ${tool.distribution} ${tool.version} from the Python package index, expected in ${dir}; ` +
        `installing it failed: ${(err as Error).message}\n` +
        `Install it with: python3 -m pip install --target ${dir} ${tool.requirements.map((r) => `'${r}'`).join(' ')}`,
      { cause: err },
    );
  }
}

/**
 * Child processes of `switchyard up`: each one's output is shown with its name, a crashed one is
 * restarted (kill a worker and the job still finishes), and stopping sends SIGTERM so workers drain.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const BIN = path.resolve(__dirname, '../../bin/switchyard');
const RESTART_DELAY_MS = 1000;

export interface Supervised {
  name: string;
  /** Resolves when the process first logs its ready line. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** The line each Switchyard process logs once it serves. */
const READY_LINE = /"msg":"(worker ready|api listening|autoscaler ready)"/;

export function supervise(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
): Supervised {
  let child: ChildProcess;
  let stopping = false;
  let exited: Promise<void>;
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const start = () => {
    child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        print(`[${name}] ${line}`);
        if (READY_LINE.test(line)) markReady();
      });
    }
    exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        resolve();
        if (stopping) return;
        print(`[${name}] exited (${signal ?? `code ${code}`}); restarting in ${RESTART_DELAY_MS} ms`);
        setTimeout(() => stopping || start(), RESTART_DELAY_MS);
      }),
    );
  };
  start();

  return {
    name,
    ready,
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The process kit: Switchyard's own processes (`bin/switchyard worker | api | autoscale | …`), and the
 * Temporal dev server under them, started and watched the one way that `switchyard up`, the autoscaler,
 * the tests and the benchmarks all need. A process knows when it serves (the line its role logs, or a
 * probe), keeps the tail of its output for error messages, is restarted after a crash when asked — with
 * a delay that grows while it keeps crashing before it serves (a killed worker or server comes back under
 * `up`) — stops with SIGTERM (workers drain) and SIGKILL after a grace, and never outlives the process
 * that started it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { API_LISTENING } from '../api/ready-line';
import { AUTOSCALER_READY } from '../scaling/ready-line';
import { WORKER_READY } from '../worker/ready-line';
import { killOnExit, terminate } from './child-process';

const BIN = path.resolve(__dirname, '../../bin/switchyard');
/** The first restart's delay; it doubles with each crash in a row before the process serves again, up to the most. */
const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
const PROBE_EVERY_MS = 100;
const DEFAULT_STOP_GRACE_MS = 15_000;
/** Beyond a process's drain grace, for closing its connections and exiting. */
const STOP_MARGIN_MS = 10_000;
const TAIL_LINES = 30;

/** A structured log line (src/logger.ts) whose message is `msg`. */
export const logLineOf = (msg: string): RegExp => new RegExp(`"msg":"${msg}"`);

/** The line each Switchyard command logs once it serves. */
export const READY_LINES = {
  worker: logLineOf(WORKER_READY),
  api: logLineOf(API_LISTENING),
  autoscale: logLineOf(AUTOSCALER_READY),
};

/** What a process is called in output and errors: `workflows`, `pool:<name>`, `api`, `autoscale`, else its arguments. */
export function processName(args: string[]): string {
  if (args.join(' ') === 'worker --workflows') return 'workflows';
  if (args[0] === 'worker' && args[1] === '--pool' && args.length === 3) return `pool:${args[2]}`;
  return args.join(' ');
}

/**
 * How long stop() gives `switchyard <args>` between SIGTERM and SIGKILL: its in-flight inference gets
 * the drain grace (SWITCHYARD_SHUTDOWN_GRACE_MS), then a margin to close; the autoscaler another margin,
 * as it first drains workers of its own.
 */
export function stopGraceFor(args: string[], shutdownGraceMs: number): number {
  return shutdownGraceMs + STOP_MARGIN_MS * (args[0] === 'autoscale' ? 2 : 1);
}

export interface ProcessOptions {
  /** Names it in printed lines and errors. */
  name: string;
  /** Its environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** The line it prints once it serves; without one (or a probe), `ready` only ever rejects. */
  readyLine?: RegExp;
  /** Asked every 100 ms from each start until it says it serves: for a program that prints no line then (Temporal's dev server). */
  readyProbe?: () => Promise<boolean>;
  /** Each time it serves: the first time, and after each restart (`restarts` so far; `ms` from that start). */
  onReady?: (run: { restarts: number; ms: number }) => void;
  /** `ready` rejects if the ready line has not come by then (default: it waits as long as the process runs). */
  readyTimeoutMs?: number;
  /** Each line it prints (stdout and stderr), as it comes. */
  onLine?: (line: string) => void;
  /** Its output for people to read: each line behind `[name] `. */
  print?: (line: string) => void;
  /** What the kit says about it for people to read: that it exited and when it starts again (default: `print`). */
  note?: (line: string) => void;
  /**
   * Start it again whenever it ends other than through stop(): a second later, doubling with each crash in a row
   * before it serves again, up to 30 s. `once-ready`: only once it has served, so one that cannot start fails `ready`.
   */
  restart?: boolean | 'once-ready';
  /** Make it the leader of a new process group, so a test can end it and everything it started at once. */
  detached?: boolean;
  /** From SIGTERM to SIGKILL in stop() (default 15 s). */
  stopGraceMs?: number;
}

export interface LocalProcess {
  readonly name: string;
  /** The running child's pid (a restart changes it). */
  readonly pid: number;
  /** Resolves on its first ready line; rejects if it ends for good first, or is not ready within readyTimeoutMs. */
  readonly ready: Promise<void>;
  /** Resolves once it has ended for good and its output is read, with its exit code or the signal that ended it. */
  readonly exited: Promise<string>;
  /** Its exit code or signal once it has ended for good; undefined while it runs or is about to restart. */
  readonly exitStatus: string | undefined;
  /** Its last lines, for error messages. */
  tail(): string;
  /** Sends `signal` to the running child (a crash in a test, a Ctrl-C); a restarting process comes back. */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after the grace; resolves once it has ended, and it is not restarted. */
  stop(): Promise<void>;
}

/** Starts `bin/switchyard <args>`, named by its role unless `name` says otherwise. */
export function startSwitchyard(args: string[], opts: Omit<ProcessOptions, 'name' | 'readyLine'> & { name?: string }): LocalProcess {
  const command = args[0] as keyof typeof READY_LINES;
  const readyLine = Object.hasOwn(READY_LINES, command) ? READY_LINES[command] : undefined;
  return startProcess(process.execPath, [BIN, ...args], { ...opts, name: opts.name ?? processName(args), readyLine });
}

/** Starts any command as a kit process: the benchmarks' BullMQ workers are no Switchyard processes. */
export function startProcess(command: string, args: string[], opts: ProcessOptions): LocalProcess {
  return new KitProcess(command, args, opts);
}

/** Its state is in #fields, so a caller may add fields of its own to a process (as the testkit does) without a clash. */
class KitProcess implements LocalProcess {
  readonly ready: Promise<void>;
  readonly exited: Promise<string>;
  readonly #command: string;
  readonly #args: string[];
  readonly #opts: ProcessOptions;
  readonly #lines: string[] = [];
  #child!: ChildProcess;
  /** The running child has ended and all its output is read. */
  #closed!: Promise<void>;
  /** It ended on its own and starts again when the timer fires. */
  #restarting: { timer: NodeJS.Timeout; status: string } | undefined;
  #restarts = 0;
  /** Crashes since it last served: the next restart waits RESTART_DELAY_MS × 2^(this − 1). */
  #crashesInARow = 0;
  #startedAt = 0;
  #servingThisRun = false;
  #everServed = false;
  /** Why the running child could not be started at all (no such program), if so. */
  #spawnError: string | undefined;
  #stopping = false;
  #status: string | undefined;
  #end!: (status: string) => void;
  #markReady = () => {};

  constructor(command: string, args: string[], opts: ProcessOptions) {
    this.#command = command;
    this.#args = args;
    this.#opts = opts;
    this.exited = new Promise((resolve) => (this.#end = (status) => resolve((this.#status = status))));
    this.ready = this.#readiness();
    this.ready.catch(() => undefined); // an exit after start-up, with nobody waiting for readiness, is no error
    this.#start();
  }

  get name(): string {
    return this.#opts.name;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get exitStatus(): string | undefined {
    return this.#status;
  }

  tail(): string {
    return this.#lines.join('\n');
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restarting) {
      clearTimeout(this.#restarting.timer);
      this.#end(this.#restarting.status);
    } else {
      await terminate(this.#child, this.#closed, this.#opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    }
    await this.exited;
  }

  #start(): void {
    this.#restarting = undefined;
    this.#startedAt = Date.now();
    this.#servingThisRun = false;
    this.#spawnError = undefined;
    const { env = process.env, detached = false } = this.#opts;
    const child = spawn(this.#command, this.#args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached });
    killOnExit(child);
    // A program that cannot be started at all: 'close' follows, and its status says why.
    child.once('error', (err) => (this.#spawnError = `failed to start: ${err.message}`));
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => this.#onLine(line));
    // 'close', not 'exit': by then every line it printed has been seen.
    this.#closed = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        resolve();
        this.#onClose(code, signal);
      }),
    );
    this.#child = child;
    if (this.#opts.readyProbe) void this.#probe(child);
  }

  /** Asks the probe until it says the child serves, for as long as that child runs. */
  async #probe(child: ChildProcess): Promise<void> {
    const running = () => this.#child === child && child.exitCode === null && child.signalCode === null;
    while (running() && !this.#servingThisRun) {
      if ((await this.#opts.readyProbe!().catch(() => false)) && running()) return this.#serving();
      await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
    }
  }

  /** This run serves: the crash count starts again, and whoever waits is told. */
  #serving(): void {
    if (this.#servingThisRun) return;
    this.#servingThisRun = this.#everServed = true;
    this.#crashesInARow = 0;
    this.#markReady();
    this.#opts.onReady?.({ restarts: this.#restarts, ms: Date.now() - this.#startedAt });
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    this.#lines.splice(0, this.#lines.length - TAIL_LINES);
    if (this.#opts.readyLine?.test(line)) this.#serving();
    this.#opts.onLine?.(line);
    this.#opts.print?.(`[${this.name}] ${line}`);
  }

  #onClose(code: number | null, signal: NodeJS.Signals | null): void {
    const status = this.#spawnError ?? signal ?? String(code);
    const { restart } = this.#opts;
    if (this.#stopping || !restart || (restart === 'once-ready' && !this.#everServed)) return this.#end(status);
    const delayMs = Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** this.#crashesInARow++);
    const how = this.#spawnError ?? signal ?? `code ${code}`;
    (this.#opts.note ?? this.#opts.print)?.(`[${this.name}] exited (${how}); restarting in ${delayMs} ms`);
    this.#restarting = {
      timer: setTimeout(() => {
        this.#restarts++;
        this.#start();
      }, delayMs),
      status,
    };
  }

  /** Resolves once it first serves; rejects when it ends for good first, or when readyTimeoutMs has passed. */
  #readiness(): Promise<void> {
    const { readyLine, readyProbe, readyTimeoutMs } = this.#opts;
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`${this.name} ${why}; its last lines:\n${this.tail()}`));
      const late =
        (readyLine || readyProbe) && readyTimeoutMs !== undefined
          ? setTimeout(() => fail(`was not ready within ${readyTimeoutMs / 1000} s`), readyTimeoutMs)
          : undefined;
      this.#markReady = () => (clearTimeout(late), resolve());
      void this.exited.then((how) => (clearTimeout(late), fail(`exited (${how}) before it was ready`)));
    });
  }
}

/** Structured JSON logs, one object per line, with the fields each part binds (role, job, run, attempt). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

export function createLogger(
  minLevel: LogLevel,
  bindings: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stdout.write(line + '\n'),
): Logger {
  return {
    log(level, msg, fields = {}) {
      if (RANK[level] < RANK[minLevel]) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...bindings, ...fields }));
    },
    child(more) {
      return createLogger(minLevel, { ...bindings, ...more }, write);
    },
  };
}

/**
 * Leveled, keyed logging in Sync Gateway's line format:
 *   2026-01-01T00:00:00.000Z [INF] HTTP: message
 * The console sink is enough for now; files, rotation and runtime changes belong to the logging work.
 */
export type LogLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

const RANK: Record<LogLevel, number> = { none: 0, error: 1, warn: 2, info: 3, debug: 4, trace: 5 };
const TAG: Record<Exclude<LogLevel, 'none'>, string> = { error: 'ERR', warn: 'WRN', info: 'INF', debug: 'DBG', trace: 'TRC' };

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr by default. Tests pass an array sink. */
  write?: (line: string) => void;
}

export class Logger {
  level: LogLevel;
  private readonly sink: (line: string) => void;

  constructor(opts: LoggerOptions = {}) {
    this.level = opts.level ?? 'info';
    this.sink = opts.write ?? ((line) => process.stderr.write(line + '\n'));
  }

  private log(level: Exclude<LogLevel, 'none'>, msg: string): void {
    if (RANK[level] > RANK[this.level]) return;
    this.sink(`${new Date().toISOString()} [${TAG[level]}] ${msg}`);
  }

  error(msg: string): void { this.log('error', msg); }
  warn(msg: string): void { this.log('warn', msg); }
  info(msg: string): void { this.log('info', msg); }
  debug(msg: string): void { this.log('debug', msg); }
}

/**
 * Building the Logger from the loaded `logging` config block (spec §8): console level and keys,
 * `redaction_level`, and with `log_file_path` the per-level files with their rotation settings,
 * defaults and minimums. Problems stop start-up with a `LoggingSetupError` naming the key.
 *
 * The input is structural (the config layer's `LoggingConfig` fits it): the log layer imports
 * nothing of ours.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { FILE_LEVELS, type FileLevel, type FileLoggerSettings } from './files.ts';
import type { LogLevel } from './levels.ts';
import { Logger } from './logger.ts';
import { REDACTION_LEVELS, type RedactionLevel } from './redact.ts';

export interface LoggingSettings {
  consoleEnabled: boolean;
  logLevel: LogLevel;
  logKeys: readonly string[];
  logFilePath?: string;
  /** The `logging` block as given, canonical key spelling. */
  raw: Record<string, unknown>;
}

export interface CreateLoggerOptions {
  /** Console sink (stderr by default). */
  write?: (line: string) => void;
  /** `-verbose`: adds `HTTP+` to the console keys (which asks for debug). */
  verbose?: boolean;
  /** Base for a relative `log_file_path`; the working directory by default. */
  cwd?: string;
  clock?: () => Date;
}

/** A logging setting that stops start-up; `keyPath` names it (`logging.info.rotation.max_age`). */
export class LoggingSetupError extends Error {
  readonly keyPath: string;
  constructor(keyPath: string, what: string) {
    super(`${keyPath}: ${what}`);
    this.name = 'LoggingSetupError';
    this.keyPath = keyPath;
  }
}

/** `max_age` (days): minimum and default per level (stats: 3/6, no file yet). */
const MAX_AGE: Record<FileLevel | 'stats', { min: number; dflt: number }> = {
  error: { min: 180, dflt: 360 }, warn: { min: 90, dflt: 180 }, info: { min: 3, dflt: 6 },
  debug: { min: 1, dflt: 2 }, trace: { min: 1, dflt: 2 }, stats: { min: 3, dflt: 6 },
};
const MAX_AGE_LIMIT = 9999;
const DEFAULT_MAX_SIZE_MB = 100;
const DEFAULT_ROTATED_LIMIT_MB = 1024;
const MIN_ROTATED_LIMIT_MB = 10;
const ENABLED_BY_DEFAULT: ReadonlySet<string> = new Set(['error', 'warn', 'info', 'stats']);

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Obj : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/**
 * Each file logger's settings from `logging.<level>`, with Sync Gateway's defaults, checked
 * against its limits. `stats` is checked too although Syncgate writes no stats file yet.
 */
export function fileLoggerSettings(raw: Obj): FileLoggerSettings[] {
  const out: FileLoggerSettings[] = [];
  for (const level of [...FILE_LEVELS, 'stats'] as const) {
    const block = obj(raw[level]) ?? {};
    const rotation = obj(block.rotation) ?? {};
    const at = (key: string) => `logging.${level}.rotation.${key}`;

    const maxAge = num(rotation.max_age);
    const { min, dflt } = MAX_AGE[level];
    if (maxAge !== undefined && maxAge !== 0 && maxAge < min) throw new LoggingSetupError(at('max_age'), `${maxAge} is below the minimum of ${min} days`);
    if (maxAge !== undefined && maxAge > MAX_AGE_LIMIT) throw new LoggingSetupError(at('max_age'), `${maxAge} is above the maximum of ${MAX_AGE_LIMIT} days`);

    const maxSize = num(rotation.max_size);
    if (maxSize !== undefined && maxSize < 0) throw new LoggingSetupError(at('max_size'), `${maxSize} must not be negative`);

    const limit = num(rotation.rotated_logs_size_limit);
    if (limit !== undefined && limit !== 0 && limit < MIN_ROTATED_LIMIT_MB) {
      throw new LoggingSetupError(at('rotated_logs_size_limit'), `${limit} is below the minimum of ${MIN_ROTATED_LIMIT_MB} MB`);
    }
    if (level === 'stats') continue;
    out.push({
      level,
      enabled: typeof block.enabled === 'boolean' ? block.enabled : ENABLED_BY_DEFAULT.has(level),
      maxSizeMB: maxSize || DEFAULT_MAX_SIZE_MB,
      maxAgeDays: maxAge || dflt,
      rotatedLogsSizeLimitMB: limit || DEFAULT_ROTATED_LIMIT_MB,
      localTime: rotation.localtime === true,
    });
  }
  return out;
}

/** Creates the log directory (mode 0700) when missing; refuses a path that is not a writable directory. */
export function prepareLogDirectory(dir: string, cwd = process.cwd()): string {
  const abs = path.resolve(cwd, dir);
  const invalid = (why: string) => new LoggingSetupError('logging.log_file_path', `invalid log file path "${abs}": ${why}`);
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw invalid(code === 'EEXIST' || code === 'ENOTDIR' ? 'not a directory' : (err as Error).message);
  }
  if (!statSync(abs).isDirectory()) throw invalid('not a directory');
  try {
    accessSync(abs, constants.W_OK);
  } catch {
    throw invalid('not writable');
  }
  return abs;
}

/**
 * The gateway's Logger from the loaded config: console (off unless enabled, level, keys with
 * `HTTP`), redaction, and the per-level files when `log_file_path` is set. Throws
 * `LoggingSetupError` for a bad rotation setting or log directory.
 */
export function createLogger(settings: LoggingSettings, opts: CreateLoggerOptions = {}): Logger {
  const raw = settings.raw;
  const files = fileLoggerSettings(raw);
  const legacy = obj(raw.default) ?? {};
  const given = raw.redaction_level ?? legacy.RedactionLevel;
  const redaction: RedactionLevel = (REDACTION_LEVELS as readonly unknown[]).includes(given) ? given as RedactionLevel : 'none';
  const keys = [...settings.logKeys, ...(opts.verbose ? ['HTTP+'] : [])];
  const level: LogLevel = settings.consoleEnabled || opts.verbose ? settings.logLevel : 'none';
  const dir = settings.logFilePath !== undefined ? prepareLogDirectory(settings.logFilePath, opts.cwd) : undefined;
  return new Logger({
    level, keys, redaction, write: opts.write, clock: opts.clock,
    ...(dir !== undefined ? { files: { dir, loggers: files } } : {}),
  });
}

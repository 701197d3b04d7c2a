/**
 * The Logger. Leveled, keyed logging in Sync Gateway's line format (spec §8):
 *   2026-01-01T00:00:00.000Z [INF] HTTP: message
 *
 * One `Logger` per gateway (no globals): a console sink with a level and a set of log keys, both
 * changeable at run time (`/_logging`), optional per-level files (./files.ts), and the redaction
 * level for user data. A message's key is the word before its first `: ` (`CRUD: ...`); the key
 * filter applies to info and below, so errors and warnings always pass. Files take every key.
 *
 * Why not pino: pino's strengths are fast JSON records and worker-thread transports. Sync
 * Gateway's logs are plain text lines (one template string per line here), and what is hard about
 * logging to files — appending, rotation, gzip, retention, reopening — is rotating-file-stream's job
 * (./files.ts). Routing through pino would mean serializing each record to JSON only to parse it
 * back in a destination to print text, and a transport thread whose flush at exit is harder to
 * guarantee than awaiting `close()` on our own streams.
 */
import { LogBuffer } from './buffer.ts';
import { type FileLevel, type FileLoggerSettings, LevelFile } from './files.ts';
import { canonicalKey, type LineLevel, type LogLevel, messageKey, RANK, TAG } from './levels.ts';
import { type RedactionLevel, redactor, sanitizeRequestTarget } from './redact.ts';

export interface LoggerOptions {
  /** Console level; `info` by default, `none` turns the console off. */
  level?: LogLevel;
  /** Console log keys (any case, `+` suffix allowed); every key by default. `HTTP` is always on. */
  keys?: readonly string[];
  /** Where console lines go; stderr by default. Tests pass an array sink. */
  write?: (line: string) => void;
  /** How user data passed through `ud()` appears; `none` by default (Sync Gateway 2.x). */
  redaction?: RedactionLevel;
  /** Per-level files in an existing directory (see `createLogger`, which validates and creates it). */
  files?: { dir: string; loggers: readonly FileLoggerSettings[] };
  /** Time source for line timestamps (tests). */
  clock?: () => Date;
  /** The in-memory buffer of recent lines (admin `/_log_tail`); a default-sized one when absent. */
  buffer?: LogBuffer;
}

/** Who a request acts as, for the request line. */
export type RequestActor = 'ADMIN' | 'GUEST' | { user: string };

const serial = (n: number) => `#${String(n).padStart(3, '0')}`;

export class Logger {
  /** Replaces one piece of user data according to the redaction level: `logger.ud(docId)`. */
  readonly ud: (value: string) => string;
  readonly redaction: RedactionLevel;
  /** The log directory, when files are on. */
  readonly logFilePath: string | undefined;
  private consoleLevel: LogLevel;
  private readonly consoleKeys = new Set<string>();
  private readonly sink: (line: string) => void;
  private readonly clock: () => Date;
  private readonly files: LevelFile[];
  /**
   * The last lines for the admin API: every console line, plus lines at info and above of every key
   * (as the info file would hold them), so a quiet console still leaves the operator something to read.
   */
  readonly buffer: LogBuffer;
  /** Most verbose rank the files or the buffer (info) accept: lines above it, and off the console, cost nothing. */
  private fileRank: number;
  private closed = false;

  constructor(opts: LoggerOptions = {}) {
    this.consoleLevel = opts.level ?? 'info';
    this.sink = opts.write ?? ((line) => process.stderr.write(line + '\n'));
    this.clock = opts.clock ?? (() => new Date());
    this.redaction = opts.redaction ?? 'none';
    const ud = redactor(this.redaction);
    this.ud = (value: string) => ud(value);
    this.setConsoleKeys(Object.fromEntries((opts.keys ?? ['*']).map((k) => [k, true])), true);
    this.logFilePath = opts.files?.dir;
    this.files = (opts.files?.loggers ?? []).filter((f) => f.enabled)
      .map((f) => new LevelFile(opts.files!.dir, f, (problem) => this.sink(this.format('error', `Logging: ${problem}`))));
    this.fileRank = Math.max(RANK.info, ...this.files.map((f) => RANK[f.level]));
    this.buffer = opts.buffer ?? new LogBuffer();
  }

  // ---- the interface used across the code ----

  /** The console level (kept as a property for source compatibility). */
  get level(): LogLevel { return this.consoleLevel; }
  set level(level: LogLevel) { this.consoleLevel = level; }

  error(msg: string): void { this.log('error', msg); }
  warn(msg: string): void { this.log('warn', msg); }
  info(msg: string): void { this.log('info', msg); }
  debug(msg: string): void { this.log('debug', msg); }
  trace(msg: string): void { this.log('trace', msg); }

  /** True when a line at this level would be written anywhere: guard costly debug messages with it. */
  enabled(level: LineLevel): boolean {
    return !this.closed && (RANK[level] <= RANK[this.consoleLevel] || RANK[level] <= this.fileRank);
  }

  log(level: LineLevel, msg: string): void {
    const rank = RANK[level];
    const toConsole = rank <= RANK[this.consoleLevel] && this.keyAllowed(level, msg);
    const toFiles = !this.closed && rank <= this.fileRank;
    if (!toConsole && !toFiles) return;
    const line = this.format(level, msg);
    if (toConsole) this.sink(line);
    if (toConsole || rank <= RANK.info) this.buffer.push(line);
    if (toFiles) for (const f of this.files) if (rank <= RANK[f.level]) f.write(line);
  }

  /**
   * Sync Gateway's "console" lines (start-up, `Logging: ...`, listeners): an info line written to
   * the console whatever its level and keys, and to the files like any info line.
   */
  always(msg: string): void {
    const line = this.format('info', msg);
    this.sink(line);
    this.buffer.push(line);
    if (!this.closed) for (const f of this.files) if (RANK.info <= RANK[f.level]) f.write(line);
  }

  /** The product banner (`==== Couchbase Sync Gateway/... ====`): no timestamp or level, on the console and in every file. */
  banner(text: string): void {
    this.sink(text);
    this.buffer.push(text);
    if (!this.closed) for (const f of this.files) f.write(text);
  }

  /** Sync Gateway's `Logging:` start-up lines: where files go, console level and keys, redaction. */
  logConfiguration(): void {
    if (this.logFilePath !== undefined) this.always(`Logging: Files to ${this.logFilePath}`);
    else {
      this.always('Logging: Files disabled');
      const line = this.format('error', 'No log_file_path property specified in config, and --defaultLogFilePath command line flag was not set. Log files required for product support are not being generated.');
      this.sink(line);
    }
    this.always(`Logging: Console level: ${this.consoleLevel}`);
    this.always(`Logging: Console keys: [${this.getConsoleKeys().join(' ')}]`);
    this.always(`Logging: Redaction level: ${this.redaction}`);
  }

  // ---- per-request lines (spec §8 "HTTP lines") ----

  /** `HTTP:  #001: GET /db/doc (as alice)` at info; the query is sanitized, the user name redacted. */
  httpRequest(n: number, method: string, url: string, actor: RequestActor, level: 'info' | 'debug' = 'info'): void {
    // Every request calls this: skip the redaction and formatting when no sink takes the line.
    if (!this.enabled(level)) return;
    const who = typeof actor === 'string' ? actor : this.ud(actor.user);
    this.log(level, `HTTP:  ${serial(n)}: ${method} ${sanitizeRequestTarget(url)} (as ${who})`);
  }

  /** `HTTP+: #001:     --> 200   (1.2 ms)` at debug; a status of 300 or more is logged under `HTTP` at info. */
  httpResponse(n: number, status: number, ms: number, message = ''): void {
    if (!this.enabled(status < 300 ? 'debug' : 'info')) return;
    const text = `${serial(n)}:     --> ${status} ${message}  (${ms.toFixed(1)} ms)`;
    if (status < 300) this.log('debug', `HTTP+: ${text}`);
    else this.log('info', `HTTP:  ${text}`);
  }

  // ---- run-time changes (admin `/_logging`) ----

  getConsoleLevel(): LogLevel { return this.consoleLevel; }
  setConsoleLevel(level: LogLevel): void { this.consoleLevel = level; }

  /** Enabled console keys in canonical spelling, `HTTP` first. */
  getConsoleKeys(): string[] {
    return [...this.consoleKeys];
  }

  /**
   * Enables (`true`) or disables (`false`) console keys; `replace` first clears them all (PUT
   * `/_logging`), otherwise they are merged (POST). `HTTP` stays on. A key given as `KEY+` (the old
   * way to ask for debug) also raises the console level to debug. Returns the unknown keys, which
   * are ignored.
   */
  setConsoleKeys(keys: Readonly<Record<string, boolean>>, replace: boolean): string[] {
    if (replace) this.consoleKeys.clear();
    this.consoleKeys.add('HTTP');
    const unknown: string[] = [];
    for (const [given, on] of Object.entries(keys)) {
      const key = canonicalKey(given);
      if (key === undefined) { unknown.push(given); continue; }
      if (!on) { if (key !== 'HTTP') this.consoleKeys.delete(key); continue; }
      this.consoleKeys.add(key);
      if (given.endsWith('+') && RANK[this.consoleLevel] > RANK.none && RANK[this.consoleLevel] < RANK.debug) this.consoleLevel = 'debug';
    }
    return unknown;
  }

  // ---- files ----

  /** Reopens every log file (SIGHUP: after logrotate moved them). Lines written meanwhile are kept. */
  async reopen(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.files.map((f) => f.reopen()));
  }

  /** Flushes and closes every file; await it before exiting. Later lines go to the console only. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fileRank = RANK.info;
    await Promise.all(this.files.map((f) => f.close()));
  }

  /** The files in use, by level (tests, diagnostics). */
  filePaths(): Partial<Record<FileLevel, string>> {
    return Object.fromEntries(this.files.map((f) => [f.level, f.file]));
  }

  // ---- formatting ----

  private keyAllowed(level: LineLevel, msg: string): boolean {
    if (RANK[level] <= RANK.warn || this.consoleKeys.has('*')) return true;
    const k = messageKey(msg);
    return k === undefined || this.consoleKeys.has(k.key);
  }

  /** The line: timestamp, level tag, message; debug and trace lines show their key with `+`. */
  private format(level: LineLevel, msg: string): string {
    let text = msg;
    if (RANK[level] >= RANK.debug) {
      const k = messageKey(msg);
      if (k && !k.raw.endsWith('+')) text = `${k.raw}+${msg.slice(k.raw.length)}`;
    }
    return `${this.clock().toISOString()} [${TAG[level]}] ${text}`;
  }
}

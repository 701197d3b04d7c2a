/**
 * The per-level log files of spec §8: `<dir>/sg_<level>.log`, each holding its level and the more
 * severe ones, rotated by size, rotated files gzipped as `sg_<level>-<timestamp>.log.gz`, the oldest
 * removed once they pass `rotated_logs_size_limit`, and any older than `max_age` days removed.
 *
 * Opening, appending, size rotation, gzip and the total-size limit are rotating-file-stream's work
 * (a maintained library, as Sync Gateway uses lumberjack). It has no age-based retention, which is
 * what Sync Gateway's `max_age` means (days a rotated file is kept, not a rotation interval), so that
 * one rule is here: after each rotation and hourly (Sync Gateway's cleaner runs hourly), delete our
 * own rotated files whose modification time is older than `max_age` days.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import type { LineLevel } from './levels.ts';

export type FileLevel = LineLevel;
export const FILE_LEVELS: readonly FileLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

export interface FileLoggerSettings {
  level: FileLevel;
  enabled: boolean;
  /** Rotate the live file once it reaches this many megabytes (`rotation.max_size`). */
  maxSizeMB: number;
  /** Rotated files older than this many days are deleted (`rotation.max_age`). */
  maxAgeDays: number;
  /** The oldest rotated files are deleted while all of them together exceed this (`rotation.rotated_logs_size_limit`). */
  rotatedLogsSizeLimitMB: number;
  /** Rotated file names carry local time instead of UTC (`rotation.localtime`). */
  localTime: boolean;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** lumberjack's backup time format, `2006-01-02T15-04-05.000`. */
function backupStamp(t: Date, local: boolean): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return local
    ? `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}-${p(t.getMinutes())}-${p(t.getSeconds())}.${p(t.getMilliseconds(), 3)}`
    : t.toISOString().slice(0, 23).replace(/:/g, '-');
}

export class LevelFile {
  readonly level: FileLevel;
  readonly file: string;
  private readonly dir: string;
  private readonly settings: FileLoggerSettings;
  private readonly report: (problem: string) => void;
  private stream: RotatingFileStream | undefined;
  /** Lines written while the stream is being swapped by `reopen()`. */
  private pending: string[] | undefined;
  private readonly cleaner: NodeJS.Timeout;
  private closed = false;
  /** A running `reopen()`, awaited by `close()`. */
  private reopening: Promise<void> | undefined;
  /** The running clean-up, awaited by `close()`. */
  private cleaning: Promise<void> | undefined;

  constructor(dir: string, settings: FileLoggerSettings, report: (problem: string) => void) {
    this.dir = dir;
    this.level = settings.level;
    this.settings = settings;
    this.report = report;
    this.file = path.join(dir, `sg_${settings.level}.log`);
    this.stream = this.open();
    this.cleaner = setInterval(() => this.startCleaning(), HOUR);
    this.cleaner.unref();
  }

  private open(): RotatingFileStream {
    const { level, maxSizeMB, rotatedLogsSizeLimitMB, localTime } = this.settings;
    const name = (time: number | Date | null, index?: number): string => {
      if (time === null) return `sg_${level}.log`;
      const stamp = backupStamp(typeof time === 'number' ? new Date(time) : time, localTime);
      return `sg_${level}-${stamp}${index !== undefined && index > 1 ? `-${index}` : ''}.log.gz`;
    };
    const stream = createStream(name as (time: number | Date, index?: number) => string, {
      path: this.dir,
      size: `${maxSizeMB}M`,
      compress: 'gzip',
      maxSize: `${rotatedLogsSizeLimitMB}M`,
      history: `.sg_${level}.history`,
      mode: 0o600,
    });
    stream.on('error', (err) => {
      // The library closes a stream after an error: report it once, and stop writing to this file.
      if (this.stream === stream) this.stream = undefined;
      this.report(`cannot write ${this.file}: ${err.message}`);
    });
    stream.on('warning', (err) => this.report(`${this.file}: ${err.message}`));
    stream.on('rotated', () => this.startCleaning());
    return stream;
  }

  write(line: string): void {
    if (this.pending) this.pending.push(line);
    else this.stream?.write(line + '\n');
  }

  /** Finishes the current file handle and opens the file again (after logrotate moved it, on SIGHUP). */
  reopen(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.reopening ??= (async () => {
      this.pending = [];
      await this.end();
      // Also recovers a file whose stream failed (disk full, directory removed).
      this.stream = this.open();
      const lines = this.pending;
      this.pending = undefined;
      for (const l of lines) this.stream.write(l + '\n');
    })().finally(() => { this.reopening = undefined; });
    return this.reopening;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.cleaner);
    await this.reopening;
    await this.end();
    this.stream = undefined;
    await this.cleaning;
  }

  private startCleaning(): void {
    if (this.cleaning) return;
    this.cleaning = this.removeExpired().finally(() => { this.cleaning = undefined; });
  }

  private end(): Promise<void> {
    const s = this.stream;
    if (!s || s.destroyed || s.writableEnded) return Promise.resolve();
    return new Promise<void>((resolve) => s.end(() => resolve()));
  }

  /** Deletes this level's rotated files older than `max_age` days. */
  async removeExpired(now = Date.now()): Promise<void> {
    const prefix = `sg_${this.level}-`;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (!n.startsWith(prefix) || !n.endsWith('.log.gz')) continue;
      const full = path.join(this.dir, n);
      try {
        if (now - (await stat(full)).mtimeMs > this.settings.maxAgeDays * DAY) await unlink(full);
      } catch {
        // Removed meanwhile (the size limit, another cleaner): nothing to do.
      }
    }
  }
}

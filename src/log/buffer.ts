/**
 * The last log lines, kept in memory for the admin API (`GET /_log_tail`, the console's Logs
 * page): an operator sees what just happened without shell access to the log files.
 *
 * Bounded twice, by lines and by bytes, so one huge line (a long URL, a big error) cannot hold
 * megabytes, and a flood of small ones cannot hold millions of entries. Each line gets a serial
 * number (`seq`, from 1, never reused in one process), so a reader asks for what came `since` the
 * last line it saw and learns, when the buffer moved past it, how many lines it missed.
 *
 * Lines arrive already formatted by the Logger, after redaction and query-string sanitizing:
 * the buffer holds exactly what the log files would, never more.
 */

export interface LogBufferOptions {
  /** Most lines kept (default 1000). */
  maxLines?: number;
  /** Most bytes kept, counted as UTF-8 (default 512 KiB). A longer line is cut to fit. */
  maxBytes?: number;
}

export interface BufferedLine {
  seq: number;
  line: string;
}

export interface LogBufferRead {
  lines: BufferedLine[];
  /** The serial of the newest line in the buffer (0 when none was ever kept): the next `since`. */
  last_seq: number;
  /** Lines after `since` that the buffer no longer holds. */
  dropped: number;
}

export const DEFAULT_LOG_BUFFER_LINES = 1000;
export const DEFAULT_LOG_BUFFER_BYTES = 512 * 1024;
const CUT_MARK = ' …[cut]';

export class LogBuffer {
  readonly maxLines: number;
  readonly maxBytes: number;
  /** Kept lines, oldest first, from index `head` (dropped ones are cut off in batches). */
  private entries: (BufferedLine & { bytes: number })[] = [];
  private head = 0;
  private bytes = 0;
  private nextSeq = 1;

  constructor(opts: LogBufferOptions = {}) {
    this.maxLines = Math.max(1, opts.maxLines ?? DEFAULT_LOG_BUFFER_LINES);
    this.maxBytes = Math.max(256, opts.maxBytes ?? DEFAULT_LOG_BUFFER_BYTES);
  }

  push(text: string): void {
    let line = text;
    let bytes = Buffer.byteLength(line);
    // One line may use at most a quarter of the budget, so a few giants never flush everything.
    const cap = Math.floor(this.maxBytes / 4);
    if (bytes > cap) {
      line = Buffer.from(line).subarray(0, cap - Buffer.byteLength(CUT_MARK)).toString().replace(/\uFFFD$/, '') + CUT_MARK;
      bytes = Buffer.byteLength(line);
    }
    while (this.count() > 0 && (this.count() >= this.maxLines || this.bytes + bytes > this.maxBytes)) {
      this.bytes -= this.entries[this.head++].bytes;
    }
    // Dropped entries are removed in one splice once they are as many as the kept ones: amortized O(1).
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.entries.push({ seq: this.nextSeq++, line, bytes });
    this.bytes += bytes;
  }

  /** Lines with a serial above `since` (all kept lines by default), the newest `limit` of them. */
  read(since = 0, limit = this.maxLines): LogBufferRead {
    const out: BufferedLine[] = [];
    for (let i = Math.max(this.head, this.entries.length - limit); i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.seq > since) out.push({ seq: e.seq, line: e.line });
    }
    const oldest = this.count() ? this.entries[this.head].seq : this.nextSeq;
    return { lines: out, last_seq: this.nextSeq - 1, dropped: Math.max(0, oldest - since - 1) };
  }

  /** Lines and bytes held now (tests, diagnostics). */
  size(): { lines: number; bytes: number } {
    return { lines: this.count(), bytes: this.bytes };
  }

  private count(): number {
    return this.entries.length - this.head;
  }
}

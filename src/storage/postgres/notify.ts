/**
 * Waking this node's feeds when another node commits. Every commit sends `NOTIFY <channel>,
 * '<node> <seq>'` inside its transaction (delivered only if it commits, in commit order). This
 * watcher LISTENs on a dedicated connection; for sequences committed by other nodes it asks the
 * database which channels (of which collection) and principals the range touched, and reports
 * them. NOTIFY is only the doorbell: the range query is the truth, so a missed notification (a
 * dropped LISTEN connection, a restart) is caught up by polling `last_seq` — every 250 ms while
 * LISTEN is down, every 2 s as a safety net while it is up. A commit in a named collection rings
 * the same bell; the range query finds its collection, so the doorbell carries none.
 */
import pg from 'pg';
import type { RemoteCommit } from '../store.ts';

export interface WatcherOptions {
  pool: pg.Pool;
  /** Connection settings for the LISTEN connection (the pool's). */
  config: pg.ClientConfig;
  channel: string;
  node: string;
  /**
   * What sequences in (from, to] touched: channels (per collection) and grantees. Reported as
   * given, one RemoteCommit each.
   */
  range: (from: number, to: number) => Promise<RemoteCommit[]>;
  counterSql: string;
  log: (msg: string) => void;
}

const FAST_POLL_MS = 250;
const SAFETY_POLL_MS = 2000;

export class CommitWatcher {
  private readonly o: WatcherOptions;
  private readonly listeners = new Set<(c: RemoteCommit) => void>();
  private known = -1;
  private target = -1;
  /** Some sequence in (known, target] may be another node's. */
  private remotePending = false;
  private working = false;
  private client?: pg.Client;
  private listening = false;
  private stopped = false;
  private lastPoll = 0;
  private timer?: NodeJS.Timeout;
  private connecting = false;
  private wasDown = false;

  constructor(o: WatcherOptions) {
    this.o = o;
  }

  subscribe(fn: (c: RemoteCommit) => void): () => void {
    this.listeners.add(fn);
    if (this.listeners.size === 1 && !this.timer) this.start();
    return () => { this.listeners.delete(fn); };
  }

  private start(): void {
    this.timer = setInterval(() => this.tick(), FAST_POLL_MS);
    this.timer.unref();
    void this.connect();
  }

  private tick(): void {
    if (this.stopped) return;
    if (!this.listening) void this.connect();
    const due = this.listening ? SAFETY_POLL_MS : FAST_POLL_MS;
    if (Date.now() - this.lastPoll >= due) void this.poll();
  }

  private async connect(): Promise<void> {
    if (this.connecting || this.listening || this.stopped) return;
    this.connecting = true;
    const client = new pg.Client(this.o.config);
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      this.listening = false;
      if (!this.stopped && !this.wasDown) this.o.log(`PostgreSQL change notifications lost (${err?.message ?? 'connection closed'}); polling until reconnected`);
      this.wasDown = true;
      client.end().catch(() => {});
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (m) => this.onNotification(m.payload ?? ''));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.o.channel}`);
      if (this.stopped) { await client.end(); return; }
      this.client = client;
      this.listening = true;
      if (this.wasDown) this.o.log('PostgreSQL change notifications restored');
      this.wasDown = false;
      // Whatever committed while we were not listening.
      void this.poll();
    } catch {
      client.end().catch(() => {});
    } finally {
      this.connecting = false;
    }
  }

  private onNotification(payload: string): void {
    const [node, seqText, kind, name] = payload.split(' ');
    const seq = Number(seqText);
    if (kind && node !== this.o.node) {
      // A principal deletion (it takes no sequence): wake that user's or role's feeds.
      this.emit({ channels: [], grantees: [kind === 'role' ? `role:${name}` : name] });
      return;
    }
    if (!Number.isFinite(seq) || seq <= this.target) return;
    this.target = seq;
    if (node !== this.o.node) this.remotePending = true;
    void this.work();
  }

  private async poll(): Promise<void> {
    this.lastPoll = Date.now();
    try {
      const r = await this.o.pool.query<{ last_seq: number }>(this.o.counterSql);
      const seq = r.rows[0].last_seq;
      if (this.known < 0) {
        this.known = seq;
        if (this.target > seq) this.remotePending = true;
        else this.target = seq;
      }
      if (seq > this.target) {
        this.target = seq;
        this.remotePending = true; // unknown origin
      }
      void this.work();
    } catch { /* PostgreSQL is down: the next tick tries again */ }
  }

  private async work(): Promise<void> {
    if (this.working || this.known < 0) return;
    this.working = true;
    try {
      while (this.target > this.known && !this.stopped) {
        const to = this.target;
        if (!this.remotePending) { this.known = to; break; }
        this.remotePending = false;
        try {
          const commits = await this.o.range(this.known, to);
          this.known = to;
          for (const c of commits) this.emit(c);
        } catch {
          this.remotePending = true; // retried on the next poll
          break;
        }
      }
    } finally {
      this.working = false;
    }
  }

  private emit(c: RemoteCommit): void {
    for (const fn of this.listeners) {
      try { fn(c); } catch { /* a listener's failure is its own */ }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    this.listening = false;
    if (c) await c.end().catch(() => {});
  }
}

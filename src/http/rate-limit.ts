/**
 * Request rate limits (token buckets keyed by client address or by user) and the count of open
 * changes feeds per user. Sync Gateway has neither; these are Syncgate's own. State lives in the
 * instance (one per gateway), never in the module, and every table is bounded.
 */

export interface RateSettings {
  /** Requests allowed per window (also the burst size); 0 = no limit. */
  requests: number;
  windowMs: number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * A token bucket per key: `requests` tokens, refilled evenly over `windowMs`. A burst of up to
 * `requests` goes through at once; sustained traffic is held to the average rate.
 */
export class RateLimiter {
  readonly settings: RateSettings;
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly perMs: number;
  private takesSinceSweep = 0;

  constructor(settings: RateSettings, opts: { maxEntries?: number; now?: () => number } = {}) {
    this.settings = settings;
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.now = opts.now ?? Date.now;
    this.perMs = settings.windowMs > 0 ? settings.requests / settings.windowMs : 0;
  }

  get enabled(): boolean {
    return this.settings.requests > 0 && this.settings.windowMs > 0;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token: 0 when the request may go ahead, else the seconds until a token is back. */
  take(key: string): number {
    if (!this.enabled) return 0;
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      this.makeRoom(now);
      b = { tokens: this.settings.requests, updated: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.settings.requests, b.tokens + (now - b.updated) * this.perMs);
      b.updated = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  /**
   * A bucket that has refilled completely is the same as no bucket: those go first. When the table
   * is still full the oldest keys go, which only ever errs towards letting a request through.
   */
  private makeRoom(now: number): void {
    if (++this.takesSinceSweep < 1000 && this.buckets.size < this.maxEntries) return;
    this.takesSinceSweep = 0;
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.updated) * this.perMs >= this.settings.requests) this.buckets.delete(k);
    }
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxEntries) return;
      this.buckets.delete(k);
    }
  }
}

/** Open changes feeds per key; a key is removed when its last feed closes, so the map stays small. */
export class FeedCounter {
  readonly max: number;
  private readonly open = new Map<string, number>();

  /** `max` 0 = no limit. */
  constructor(max: number) {
    this.max = max;
  }

  /** Counts a feed in: a release function (call it once, when the feed ends), or undefined when full. */
  acquire(key: string): (() => void) | undefined {
    const n = this.open.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return undefined;
    this.open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left <= 0) this.open.delete(key);
      else this.open.set(key, left);
    };
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }
}

/**
 * One shared fan-out per database. A commit wakes the feeds waiting on its channels once; a waiting
 * feed holds no storage subscription of its own, so 10,000 idle longpolls cost 10,000 small objects.
 */

export const ALL_CHANNELS = '*';

/** What the notifier wakes: the keys it is registered under (null: every change). */
interface Wakeable {
  readonly keys: string[] | null;
  wake(): void;
}

/**
 * One wait (`Notifier.wait`). Its callbacks are methods, not closures: a commit re-arms thousands of
 * feeds at once, and each closure (named ones go through a helper under tsx) is work and garbage.
 */
class Waiter implements Wakeable {
  timer: NodeJS.Timeout | undefined;
  private done = false;
  constructor(
    readonly keys: string[] | null,
    private readonly notifier: Notifier,
    private readonly resolve: (changed: boolean) => void,
    private readonly signal: AbortSignal | undefined,
  ) {}
  wake(): void { this.finish(true); }
  /** The abort listener (an EventListener object). */
  handleEvent(): void { this.finish(false); }
  finish(changed: boolean): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this);
    this.notifier.remove(this);
    this.resolve(changed);
  }
  static expire(w: Waiter): void { w.finish(false); }
}

/**
 * A live feed's standing registration, for feeds woken over and over (REST live feeds): registered
 * once, again only when its keys change, so a wake-up costs no set churn, promise-per-registration
 * or abort-listener bookkeeping, and a notification that arrives while the feed is busy reading or
 * sending is remembered rather than lost.
 *
 * Call `reading()` as each read begins (what was notified before is covered by that read), `wait()`
 * after it, and `end()` when the feed ends.
 */
export class Listener implements Wakeable {
  keys: string[] | null = null;
  private registered = false;
  private pending = false;
  private ended = false;
  private resolver: ((changed: boolean) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly notifier: Notifier) {}

  /** Follows these keys from now on; the same array again costs nothing. */
  follow(keys: string[] | null): void {
    if (this.ended || (this.registered && keys === this.keys)) return;
    if (this.registered) this.notifier.remove(this);
    this.keys = keys;
    this.notifier.add(this);
    this.registered = true;
  }

  /** A read begins: notifications so far are covered by it. */
  reading(): void { this.pending = false; }

  /**
   * Resolves true on the next notification on this listener's keys (at once if one came since
   * `reading()`), false on timeout (0: none), on `end()` or once the database is closed.
   */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.ended || this.notifier.isClosed) return Promise.resolve(false);
    if (this.pending) { this.pending = false; return Promise.resolve(true); }
    return new Promise<boolean>((resolve) => {
      this.resolver = resolve;
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) this.timer = setTimeout(Listener.expire, timeoutMs, this);
    });
  }

  /** Ends a wait in progress (it resolves false) without ending the listener. */
  cancelWait(): void { this.settle(false); }

  wake(): void {
    if (this.resolver) this.settle(true);
    else this.pending = true;
  }

  /** Unregisters; a wait in progress resolves false. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.registered) this.notifier.remove(this);
    this.settle(false);
  }

  private settle(changed: boolean): void {
    const resolve = this.resolver;
    if (!resolve) return;
    this.resolver = undefined;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    resolve(changed);
  }

  private static expire(l: Listener): void { l.settle(false); }
}

export class Notifier {
  private readonly byChannel = new Map<string, Set<Wakeable>>();
  private readonly anyChange = new Set<Wakeable>();
  private closed = false;
  private notified = 0;

  get isClosed(): boolean { return this.closed; }

  /** A standing registration for a feed that waits again and again (see Listener). */
  listener(): Listener { return new Listener(this); }

  /** How many notifications so far: moves with every change a feed could see. */
  get version(): number { return this.notified; }

  /** Number of feeds currently waiting or following (listeners). */
  get waiting(): number {
    const seen = new Set<Wakeable>(this.anyChange);
    for (const set of this.byChannel.values()) for (const w of set) seen.add(w);
    return seen.size;
  }

  /**
   * Resolves on the next commit touching one of `channels` (null: any commit), on timeout, on abort
   * or when the database closes. Resolves true when woken by a change.
   *
   * `seen` is the `version` the caller noted before the read it is now waiting after. A read takes
   * time (a PostgreSQL round trip, or a shared read started earlier), and a commit notified while it
   * ran would otherwise be slept through until the next one: then the wait answers true at once and
   * the caller reads again (at worst one read that finds nothing new).
   */
  wait(channels: string[] | null, timeoutMs: number, signal?: AbortSignal, seen?: number): Promise<boolean> {
    if (this.closed || signal?.aborted) return Promise.resolve(false);
    if (seen !== undefined && seen !== this.notified) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiter = new Waiter(channels, this, resolve, signal);
      this.add(waiter);
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) waiter.timer = setTimeout(Waiter.expire, timeoutMs, waiter);
      signal?.addEventListener('abort', waiter, { once: true });
    });
  }

  /** Registers under the object's keys (waiters as they start, listeners as they follow). */
  add(w: Wakeable): void {
    if (w.keys === null) { this.anyChange.add(w); return; }
    for (const ch of w.keys) {
      let set = this.byChannel.get(ch);
      if (!set) this.byChannel.set(ch, (set = new Set()));
      set.add(w);
    }
  }

  /** Unregisters (waiters as they finish, listeners as they end or change keys). */
  remove(w: Wakeable): void {
    if (w.keys === null) { this.anyChange.delete(w); return; }
    for (const ch of w.keys) {
      const set = this.byChannel.get(ch);
      if (!set) continue;
      set.delete(w);
      if (set.size === 0) this.byChannel.delete(ch);
    }
  }

  /** Called after a commit with the channels the committed revisions were added to or removed from. */
  notify(channels: Iterable<string>): void {
    this.notified++;
    const woken = new Set<Wakeable>(this.anyChange);
    for (const ch of channels) {
      const set = this.byChannel.get(ch);
      if (set) for (const w of set) woken.add(w);
    }
    // Feeds that follow every channel the user can see wait on the star entry.
    const star = this.byChannel.get(ALL_CHANNELS);
    if (star) for (const w of star) woken.add(w);
    for (const w of woken) w.wake();
  }

  close(): void {
    this.closed = true;
    const all = new Set<Wakeable>(this.anyChange);
    for (const set of this.byChannel.values()) for (const w of set) all.add(w);
    for (const w of all) w.wake();
  }
}

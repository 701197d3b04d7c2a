/**
 * One shared fan-out per database. A commit wakes the feeds waiting on its channels once; a waiting
 * feed holds no storage subscription of its own, so 10,000 idle longpolls cost 10,000 small objects.
 */

export const ALL_CHANNELS = '*';

/**
 * One waiting feed. Its callbacks are methods, not closures: a commit re-arms thousands of feeds at
 * once, and each closure (named ones go through a helper under tsx) is work and garbage per wait.
 */
class Waiter {
  timer: NodeJS.Timeout | undefined;
  private done = false;
  constructor(
    readonly channels: string[] | null,
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

export class Notifier {
  private readonly byChannel = new Map<string, Set<Waiter>>();
  private readonly anyChange = new Set<Waiter>();
  private closed = false;
  private notified = 0;

  /** How many notifications so far: moves with every change a feed could see. */
  get version(): number { return this.notified; }

  /** Number of feeds currently waiting. */
  get waiting(): number {
    const seen = new Set<Waiter>(this.anyChange);
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
      if (channels === null) this.anyChange.add(waiter);
      else {
        for (const ch of channels) {
          let set = this.byChannel.get(ch);
          if (!set) this.byChannel.set(ch, (set = new Set()));
          set.add(waiter);
        }
      }
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) waiter.timer = setTimeout(Waiter.expire, timeoutMs, waiter);
      signal?.addEventListener('abort', waiter, { once: true });
    });
  }

  /** Called by the waiter as it finishes. */
  remove(w: Waiter): void {
    if (w.channels === null) { this.anyChange.delete(w); return; }
    for (const ch of w.channels) {
      const set = this.byChannel.get(ch);
      if (!set) continue;
      set.delete(w);
      if (set.size === 0) this.byChannel.delete(ch);
    }
  }

  /** Called after a commit with the channels the committed revisions were added to or removed from. */
  notify(channels: Iterable<string>): void {
    this.notified++;
    const woken = new Set<Waiter>(this.anyChange);
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
    const all = new Set<Waiter>(this.anyChange);
    for (const set of this.byChannel.values()) for (const w of set) all.add(w);
    for (const w of all) w.wake();
  }
}

/**
 * One shared fan-out per database. A commit wakes the feeds waiting on its channels once; a waiting
 * feed holds no storage subscription of its own, so 10,000 idle longpolls cost 10,000 small objects.
 */

export const ALL_CHANNELS = '*';

interface Waiter {
  channels: string[] | null;
  wake: () => void;
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
   */
  wait(channels: string[] | null, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (changed: boolean) => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.remove(waiter);
        resolve(changed);
      };
      const onAbort = () => finish(false);
      const waiter: Waiter = { channels, wake: () => finish(true) };
      if (channels === null) this.anyChange.add(waiter);
      else {
        for (const ch of channels) {
          let set = this.byChannel.get(ch);
          if (!set) this.byChannel.set(ch, (set = new Set()));
          set.add(waiter);
        }
      }
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) timer = setTimeout(() => finish(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private remove(w: Waiter): void {
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

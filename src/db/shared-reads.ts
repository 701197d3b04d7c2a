/**
 * Shares one read among the callers that ask the same question at the same database state. One
 * commit wakes every live feed following its channels at once; each reloads its user and reads
 * its next page, and the caught-up feeds of one channel all ask the same (same user, same scope,
 * same `since`): without sharing, 10,000 listeners on 100 channels meant 10,000 principal loads
 * and 10,000 identical index reads per write instead of one and 100.
 *
 * The state is the store's last sequence (it moves inside every commit) plus the notifier's count
 * of notifications (purges and principal changes move no sequence but always notify), so a shared
 * result is never older than the state the caller saw when it asked. Only the current state's
 * results are kept, for at most a second. Only live feeds woken by a notification use it
 * (one-shot reads have nobody to share with). Shared results must be treated as read-only.
 */
const MAX_KEYS = 10_000;
/**
 * Shared results are also dropped after this long: on storage shared by several gateways, a purge
 * or a principal deletion made by another node moves neither number here.
 */
const MAX_AGE_MS = 1_000;

export class SharedReads {
  private state = '';
  private stateSince = 0;
  private readonly pending = new Map<string, Promise<unknown>>();
  /** Values derived from shared read-only objects (see `derived`). */
  private readonly derivedValues = new WeakMap<object, Map<string, unknown>>();

  read<T>(state: string, key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    if (state !== this.state || now - this.stateSince > MAX_AGE_MS) {
      this.pending.clear();
      this.state = state;
      this.stateSince = now;
    }
    let p = this.pending.get(key) as Promise<T> | undefined;
    if (!p) {
      if (this.pending.size >= MAX_KEYS) this.pending.clear();
      p = load();
      const mine = p;
      this.pending.set(key, p);
      // A failed read is not shared with later callers: they try again.
      p.catch(() => { if (this.pending.get(key) === mine) this.pending.delete(key); });
    }
    return p;
  }

  /**
   * A result's bytes in one output format, rendered once: the feeds woken by one commit share one
   * page, and writing one Buffer to each of them saves each a render and an encode. Kept as long
   * as the result is.
   */
  rendered(result: object, format: string, render: () => string): Buffer {
    return this.derived(result, `render:${format}`, () => Buffer.from(render()));
  }

  /**
   * A value computed once from a shared object that is never modified (a shared page, a cached
   * principal, a feed scope) and kept as long as that object is: `make` must depend on nothing else
   * than the object and `key`.
   */
  derived<T>(owner: object, key: string, make: () => T): T {
    let values = this.derivedValues.get(owner);
    if (!values) this.derivedValues.set(owner, (values = new Map()));
    if (values.has(key)) return values.get(key) as T;
    const v = make();
    values.set(key, v);
    return v;
  }
}

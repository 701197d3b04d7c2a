/**
 * One database: its run state, the work in flight that going offline waits for, the listeners of
 * its commits and state changes, its background jobs, and its collections. The database is also its
 * own default collection (`_default._default`, the only one a database without `scopes` has), so
 * everything written before collections keeps its shape; named collections are Collection objects
 * it owns. Sequences, users, roles and sessions are database-wide (the Store).
 */
import { type CollectionName, Collection, DEFAULT_COLLECTION, DEFAULT_SCOPE, collectionKey, type DocumentChange } from './collection.ts';
import type { CollectionStore, Store } from '../storage/store.ts';
import type { SyncFunction } from '../sync/index.ts';
import { principalKey } from './doc-rules.ts';
import type { DbState } from './state.ts';

export {
  type CollectionName, type DocumentChange, type GetOptions, type WriteRequest, type WriteResult,
} from './collection.ts';
export { assertCanSee, defaultChannels, newDocId, principalKey, revisionHistory } from './doc-rules.ts';

/** The background jobs a database runs (see src/db/jobs/); the database only holds them. */
export interface DatabaseJobs {
  /** Whether tombstone compaction is running (`compact_running` in `GET /{db}/`). */
  readonly compactRunning: boolean;
  /** Stops timers and running jobs (they keep their checkpoints). */
  close(): Promise<void>;
}

/** What the database reports as it works (the metrics module implements it; db does not import it). */
export interface DatabaseStats {
  docsWritten(n: number): void;
  docsRead(n: number): void;
  syncFunction(seconds: number, outcome: 'ok' | 'rejected' | 'error'): void;
  storageTransaction(seconds: number): void;
  feedOpened(kind: 'longpoll' | 'continuous' | 'websocket'): () => void;
  /**
   * Delta sync events (Sync Gateway's `delta_sync` stats group); `bytesSaved` is what a delta spared
   * against the full body (sent or received). Optional so that older stats sinks still fit.
   */
  deltaSync?(event: DeltaSyncEvent, bytesSaved?: number): void;
}

export type DeltaSyncEvent = 'requested' | 'sent' | 'cache_hit' | 'cache_miss' | 'pull_replication' | 'push_applied';

const NO_STATS: DatabaseStats = {
  docsWritten() {}, docsRead() {}, syncFunction() {}, storageTransaction() {}, feedOpened: () => () => {},
};

export interface DatabaseOptions {
  name: string;
  store: Store;
  revsLimit: number;
  allowConflicts: boolean;
  maxAttachmentSize?: number;
  /** Largest document body (JSON, attachments excluded) in bytes: 413 `Document too large!` beyond; 0 = no limit. */
  maxDocumentBytes?: number;
  /** Most channels the sync function may assign one revision: 403 beyond; 0 = no limit. */
  maxChannelsPerDoc?: number;
  /** The compiled sync function; without one, `doc.channels` is used directly (Sync Gateway's default). */
  sync?: SyncFunction;
  stats?: DatabaseStats;
  /** Run state at construction (default `Online`); a reload builds the new database `Starting`. */
  initialState?: DbState;
  /**
   * Named collections (`scopes`), in configuration order, each with its storage and sync function.
   * Unset or empty: the database has only `_default._default`. When set, `_default._default` is
   * served only if listed (a config whose `scopes` leave it out does not have it).
   */
  collections?: { scope: string; name: string; store: CollectionStore; sync?: SyncFunction }[];
  /** Delta sync over BLIP (`delta_sync`); off by default, as in Sync Gateway. */
  deltaSync?: { enabled: boolean; revMaxAgeSecs: number };
  /** Seconds a replaced revision's body is kept when delta sync does not set it (`old_rev_expiry_seconds`, 300). */
  oldRevExpirySecs?: number;
}

/** Called after every commit with its new revisions; the write waits for the returned promise. */
export type DocumentChangeListener = (changes: DocumentChange[]) => Promise<void> | void;
/** Called on every run state transition, with Sync Gateway's reason text. */
export type StateChangeListener = (state: DbState, reason: string, previous: DbState) => void;

export class Database extends Collection {
  readonly name: string;
  declare readonly store: Store;
  readonly startTime = Date.now() * 1000;
  private closed = false;
  private runState: DbState;
  private readonly unwatch?: () => void;
  /**
   * Aborted when live feeds must end: the database goes offline (then replaced, so feeds opened
   * after `_online` run again) or stops for good. Long-lived sessions (BLIP connections) end on it.
   */
  private feedsEnd = new AbortController();
  /** Requests and writes under way: going offline waits for them (Sync Gateway's db write lock). */
  private inFlight = 0;
  private drained: (() => void)[] = [];
  /** Background jobs (resync, compaction), set by the composition root or the jobs module. */
  jobs?: DatabaseJobs;
  private readonly changeListeners = new Set<DocumentChangeListener>();
  private readonly stateListeners = new Set<StateChangeListener>();
  /** Every collection the database serves, by `scope.collection`, in configuration order. */
  private readonly served = new Map<string, Collection>();

  constructor(opts: DatabaseOptions) {
    const stats = opts.stats ?? NO_STATS;
    const limits = {
      revsLimit: opts.revsLimit, allowConflicts: opts.allowConflicts, maxAttachmentSize: opts.maxAttachmentSize,
      maxDocumentBytes: opts.maxDocumentBytes, maxChannelsPerDoc: opts.maxChannelsPerDoc, stats,
      deltaSync: opts.deltaSync, oldRevExpirySecs: opts.oldRevExpirySecs,
    };
    const named = opts.collections ?? [];
    const isDefault = (c: { scope: string; name: string }) => c.scope === DEFAULT_SCOPE && c.name === DEFAULT_COLLECTION;
    // A config listing `_default._default` among its collections gives it its sync function there.
    const listedDefault = named.find(isDefault);
    super(undefined, { scope: DEFAULT_SCOPE, name: DEFAULT_COLLECTION, store: opts.store, sync: listedDefault ? listedDefault.sync : opts.sync, ...limits });
    this.name = opts.name;
    this.runState = opts.initialState ?? 'Online';
    const defaultListed = listedDefault !== undefined;
    if (!defaultListed && named.length === 0) this.served.set(this.key, this);
    for (const c of named) {
      const coll = isDefault(c) ? this : new Collection(this, { scope: c.scope, name: c.name, store: c.store, sync: c.sync, ...limits });
      this.served.set(coll.key, coll);
    }
    // Shared storage (PostgreSQL, several nodes): other nodes' commits wake this node's feeds too.
    this.unwatch = opts.store.watch?.((c) => {
      const target = c.collection === undefined ? this : this.served.get(c.collection);
      target?.notifier.notify(c.channels);
      if (c.grantees.length) this.notifyPrincipals(c.grantees.map(principalKey));
    });
  }

  /** The collection named so, or undefined when this database does not have it. */
  collection(scope: string, name: string): Collection | undefined {
    return this.served.get(collectionKey(scope, name));
  }

  /** Every collection of the database, in configuration order. */
  collections(): Collection[] {
    return [...this.served.values()];
  }

  /** Names of the database's collections, in configuration order. */
  collectionNames(): CollectionName[] {
    return this.collections().map((c) => ({ scope: c.scope, name: c.collectionName }));
  }

  /**
   * Wakes feeds that follow these users or roles (`_user:<name>`, `_role:<name>`) in every
   * collection: a grant made in one collection, a role change or an admin edit can change what the
   * user sees in all of them.
   */
  notifyPrincipals(keys: Iterable<string>): void {
    const list = [...keys];
    const all = new Set<Collection>([this, ...this.served.values()]);
    for (const c of all) c.notifier.notify(list);
  }

  /** Called after an admin saves or deletes a user or role, so that user's live feeds reload. */
  principalChanged(kind: 'user' | 'role', name: string): void {
    this.notifyPrincipals([kind === 'user' ? `_user:${name}` : `_role:${name}`]);
  }

  /** Whether any listener follows committed revisions (the write path skips building them otherwise). */
  get announcing(): boolean { return this.changeListeners.size > 0; }

  /** Hands committed revisions to the listeners; a listener's failure is its own problem. */
  async announce(changes: DocumentChange[]): Promise<void> {
    await Promise.all([...this.changeListeners].map(async (l) => { try { await l(changes); } catch { /* listener's own problem */ } }));
  }

  get isClosed(): boolean { return this.closed; }

  /** `Online` serves every request; any other state only the offline-capable handlers. */
  get state(): DbState { return this.runState; }
  /**
   * The one place a run state changes: start, `_offline`, `_online`, reloads and shutdown all come
   * here, so each transition is announced once (event handlers raise `db_state_changed` from it).
   * `reason` is Sync Gateway's text ("DB loaded from config", "ADMIN Request", ...).
   */
  setState(state: DbState, reason = ''): void {
    const previous = this.runState;
    if (previous === state) return;
    this.runState = state;
    for (const l of this.stateListeners) l(state, reason, previous);
  }

  /** Follows state transitions; returns the unsubscribe function. */
  onStateChange(listener: StateChangeListener): () => void {
    this.stateListeners.add(listener);
    return () => { this.stateListeners.delete(listener); };
  }

  /**
   * Follows committed revisions (every write path: REST, BLIP, resync). A listener bounds its own
   * wait: the write path awaits it (event handlers wait at most `wait_for_process`).
   */
  onDocumentChange(listener: DocumentChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => { this.changeListeners.delete(listener); };
  }

  get stopSignal(): AbortSignal { return this.feedsEnd.signal; }

  /**
   * Runs `fn` as work the offline transition must wait for (a request, a write). Work that starts
   * once the database is not online still runs: the HTTP gate refuses new requests before this.
   */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await fn();
    } finally {
      if (--this.inFlight === 0) for (const d of this.drained.splice(0)) d();
    }
  }

  /** Resolves once no tracked work is under way. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /**
   * Ends every live feed and replication connection (REST longpoll, continuous and websocket
   * feeds, BLIP) without closing the database: feeds opened later follow a fresh signal.
   */
  endFeeds(): void {
    const ending = this.feedsEnd;
    if (!this.closed) this.feedsEnd = new AbortController();
    ending.abort();
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Ends live feeds and refuses to start new waits; the store stays open for in-flight requests. */
  stopFeeds(): void {
    this.closed = true;
    this.unwatch?.();
    for (const c of new Set<Collection>([this, ...this.served.values()])) c.notifier.close();
    this.feedsEnd.abort();
  }

  async close(): Promise<void> {
    this.stopFeeds();
    await this.jobs?.close();
    await this.store.close();
  }
}

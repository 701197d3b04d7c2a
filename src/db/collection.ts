/**
 * Scopes and collections (Sync Gateway 3.1, spec collections-delta.md part 1). A database holds one
 * scope of collections; each collection has its own documents, revision trees, channel index,
 * local documents and sync function, while sequences, users, roles and sessions stay database-wide.
 * Routes and BLIP handlers resolve a keyspace to a Collection once, at the edge, and then speak only
 * to the Collection.
 *
 * Contract for every caller: the principal handed to a Collection method, or to the changes path
 * with a Collection, is already the principal *in that collection* (`principalIn`, auth/principal.ts):
 * its `channels` are that collection's channels. The edge maps it; the Collection never does.
 */
import { HttpError } from '../errors.ts';
import { parseJson, isJsonObject } from '../json/index.ts';
import { parseRevId } from '../revid.ts';
import { decodeRevTree, genOf, history, isLeaf, latestLeaves, leaves, sortedLeaves, type RevTree } from '../revtree/index.ts';
import type { AttachmentMap, CollectionStore, DocWrite, StoredDoc, StoredRevision } from '../storage/store.ts';
import { ADMIN, canSee, type Principal } from '../auth/principal.ts';
import { type SyncFunction, type SyncResult } from '../sync/index.ts';
import { bodyKey } from '../storage/store.ts';
import { DeltaCache } from './deltas.ts';
import { DEFAULT_MAX_ATTACHMENT_SIZE } from './attachments.ts';
import { Notifier } from './notifier.ts';
import { RecentWinners } from './recent-winners.ts';
import { SharedReads } from './shared-reads.ts';
import { type DocView, toRevisions } from './render.ts';
import type { Database, DatabaseStats } from './database.ts';
import { prepareWrite, runSync } from './prepare-write.ts';
import { assertCanSee, grantKey, grantsOf, parseLocalRev, principalKey, sameSet } from './doc-rules.ts';

export const DEFAULT_SCOPE = '_default';
export const DEFAULT_COLLECTION = '_default';
/** `scope.collection` of the default collection: the key of a database without `scopes`. */
export const DEFAULT_KEY = `${DEFAULT_SCOPE}.${DEFAULT_COLLECTION}`;

/** A collection's name within its database. */
export interface CollectionName {
  scope: string;
  name: string;
}

/** `scope.collection`: how a collection is keyed in maps, grants and storage. */
export function collectionKey(scope: string, name: string): string {
  return `${scope}.${name}`;
}

/** The inverse of collectionKey: scope and collection names hold no `.` (Couchbase's naming rules). */
export function splitCollectionKey(key: string): [string, string] {
  const i = key.indexOf('.');
  return [key.slice(0, i), key.slice(i + 1)];
}

export function isDefaultCollection(c: CollectionName): boolean {
  return c.scope === DEFAULT_SCOPE && c.name === DEFAULT_COLLECTION;
}

export interface WriteRequest {
  id: string;
  /** Parsed body, special properties included (`_rev`, `_revisions`, `_deleted`, `_attachments`). */
  body: Record<string, unknown>;
  newEdits: boolean;
  /** Parent revision from `?rev=` or `If-Match` (new_edits only). */
  parentRev?: string;
  /** Bodies of multipart `follows` attachments. */
  follows?: Map<string, Buffer>;
  /** Who writes: the sync function's require* checks apply to users only. Default: admin. */
  principal?: Principal;
  /** Replicated revision that must extend the current revision (BLIP `noconflicts`), even where conflicts are allowed. */
  noConflicts?: boolean;
}

export interface WriteResult { id: string; rev: string }

/**
 * A committed new revision, as announced to `onDocumentChange` listeners (event handlers). The
 * winner's body is included when the write produced it; otherwise the listener loads it.
 */
export interface DocumentChange {
  /** The collection the document is in (`scope.collection`). */
  collection: string;
  id: string;
  /** The revision this write added. */
  rev: string;
  seq: number;
  /** The document's winning revision after the write, and whether the write changed it. */
  winner: string;
  winnerChanged: boolean;
  /** The winning revision's stored body, when the write had it at hand. */
  winnerRevision?: StoredRevision;
  /** The parent revision as `oldDoc` JSON (what the sync function saw), or null. */
  oldDoc: string | null;
}

export interface GetOptions {
  rev?: string;
  revs?: boolean;
  revsLimit?: number;
  /** Stop `_revisions` after the first of these ancestors (defaults to attsSince). */
  revsFrom?: string[];
  /** Add `_exp` when the document has an expiry. */
  showExp?: boolean;
  /** CouchDB's `latest`: a named revision that is no longer a leaf stands for the leaf it led to. */
  latest?: boolean;
  /** Add `_conflicts` (the other live leaves) / `_deleted_conflicts` (the other deleted leaves). */
  conflicts?: boolean;
  deletedConflicts?: boolean;
  /** Add `_revs_info`: the revision's history with each body's status. */
  revsInfo?: boolean;
}

const MAX_RETRIES = 10;

/** What a collection is built from: its name, storage, sync function and the database's document limits. */
export interface CollectionOptions {
  scope: string;
  name: string;
  store: CollectionStore;
  revsLimit: number;
  allowConflicts: boolean;
  maxAttachmentSize?: number;
  /** Largest document body (JSON, attachments excluded) in bytes: 413 `Document too large!` beyond; 0 = no limit. */
  maxDocumentBytes?: number;
  /** Most channels the sync function may assign one revision: 403 beyond; 0 = no limit. */
  maxChannelsPerDoc?: number;
  /** The compiled sync function; without one, `doc.channels` is used directly (Sync Gateway's default). */
  sync?: SyncFunction;
  stats: DatabaseStats;
  /** Delta sync over BLIP (`delta_sync`); off by default, as in Sync Gateway. */
  deltaSync?: { enabled: boolean; revMaxAgeSecs: number };
  /** Seconds a replaced revision's body is kept when delta sync does not set it (`old_rev_expiry_seconds`, 300). */
  oldRevExpirySecs?: number;
}

/**
 * One collection: the single write path (load tree, add revision, map channels, commit with the next
 * database-wide sequence, notify) and the reads that REST and BLIP share. Its feeds wake on its own
 * notifier; a change to a user's access wakes that user's feeds in every collection (Database).
 */
export class Collection {
  /** The database the collection belongs to (state, stats, jobs, users and roles live there). */
  readonly db: Database;
  readonly scope: string;
  /** The collection's own name (`airline`), `_default` for the default collection. */
  readonly collectionName: string;
  /** `scope.collection`. */
  readonly key: string;
  readonly store: CollectionStore;
  readonly notifier = new Notifier();
  /** Reads shared by live feeds asking the same question at the same state (see shared-reads.ts). */
  readonly sharedReads = new SharedReads();
  readonly revsLimit: number;
  readonly allowConflicts: boolean;
  maxAttachmentSize: number;
  readonly maxDocumentBytes: number;
  readonly maxChannelsPerDoc: number;
  readonly sync?: SyncFunction;
  readonly stats: DatabaseStats;
  /** Delta sync is on for BLIP peers that announce it (spec collections-delta.md §2.1). */
  readonly deltaSyncEnabled: boolean;
  /**
   * Seconds a body stays available after its revision stops being a leaf (spec §2.6): the delta
   * sources' lifetime. `rev_max_age_seconds` with delta sync on (unless 0), else `old_rev_expiry_seconds`.
   */
  readonly oldRevRetentionSecs: number;
  /** Deltas computed for BLIP pulls, shared by every connection (see deltas.ts). */
  readonly deltaCache = new DeltaCache();
  /**
   * The bodies the latest commits made winners, for readers that follow the write path
   * (recent-winners.ts). One per database, shared by its collections (sequences are database-wide),
   * so its memory bound does not grow with the number of collections.
   */
  readonly recentWinners: RecentWinners;

  /** `db` undefined: the collection is the database itself (its default collection, see Database). */
  constructor(db: Database | undefined, opts: CollectionOptions) {
    this.db = db ?? (this as unknown as Database);
    this.recentWinners = db ? db.recentWinners : new RecentWinners();
    this.scope = opts.scope;
    this.collectionName = opts.name;
    this.key = collectionKey(opts.scope, opts.name);
    this.store = opts.store;
    this.revsLimit = opts.revsLimit;
    this.allowConflicts = opts.allowConflicts;
    this.maxAttachmentSize = opts.maxAttachmentSize ?? DEFAULT_MAX_ATTACHMENT_SIZE;
    this.maxDocumentBytes = opts.maxDocumentBytes ?? 0;
    this.maxChannelsPerDoc = opts.maxChannelsPerDoc ?? 0;
    this.deltaSyncEnabled = opts.deltaSync?.enabled ?? false;
    const oldRevExpiry = opts.oldRevExpirySecs ?? 300;
    const maxAge = opts.deltaSync?.revMaxAgeSecs ?? 86_400;
    this.oldRevRetentionSecs = this.deltaSyncEnabled && maxAge > 0 ? maxAge : oldRevExpiry;
    this.sync = opts.sync;
    this.stats = opts.stats;
  }

  /** What a shared read depends on: moves with every commit and every notification. */
  async readState(): Promise<string> {
    return `${await this.store.lastSeq()}:${this.notifier.version}`;
  }

  // ---- writes ---------------------------------------------------------------------------------

  async put(req: WriteRequest): Promise<WriteResult> {
    const [result] = await this.bulkWrite([req]);
    if (result instanceof HttpError) throw result;
    return result;
  }

  /**
   * Writes many documents in one storage transaction. Each row succeeds or fails on its own (an
   * HttpError in its slot); rows that lost a race with a concurrent writer are retried alone.
   * Several writes of one document (a replicator's revisions of one id, new_edits=false) go one per
   * round, in request order, each seeing the one before: waiting for its turn is not contention,
   * so only lost races count towards the retry limit.
   */
  async bulkWrite(reqs: WriteRequest[]): Promise<(WriteResult | HttpError)[]> {
    return this.db.track(() => this.bulkWriteNow(reqs));
  }

  private async bulkWriteNow(reqs: WriteRequest[]): Promise<(WriteResult | HttpError)[]> {
    const results: (WriteResult | HttpError)[] = new Array(reqs.length);
    const racesLost = new Array<number>(reqs.length).fill(0);
    let pending = reqs.map((_, i) => i);
    while (pending.length > 0) {
      pending = pending.filter((i) => {
        if (racesLost[i] < MAX_RETRIES) return true;
        results[i] = new HttpError(503, 'Too much contention on document, try again');
        return false;
      });
      if (pending.length === 0) break;
      const docs = await this.store.getDocs(pending.map((i) => reqs[i].id));
      const seenInBatch = new Set<string>();
      const batch: { i: number; p: { write: DocWrite; rev: string; change?: Omit<DocumentChange, 'seq' | 'collection'> } }[] = [];
      const deferred: number[] = [];
      for (const i of pending) {
        const req = reqs[i];
        // A second write to the same doc in one batch must see the first: do it in the next round.
        if (seenInBatch.has(req.id)) { deferred.push(i); continue; }
        try {
          const p = await prepareWrite(this, req, docs.get(req.id));
          if (!p.write) { results[i] = { id: req.id, rev: p.rev }; continue; }
          seenInBatch.add(req.id);
          batch.push({ i, p: { write: p.write, rev: p.rev, change: p.change } });
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          results[i] = err;
        }
      }
      let committed: Awaited<ReturnType<CollectionStore['commit']>> = [];
      if (batch.length) {
        const t0 = performance.now();
        committed = await this.store.commit(batch.map((b) => b.p.write));
        this.stats.storageTransaction((performance.now() - t0) / 1000);
      }
      const changedChannels = new Set<string>();
      const changedPrincipals = new Set<string>();
      const retry: number[] = [];
      const announced: DocumentChange[] = [];
      committed.forEach((r, k) => {
        const { i, p } = batch[k];
        if (r.ok) {
          results[i] = { id: reqs[i].id, rev: p.rev };
          const winner = p.write.addBodies.find((b) => b.rev === p.write.rev);
          if (winner) this.recentWinners.put(r.seq, p.write.id, winner);
          if (p.change && this.db.announcing) announced.push({ ...p.change, collection: this.key, seq: r.seq });
          for (const ch of p.write.channels) changedChannels.add(ch);
          for (const ch of p.write.previousChannels) changedChannels.add(ch);
          for (const g of r.grantees ?? []) changedPrincipals.add(principalKey(g));
        } else {
          racesLost[i]++;
          retry.push(i);
        }
      });
      const written = committed.filter((r) => r.ok).length;
      if (written > 0) {
        this.stats.docsWritten(written);
        this.notifier.notify(changedChannels);
        if (changedPrincipals.size) this.db.notifyPrincipals(changedPrincipals);
        // The revisions are committed: a listener's failure must not turn the answer into an error.
        if (announced.length) await this.db.announce(announced);
      }
      pending = [...retry, ...deferred].sort((a, b) => a - b);
    }
    return results;
  }

  /** A tombstone child of `rev` (or, with no rev and no doc, a generation-1 tombstone). */
  async delete(id: string, rev: string | undefined, principal?: Principal): Promise<WriteResult> {
    return this.put({ id, body: { _deleted: true }, newEdits: true, parentRev: rev, principal });
  }

  async purge(id: string): Promise<boolean> {
    const [doc, grants] = await Promise.all([this.store.getDoc(id), this.store.grantsBy(id)]);
    const ok = await this.store.purge(id);
    // A purge revokes the document's grants: wake its channels' feeds and its grantees' feeds.
    if (ok) {
      this.notifier.notify(doc?.channels ?? []);
      if (grants.length) this.db.notifyPrincipals(grants.map((g) => principalKey(g.grantee)));
    }
    return ok;
  }

  /**
   * Resync of a page of documents (`_resync`, src/db/jobs/resync.ts): each current revision runs
   * through the sync function again as the admin (require* pass); a document whose channels or
   * grants change is committed again (same revision, next sequence), so feeds show it leaving a
   * channel (`removed`) or entering one, and grantees whose access changed are stamped (revoked
   * users stop seeing, granted ones get the backfill). With `regenerate`, every document gets a new
   * sequence. A document the sync function now rejects keeps what it had. Returns how many changed.
   */
  async resyncDocs(ids: string[], regenerate: boolean): Promise<number> {
    return this.db.track(async () => {
      let changed = 0;
      let pending = ids;
      for (let attempt = 0; pending.length > 0 && attempt < MAX_RETRIES; attempt++) {
        const docs = await this.store.getDocs(pending);
        const bodies = await this.store.getRevisions([...docs.values()].map((d) => ({ id: d.id, rev: d.rev })));
        const writes: DocWrite[] = [];
        const counted: boolean[] = [];
        let n = 0;
        for (const doc of docs.values()) {
          // The sync function runs synchronously: let requests in between every few documents.
          if (++n % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
          const revision = bodies.get(bodyKey(doc.id, doc.rev));
          if (!revision) continue;
          let r: SyncResult;
          try {
            r = runSync(this, doc.id, revision, parseJson(revision.body) as Record<string, unknown>, null, ADMIN);
          } catch (err) {
            if (err instanceof HttpError) continue;
            throw err;
          }
          const grants = grantsOf(r);
          const old = await this.store.grantsBy(doc.id);
          const differs = !sameSet(doc.channels, r.channels) || !sameSet(old.map(grantKey), grants.map(grantKey));
          if (!differs && !regenerate) continue;
          writes.push({
            id: doc.id, expectedSeq: doc.seq, tree: doc.tree, rev: doc.rev, deleted: doc.deleted, channels: r.channels,
            previousChannels: doc.channels, addBodies: differs ? [{ ...revision, channels: r.channels }] : [], dropBodies: [],
            grants, expiry: doc.expiry,
          });
          counted.push(differs);
        }
        if (writes.length === 0) break;
        const committed = await this.store.commit(writes);
        const notify = new Set<string>();
        const principals = new Set<string>();
        const retry: string[] = [];
        committed.forEach((res, k) => {
          const w = writes[k];
          if (!res.ok) { retry.push(w.id); return; }
          if (counted[k]) changed++;
          for (const ch of w.channels) notify.add(ch);
          for (const ch of w.previousChannels) notify.add(ch);
          for (const g of res.grantees ?? []) principals.add(principalKey(g));
        });
        if (notify.size) this.notifier.notify(notify);
        if (principals.size) this.db.notifyPrincipals(principals);
        // Written meanwhile (another node, since offline is per node): run those again on their new state.
        pending = retry;
      }
      return changed;
    });
  }

  /** Purges documents whose expiry has passed (Sync Gateway's TTL). Returns how many went. */
  async sweepExpired(nowSecs = Math.floor(Date.now() / 1000)): Promise<number> {
    // Old revision bodies past their retention go in the same sweep (they are not documents: not counted).
    while (await this.store.dropOldRevisions(nowSecs, 500) === 500);
    let n = 0;
    for (;;) {
      const ids = await this.store.expired(nowSecs, 500);
      if (ids.length === 0) return n;
      for (const id of ids) if (await this.purge(id)) n++;
    }
  }

  // ---- reads ----------------------------------------------------------------------------------

  async getDocMeta(id: string): Promise<StoredDoc | undefined> {
    return this.store.getDoc(id);
  }

  /**
   * One revision (the winner by default), with `_revisions` when asked. 404 missing / deleted; 403
   * when the principal cannot see the current revision; a named revision it cannot see comes back
   * redacted (`_removed`), which is how clients learn they lost access.
   */
  async get(id: string, opts: GetOptions = {}, principal: Principal = ADMIN): Promise<DocView> {
    const doc = await this.store.getDoc(id);
    if (!doc) throw new HttpError(404, 'missing');
    if (opts.rev === undefined) {
      assertCanSee(principal, doc.channels);
      if (doc.deleted) throw new HttpError(404, 'deleted');
    }
    if (opts.rev !== undefined) parseRevId(opts.rev);
    const rev = opts.rev === undefined ? doc.rev : opts.latest ? latestLeaves(decodeRevTree(doc.tree), opts.rev)[0] ?? opts.rev : opts.rev;
    const view = await this.viewOf(doc, rev, opts, undefined, principal);
    if (!view) throw new HttpError(404, 'missing');
    this.stats.docsRead(1);
    return view;
  }

  /** Builds the view of one revision of a loaded doc, or undefined when its body is gone. */
  async viewOf(doc: StoredDoc, rev: string, opts: GetOptions, loaded?: StoredRevision, principal: Principal = ADMIN): Promise<DocView | undefined> {
    const tree = decodeRevTree(doc.tree);
    const info = tree.get(rev);
    if (!info) return undefined;
    const stored = loaded ?? await this.revisionBody(doc.id, rev);
    if (!stored) return undefined;
    const channels = stored.channels ?? (rev === doc.rev ? doc.channels : []);
    // A replaced revision (its body kept a while: delta sources, GET ?rev=) is served to a user only
    // while the user also sees the document now: a feed's removal entry naming an older revision
    // must not hand back a body the user lost access to through later revisions.
    const visible = canSee(principal, channels) && (principal.kind === 'admin' || isLeaf(tree, rev) || canSee(principal, doc.channels));
    const view: DocView = visible
      ? { id: doc.id, rev, deleted: stored.deleted, body: stored.body, attachments: stored.attachments }
      : { id: doc.id, rev, deleted: stored.deleted, body: '{}', attachments: null, removed: !stored.deleted };
    if (opts.showExp && doc.expiry !== undefined && visible) view.expiry = doc.expiry;
    if (opts.revs) view.revisions = this.revisionsOf(tree, rev, opts);
    if (opts.conflicts || opts.deletedConflicts) {
      // CouchDB's: every leaf but the winner, in its leaf order, split by the deleted flag.
      const others = sortedLeaves(tree).slice(1);
      const live = others.filter((l) => !l.deleted).map((l) => l.id);
      const dead = others.filter((l) => l.deleted).map((l) => l.id);
      if (opts.conflicts && live.length) view.conflicts = live;
      if (opts.deletedConflicts && dead.length) view.deletedConflicts = dead;
    }
    if (opts.revsInfo) view.revsInfo = await this.revsInfoOf(doc.id, tree, rev);
    return view;
  }

  /**
   * A revision's body: a leaf's, else a replaced body still retained (`old_rev_expiry_seconds`, or
   * delta sync's `rev_max_age_seconds`). Sync Gateway's GET `?rev=` and open_revs serve its
   * revision backups the same way (getRevision falls back to getOldRevisionJSON).
   */
  private async revisionBody(id: string, rev: string): Promise<StoredRevision | undefined> {
    return (await this.store.getRevision(id, rev)) ?? (await this.store.getOldRevision(id, rev, Math.floor(Date.now() / 1000)));
  }

  /** CouchDB's `_revs_info`: the history of `rev`, newest first; bodies no longer kept are `missing`. */
  private async revsInfoOf(id: string, tree: RevTree, rev: string): Promise<{ rev: string; status: 'available' | 'missing' | 'deleted' }[]> {
    const hist = history(tree, rev);
    const bodies = await this.store.getRevisions(hist.map((r) => ({ id, rev: r })));
    const nowSecs = Math.floor(Date.now() / 1000);
    const out: { rev: string; status: 'available' | 'missing' | 'deleted' }[] = [];
    for (const r of hist) {
      if (tree.get(r)!.deleted) { out.push({ rev: r, status: 'deleted' }); continue; }
      const kept = bodies.has(bodyKey(id, r)) || (this.oldRevRetentionSecs > 0 && await this.store.getOldRevision(id, r, nowSecs) !== undefined);
      out.push({ rev: r, status: kept ? 'available' : 'missing' });
    }
    return out;
  }

  revisionsOf(tree: RevTree, rev: string, opts: GetOptions): { start: number; ids: string[] } {
    const limit = Math.min(opts.revsLimit ?? Infinity, this.revsLimit > 0 ? this.revsLimit : Infinity);
    let hist = history(tree, rev, limit);
    if (opts.revsFrom?.length) {
      const from = new Set(opts.revsFrom);
      const cut = hist.findIndex((r, i) => i > 0 && from.has(r));
      if (cut >= 0) hist = hist.slice(0, cut + 1);
    }
    return toRevisions(hist);
  }

  /** Every leaf (`open_revs=all`) or the listed revisions; a missing one is reported by id. */
  async getOpenRevs(id: string, revs: 'all' | string[], opts: GetOptions, principal: Principal = ADMIN): Promise<(DocView | { missing: string })[]> {
    const doc = await this.store.getDoc(id);
    if (!doc) {
      if (revs === 'all') throw new HttpError(404, 'missing');
      return revs.map((r) => ({ missing: r }));
    }
    const tree = decodeRevTree(doc.tree);
    // With `latest`, each named revision stands for every leaf it led to (CouchDB's open_revs).
    const named = revs === 'all' || !opts.latest ? revs : revs.flatMap((r) => {
      const found = tree.has(r) ? latestLeaves(tree, r) : [];
      return found.length ? found : [r];
    });
    const wanted = named === 'all' ? leaves(tree).map((l) => l.id) : [...new Set(named)];
    const out: (DocView | { missing: string })[] = [];
    for (const rev of wanted) {
      out.push((await this.viewOf(doc, rev, opts, undefined, principal)) ?? { missing: rev });
    }
    this.stats.docsRead(out.filter((r) => !('missing' in r)).length);
    return out;
  }

  /**
   * Bodies of revisions, each read as the document stood at sequence `seq` (`seq` undefined: not a
   * document's current state). Those a recent commit made the winner come from memory
   * (recent-winners.ts), the rest from storage in one round trip. Keyed by `bodyKey(id, rev)`.
   */
  async revisionsAt(keys: { id: string; rev: string; seq?: number }[]): Promise<Map<string, StoredRevision>> {
    const out = new Map<string, StoredRevision>();
    const missing: { id: string; rev: string }[] = [];
    for (const k of keys) {
      const hit = k.seq === undefined ? undefined : this.recentWinners.get(k.seq, k.id, k.rev);
      if (hit) out.set(bodyKey(k.id, k.rev), hit); else missing.push(k);
    }
    if (missing.length) for (const [k, v] of await this.store.getRevisions(missing)) out.set(k, v);
    return out;
  }

  /** Bulk form of get for `_bulk_get`: one storage round trip for docs and one for bodies. */
  async getMany(items: { id: string; rev?: string; opts: GetOptions }[], principal: Principal = ADMIN): Promise<(DocView | HttpError)[]> {
    const docs = await this.store.getDocs(items.map((i) => i.id));
    // The revision each item reads: the current one, the named one, or with `latest` the leaf it led to.
    const revOf = (it: typeof items[number], d: StoredDoc): string => {
      if (it.rev === undefined) return d.rev;
      if (!it.opts.latest) return it.rev;
      const tree = decodeRevTree(d.tree);
      return (tree.has(it.rev) ? latestLeaves(tree, it.rev)[0] : undefined) ?? it.rev;
    };
    const keys: { id: string; rev: string; seq?: number }[] = [];
    for (const it of items) {
      const d = docs.get(it.id);
      if (!d) continue;
      const rev = revOf(it, d);
      keys.push({ id: it.id, rev, seq: rev === d.rev ? d.seq : undefined });
    }
    const bodies = await this.revisionsAt(keys);
    const out: (DocView | HttpError)[] = [];
    for (const it of items) {
      const d = docs.get(it.id);
      if (!d) { out.push(new HttpError(404, 'missing')); continue; }
      if (it.rev === undefined && !canSee(principal, d.channels)) { out.push(new HttpError(403, 'forbidden')); continue; }
      const rev = revOf(it, d);
      const stored = bodies.get(bodyKey(it.id, rev)) ?? await this.store.getOldRevision(it.id, rev, Math.floor(Date.now() / 1000));
      const view = stored ? await this.viewOf(d, rev, it.opts, stored, principal) : undefined;
      out.push(view ?? new HttpError(404, 'missing'));
    }
    this.stats.docsRead(out.filter((r) => !(r instanceof HttpError)).length);
    return out;
  }

  async getAttachmentData(digest: string): Promise<Buffer | undefined> {
    return this.store.getAttachment(digest);
  }

  /**
   * Attachment bytes to inline: those added after the closest ancestor of `of.rev` that the client
   * says it has (Sync Gateway's findAncestorFromSet). A listed revision on another branch says
   * nothing about this one's attachments: counting it would send stubs the client cannot resolve.
   */
  async attachmentsToInline(atts: AttachmentMap | null, attsSince: string[] | undefined, of?: { id: string; rev: string }): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    if (!atts) return out;
    let since = attsSince ?? [];
    if (since.length && of) {
      const doc = await this.store.getDoc(of.id);
      const ancestry = new Set(doc ? history(decodeRevTree(doc.tree), of.rev) : []);
      since = since.filter((r) => ancestry.has(r));
    }
    const minRevpos = since.length ? Math.max(...since.map(genOf)) : 0;
    for (const [name, meta] of Object.entries(atts)) {
      if (meta.revpos <= minRevpos) continue;
      const data = await this.store.getAttachment(meta.digest);
      if (data) out.set(name, data);
    }
    return out;
  }

  /** `_revs_diff`: for each doc, the listed revs the database lacks and the leaves they could follow. */
  async revsDiff(request: Record<string, string[]>, principal: Principal = ADMIN): Promise<Record<string, { missing: string[]; possible_ancestors?: string[] }>> {
    const ids = Object.keys(request);
    const docs = await this.store.getDocs(ids);
    // A document the principal cannot see is answered as if it did not exist.
    for (const [id, d] of docs) if (!canSee(principal, d.channels)) docs.delete(id);
    const out: Record<string, { missing: string[]; possible_ancestors?: string[] }> = {};
    for (const id of ids) {
      const revs = request[id];
      if (!Array.isArray(revs)) throw new HttpError(400, 'Bad revs_diff request: revision lists must be arrays');
      const doc = docs.get(id);
      const tree = doc ? decodeRevTree(doc.tree) : undefined;
      const missing = revs.filter((r) => typeof r === 'string' && !tree?.has(r));
      if (missing.length === 0) continue;
      const entry: { missing: string[]; possible_ancestors?: string[] } = { missing };
      if (tree) {
        const maxGen = Math.max(...missing.map(genOf));
        const ancestors = leaves(tree).filter((l) => genOf(l.id) < maxGen).map((l) => l.id);
        if (ancestors.length) entry.possible_ancestors = ancestors;
      }
      out[id] = entry;
    }
    return out;
  }

  // ---- local docs -----------------------------------------------------------------------------

  async getLocal(id: string): Promise<string> {
    const doc = await this.store.getLocal(id);
    if (!doc) throw new HttpError(404, 'missing');
    const head = `{"_id":${JSON.stringify('_local/' + id)},"_rev":"0-${doc.rev}"`;
    return doc.body.length > 2 ? head + ',' + doc.body.slice(1) : head + '}';
  }

  async putLocal(id: string, body: Record<string, unknown>): Promise<string> {
    if (!isJsonObject(body)) throw new HttpError(400, 'Document body must be a JSON object');
    const expected = parseLocalRev(body._rev);
    const rest: Record<string, unknown> = {};
    // Local docs hold no attachments: CouchDB drops `_attachments` from them (PouchDB's suite expects it).
    for (const k of Object.keys(body)) if (k !== '_id' && k !== '_rev' && k !== '_attachments') rest[k] = body[k];
    const cur = await this.store.getLocal(id);
    if (expected > 0 && !cur) throw new HttpError(404, 'No previous revision to replace');
    const rev = await this.store.putLocal(id, expected, JSON.stringify(rest));
    if (rev === null) throw new HttpError(409, 'Document update conflict');
    return `0-${rev}`;
  }

  async deleteLocal(id: string, rev: unknown): Promise<void> {
    const cur = await this.store.getLocal(id);
    if (!cur) throw new HttpError(404, 'missing');
    const ok = await this.store.deleteLocal(id, parseLocalRev(rev));
    if (!ok) throw new HttpError(409, 'Document update conflict');
  }
}

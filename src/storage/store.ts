/**
 * The storage contract. Narrow and transactional: it speaks in documents, revisions, channel
 * entries, attachments, local docs and sequences, never in SQL. Every backend passes the shared
 * contract suite in test/storage/contract.ts. Methods are async so that a networked backend
 * (PostgreSQL) fits the same shape as the embedded one.
 */
import type { EncodedRevTree } from '../revtree/index.ts';

/** Attachment metadata as it appears in `_attachments` (stubs only; bytes live by digest). */
export interface AttachmentMeta {
  content_type?: string;
  /**
   * `sha1-<base64>`: Sync Gateway's digest, the key of the stored bytes and what Couchbase Lite sees
   * over BLIP (its proofs and `getAttachment` name it).
   */
  digest: string;
  /**
   * `md5-<base64>`: CouchDB's and PouchDB's digest, what REST clients see as `digest` (PouchDB
   * compares it with its own copy's to decide whether to download the attachment again). Set on
   * every attachment written or migrated since schema 5 (SQLite) / 3 (PostgreSQL).
   */
  md5?: string;
  length: number;
  revpos: number;
  encoding?: string;
  encoded_length?: number;
}

export type AttachmentMap = Record<string, AttachmentMeta>;

/** Bytes of a new attachment with their md5 digest (computed once, by the write path). */
export interface NewAttachment {
  data: Buffer;
  /** `md5-<base64>` of `data`. */
  md5: string;
}

/** A stored attachment's two digests and its size, found by either digest. */
export interface AttachmentKey {
  /** `sha1-<base64>`: the key of the bytes. */
  digest: string;
  /** `md5-<base64>`. */
  md5: string;
  /** Stored bytes. */
  length: number;
}

/** One document's metadata row: its revision tree, winner and feed position. */
export interface StoredDoc {
  id: string;
  tree: EncodedRevTree;
  rev: string;
  deleted: boolean;
  /** Sequence of the document's latest change; also the compare-and-swap token for writes. */
  seq: number;
  /** Channels of the winning revision. */
  channels: string[];
  /** When the document expires (seconds since the epoch), from `_exp` or the sync function's expiry(). */
  expiry?: number;
}

/** A revision's stored body: the JSON object text without `_id`, `_rev`, `_attachments`, `_deleted`. */
export interface StoredRevision {
  rev: string;
  deleted: boolean;
  body: string;
  attachments: AttachmentMap | null;
  /** Channels the sync function gave this revision (for access checks on `?rev=`). */
  channels?: string[];
}

export interface DocWrite {
  id: string;
  /** The `seq` the writer read (0 for a new document). The commit fails if it has moved since. */
  expectedSeq: number;
  tree: EncodedRevTree;
  rev: string;
  deleted: boolean;
  channels: string[];
  /** Channels the document was in before this write (for removal entries in the channel index). */
  previousChannels: string[];
  /** Expiry of the document after this write (seconds since the epoch); undefined: none. */
  expiry?: number;
  addBodies: StoredRevision[];
  /** Revisions whose bodies are no longer needed (no longer leaves, or pruned). */
  dropBodies: string[];
  /**
   * Bodies that stop being leaves but are kept a while as old revisions (delta sync sources, spec
   * §2.6): moved, in this transaction, from the leaf bodies to the old-revision store until `until`.
   */
  retireBodies?: RetiredBody[];
  /** New attachment bytes, by sha1 digest. Content-addressed, so writing an existing digest is a no-op. */
  attachments?: Map<string, NewAttachment>;
  /**
   * When set, replaces every grant this document made (they are recorded at this write's sequence),
   * and marks each grantee whose grants changed as changed at this sequence.
   */
  grants?: Grant[];
}

/** A body kept after its revision stopped being a leaf, until `until` (seconds since the epoch). */
export interface RetiredBody {
  rev: string;
  until: number;
}

/** What the old-revision store holds (for metrics): rows and the bytes of their bodies. */
export interface OldRevisionUsage {
  count: number;
  bytes: number;
}

/** A grant made by a document's sync function: `access()` (a channel) or `role()` (a role). */
export interface Grant {
  /** A user name, or `role:<name>` for a role. */
  grantee: string;
  kind: 'channel' | 'role';
  value: string;
}

export interface GrantRow extends Grant {
  docId: string;
  /**
   * `scope.collection` of the granting document; absent for the default collection. A channel grant
   * gives a channel of that collection; a role grant is database-wide, whichever collection made it.
   */
  collection?: string;
  /** Sequence of the write that made the grant. */
  seq: number;
}

export type PrincipalKind = 'user' | 'role';

/** One page of a principal list (`Store.listPrincipals`). */
export interface PrincipalPage {
  prefix?: string;
  after?: string;
  limit?: number;
}

/** A user or role as stored. Channel and role maps hold the sequence at which each was granted. */
export interface PrincipalRecord {
  kind: PrincipalKind;
  name: string;
  adminChannels: Record<string, number>;
  adminRoles: Record<string, number>;
  email?: string;
  disabled: boolean;
  passwordHash?: string;
  /**
   * Users signed in with a JWT (spec §3.6): the issuer of the last login, and the roles and channels
   * its claims gave (name → granted-at sequence, 0 = this save), kept apart from the admin ones.
   * Stored inside the record's JSON, so older records simply lack them.
   */
  jwtIssuer?: string;
  jwtRoles?: Record<string, number>;
  jwtChannels?: Record<string, number>;
  /** RFC 3339 time of the last change made by a JWT login. */
  jwtLastUpdated?: string;
  /**
   * Admin channels in named collections (`collection_access`): `scope.collection` → channel →
   * granted-at sequence (0 = this save). Kept in the record's JSON, so older records simply lack it.
   */
  collectionChannels?: Record<string, Record<string, number>>;
  /** Sequence of the principal's last save (assigned by the store). */
  seq: number;
}

export interface SessionRecord {
  id: string;
  user: string;
  /** Milliseconds since the epoch. */
  expires: number;
  ttlMs: number;
}

export type CommitResult =
  | { ok: true; seq: number; /** Grantees whose document grants this write changed. */ grantees?: string[] }
  | { ok: false; reason: 'conflict' };

export interface ChangeRow {
  seq: number;
  id: string;
  rev: string;
  deleted: boolean;
  /** Set when the row records the document leaving the channel it was read from. */
  removed?: string;
}

export interface ChangesQuery {
  since: number;
  /** Inclusive upper bound: readers never go past the sequence that was committed when they started. */
  until?: number;
  limit?: number;
  /** Read these channels' index; undefined means every document (the admin's view). */
  channels?: string[];
  docIds?: string[];
}

/** One row of a document's channel index (`Store.docChannels`): the channel it is in, or was removed from. */
export interface DocChannelRow {
  channel: string;
  /** Sequence of the write that last touched this row (the removal, when `removed`). */
  seq: number;
  /** Winning revision after that write. */
  rev: string;
  deleted: boolean;
  /** The document left this channel at `seq`. */
  removed: boolean;
}

export interface AllDocsQuery {
  startkey?: string;
  endkey?: string;
  limit?: number;
  skip?: number;
  descending?: boolean;
  /** False: the row at `endkey` itself is left out (CouchDB's inclusive_end). Default true. */
  inclusiveEnd?: boolean;
  includeDeleted?: boolean;
}

export interface AllDocsRow {
  id: string;
  rev: string;
  seq: number;
  deleted: boolean;
  channels: string[];
}

export interface LocalDoc {
  /** The N of `0-N`. */
  rev: number;
  body: string;
}

/** What another process committed on shared storage (PostgreSQL with several nodes). */
export interface RemoteCommit {
  /** Channels whose index gained rows (documents added to or removed from them). */
  channels: string[];
  /** Users and `role:<name>`s whose access changed (grants, saves, deletions). */
  grantees: string[];
  /** `scope.collection` the channels belong to; absent for the default collection. */
  collection?: string;
}

/**
 * One collection's documents: revisions, channel index, attachments (content-addressed bytes are
 * shared by the database's collections), local documents and the grants its documents make.
 * Sequences are database-wide: `lastSeq` and every commit draw from the one counter.
 */
export interface CollectionStore {
  /** Sequence of the last committed change. */
  lastSeq(): Promise<number>;
  getDoc(id: string): Promise<StoredDoc | undefined>;
  getDocs(ids: string[]): Promise<Map<string, StoredDoc>>;
  getRevision(id: string, rev: string): Promise<StoredRevision | undefined>;
  getRevisions(keys: { id: string; rev: string }[]): Promise<Map<string, StoredRevision>>;
  /**
   * A retired (non-leaf) revision body still kept at `nowSecs` (see DocWrite.retireBodies); leaf
   * bodies are read with getRevision. Delta sync's source lookup, not a general read path.
   */
  getOldRevision(id: string, rev: string, nowSecs: number): Promise<StoredRevision | undefined>;
  /** Removes old revision bodies whose time ran out at or before `nowSecs` (at most `limit`); returns how many. */
  dropOldRevisions(nowSecs: number, limit: number): Promise<number>;
  oldRevisionUsage(): Promise<OldRevisionUsage>;
  /**
   * Commits the writes, each atomically with its next sequence, in one transaction where the backend
   * allows. A write whose expectedSeq no longer matches is reported as a conflict and not applied; the
   * others still commit.
   */
  commit(writes: DocWrite[]): Promise<CommitResult[]>;
  /** Removes a document and its revisions, bodies (old ones too) and channel entries entirely. */
  purge(id: string): Promise<boolean>;
  /** Ids of documents whose expiry is at or before `nowSecs`, oldest first. */
  expired(nowSecs: number, limit: number): Promise<string[]>;
  changes(q: ChangesQuery): Promise<ChangeRow[]>;
  allDocs(q: AllDocsQuery): Promise<AllDocsRow[]>;
  /**
   * Every channel index row of one document, by channel name: the channels it is in and those it
   * was removed from (with the removing sequence). Admin inspection (`_raw`), not a hot path.
   */
  docChannels(id: string): Promise<DocChannelRow[]>;
  /** The newest `limit` rows of one channel's index, oldest first (`_dumpchannel`). */
  channelTail(channel: string, limit: number): Promise<ChangeRow[]>;
  /** Live (non-deleted) documents; kept by the store, so this costs no scan. */
  countDocs(): Promise<number>;
  /** Live and deleted (tombstoned, not purged) documents: `doc_count` and `doc_del_count`. No scan. */
  docCounts(): Promise<{ live: number; deleted: number }>;
  getAttachment(digest: string): Promise<Buffer | undefined>;
  /** Which of these sha1 digests are stored. */
  hasAttachments(digests: string[]): Promise<Set<string>>;
  /**
   * Stored attachments whose sha1 `digest` or `md5` is one of these digests (either kind, mixed):
   * how a stub that comes back from a CouchDB client (md5) or Couchbase Lite (sha1) finds its bytes.
   * An md5 may match more than one row (md5 collisions can be made on purpose): all are returned.
   */
  findAttachments(digests: string[]): Promise<AttachmentKey[]>;
  getLocal(id: string): Promise<LocalDoc | undefined>;
  /** Writes a local doc if its current rev is `expectedRev` (0 = absent). Returns the new rev, or null on conflict. */
  putLocal(id: string, expectedRev: number, body: string): Promise<number | null>;
  deleteLocal(id: string, expectedRev: number): Promise<boolean>;
  /** Every grant the document's current winner makes. */
  grantsBy(docId: string): Promise<GrantRow[]>;
  /**
   * Ids of tombstones (documents whose winner is deleted) that became tombstones at or before
   * `beforeSecs` (seconds since the epoch), oldest first: tombstone compaction purges them.
   */
  tombstonesBefore(beforeSecs: number, limit: number): Promise<string[]>;
}

/**
 * A database's storage: its default collection (`_default._default`, the tables every database had
 * before collections) plus what is database-wide (sequences, users, roles, sessions, job records).
 */
export interface Store extends CollectionStore {
  /**
   * The named collection's store, creating its storage on first use (no data is moved: the default
   * collection is this store itself). Collections are never dropped by removing them from a config.
   */
  collection(scope: string, name: string): Promise<CollectionStore>;
  /**
   * The named collections whose storage exists (made by `collection()`, here or on another node),
   * by scope then name; the default collection is not listed (it always exists). For jobs and operators.
   */
  listCollections(): Promise<{ scope: string; name: string }[]>;
  // ---- principals, grants and sessions ----
  getPrincipal(kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined>;
  /**
   * Principal names in byte order; `page` narrows it to names starting with `prefix`, after `after`
   * (exclusive), at most `limit` (0/undefined: all), read from the (kind, name) index.
   */
  listPrincipals(kind: PrincipalKind, page?: PrincipalPage): Promise<string[]>;
  /** Saves a principal with the next sequence (returned). */
  putPrincipal(p: Omit<PrincipalRecord, 'seq'>): Promise<number>;
  deletePrincipal(kind: PrincipalKind, name: string): Promise<boolean>;
  /** Every document grant to these grantees (user names and `role:<name>`). */
  grantsTo(grantees: string[]): Promise<GrantRow[]>;
  /** For each grantee, the last sequence at which its document grants changed (added or revoked). */
  grantsChangedAt(grantees: string[]): Promise<Map<string, number>>;
  putSession(s: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  deleteSession(id: string): Promise<boolean>;
  deleteUserSessions(user: string): Promise<number>;
  /**
   * Shared storage only: calls `onCommit` after other processes commit, so this process's feeds
   * wake. Returns an unsubscribe function. A single-process backend (SQLite) leaves it out.
   */
  watch?(onCommit: (c: RemoteCommit) => void): () => void;
  /**
   * A value that changes whenever any user's access may have changed (principal saves and
   * deletions, which take no sequence; grant changes), and need not change otherwise: cached
   * access stays valid while it stands. Defaults to `lastSeq()` (moves on every write).
   */
  accessVersion?(): Promise<number | string>;
  // ---- background jobs (src/db/jobs/) ----
  /**
   * Attachment compaction: removes the attachment bodies that no stored revision references, in
   * one step that a concurrent commit cannot interleave with. `referenced` counts the digests still
   * in use; `removed` what went (with `dryRun`, what would go; nothing is removed).
   */
  compactAttachments(dryRun: boolean): Promise<{ referenced: number; removed: number }>;
  /**
   * A background job's persisted record (status, checkpoint, lease), as the job wrote it: resync and
   * compaction (src/db/jobs/), and at-least-once webhook delivery (src/events/), whose position
   * survives restarts and is shared by every node on one PostgreSQL.
   */
  getJobRecord(job: string): Promise<string | undefined>;
  /**
   * Replaces a job's record if it still is `expected` (undefined: absent). Returns false when
   * another writer (another node) changed it first: this is what makes a job run once per cluster.
   */
  putJobRecord(job: string, expected: string | undefined, value: string): Promise<boolean>;
  /**
   * A hint that a job is about to read the whole database once (a resync): a store may trade its
   * read caches for flat memory until called again with false. SQLite drops its memory map and
   * shrinks its page cache (every page of the file would otherwise end up resident); stores
   * without such caches leave it out.
   */
  bulkScan?(on: boolean): Promise<void>;
  /** The database's uuid, made once when the store is created. */
  uuid(): Promise<string>;
  close(): Promise<void>;
}

export function bodyKey(id: string, rev: string): string {
  return `${id}\u0000${rev}`;
}

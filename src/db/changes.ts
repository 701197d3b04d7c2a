/**
 * The one changes path. A feed reads the channel index of what the reader may see (never a scan of
 * the database), merges the channels, and for channels granted after the reader's position replays
 * them from the start as Sync Gateway's backfill: entries tagged `G:N` (G = the sequence of the
 * grant), ordered just before the untagged sequence G. REST feeds of every style and BLIP's
 * subChanges are all built on `changesSince`.
 */
import { HttpError } from '../errors.ts';
import { ALL_CHANNELS, type Principal } from '../auth/principal.ts';
import { decodeRevTree, sortedLeaves } from '../revtree/index.ts';
import type { ChangeRow, StoredRevision } from '../storage/store.ts';
import { bodyKey } from '../storage/store.ts';
import type { Collection } from './collection.ts';
import { type DocView, renderDoc } from './render.ts';

/** A feed position: `N`, or `T:N` inside the backfill of channels granted at T. */
export interface Since {
  seq: number;
  triggeredBy?: number;
}

/** What a reader may see. */
export interface FeedScope {
  /** Channel → sequence at which the reader got it; 'all' is every document (admin, or a user with `*`). */
  channels: Map<string, number> | 'all';
  /** For 'all' held by a user: when `*` was granted. */
  allGrantedAt?: number;
  /** The reading user: its `_user/<name>` entry appears when it changed after the position. */
  user?: { name: string; seq: number };
}

export interface ChangesOptions {
  since: Since;
  limit?: number;
  style?: 'main_only' | 'all_docs';
  includeDocs?: boolean;
  /** With includeDocs: attachment bytes inline as base64 `data`. */
  attachments?: boolean;
  docIds?: string[];
  activeOnly?: boolean;
  /** With includeDocs: `_conflicts` in each document (CouchDB's conflicts=true). */
  conflicts?: boolean;
}

export interface ChangeEntry {
  /** Position of the entry; rendered as a number, or as the string `T:N` for backfill. */
  pos: Since;
  id: string;
  deleted?: true;
  removed?: string[];
  /** The reader no longer sees the document at this position (removed from every channel it sees). */
  unseen?: true;
  /** Rendered document JSON text, with include_docs. */
  doc?: string;
  changes: { rev: string }[];
}

export interface ChangesPage {
  entries: ChangeEntry[];
  /** Where the next read (page or live wait) continues from. */
  last: Since;
  /**
   * Nothing committed before this read began is left after `last` (no source was cut off by a
   * limit): a live feed can go straight to waiting instead of reading again to find an empty page.
   * A commit that lands during the read is remembered by the feed's notifier registration from
   * before the read began, so its wait returns at once (Listener.reading, or the `seen` version of
   * Notifier.wait).
   */
  complete: boolean;
}

export function parseSince(value: unknown): Since {
  if (value === undefined || value === null || value === '') return { seq: 0 };
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return { seq: value };
    throw new HttpError(400, 'Invalid sequence');
  }
  if (typeof value !== 'string') throw new HttpError(400, 'Invalid sequence');
  const parts = value.split(':');
  if (parts.length > 3 || !parts.every((p) => p === '' || /^\d{1,15}$/.test(p))) throw new HttpError(400, 'Invalid sequence');
  const n = parts.map((p) => (p === '' ? undefined : Number(p)));
  if (parts.length === 1 && n[0] !== undefined) return { seq: n[0] };
  if (parts.length === 2 && n[0] !== undefined && n[1] !== undefined) {
    return n[0] > 0 ? { seq: n[1], triggeredBy: n[0] } : { seq: n[1] };
  }
  // L::N or L:T:N: a change after L may still be pending, so resume from L.
  if (parts.length === 3 && n[0] !== undefined && n[2] !== undefined) return { seq: n[0] };
  throw new HttpError(400, 'Invalid sequence');
}

export function formatSince(s: Since): string {
  return s.triggeredBy ? `${s.triggeredBy}:${s.seq}` : String(s.seq);
}

/** Sort key implementing Sync Gateway's SequenceID ordering: T:N sorts just before the plain T. */
type Key = [number, number, number];

function keyOf(s: Since): Key {
  return s.triggeredBy ? [s.triggeredBy, 0, s.seq] : [s.seq, 1, 0];
}

function cmp(a: Key, b: Key): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

function posOf(k: Key): Since {
  return k[1] === 0 ? { seq: k[2], triggeredBy: k[0] } : { seq: k[0] };
}

interface Candidate {
  key: Key;
  id: string;
  rev: string;
  deleted: boolean;
  removedFrom?: string[];
  visible: boolean;
  isUser?: boolean;
}

/** One source of rows: the result of one index read, and how far it is complete. */
interface Source {
  rows: Candidate[];
  /** Set when the read hit its limit: nothing after this key is known from this source. */
  completeUpTo?: Key;
  /** The last key examined (rows dropped by filters included). */
  lastExamined?: Key;
}

async function readSource(
  db: Collection, channels: string[] | undefined, from: number, until: number, limit: number | undefined,
  docIds: string[] | undefined, backfillAt?: number,
): Promise<Source> {
  const rows: ChangeRow[] = await db.store.changes({ since: from, until, limit, channels, docIds });
  const out: Source = { rows: [] };
  for (const r of rows) {
    const tagged = backfillAt !== undefined && r.seq < backfillAt;
    const key: Key = tagged ? [backfillAt, 0, r.seq] : [r.seq, 1, 0];
    out.lastExamined = key;
    // A backfill replays what became visible: tombstones and removals are not sent.
    if (tagged && (r.deleted || r.removed)) continue;
    out.rows.push({
      key, id: r.id, rev: r.rev, deleted: r.deleted, visible: !r.removed,
      ...(r.removed ? { removedFrom: [r.removed] } : {}),
    });
  }
  if (limit !== undefined && rows.length >= limit) out.completeUpTo = out.lastExamined;
  return out;
}

/**
 * One page of changes. A page whose rows were all filtered out (backfilled tombstones, active_only)
 * is not returned empty: reading continues from where it got to, because a client stops paging at
 * the first empty page.
 */
export async function changesSince(db: Collection, scope: FeedScope, opts: ChangesOptions): Promise<ChangesPage> {
  let since = opts.since;
  for (;;) {
    const page = await readPage(db, scope, { ...opts, since });
    if (page.entries.length > 0 || cmp(keyOf(page.last), keyOf(since)) <= 0) return page;
    since = page.last;
  }
}

/**
 * `changesSince` for a live feed that a commit has just woken: every caught-up feed of a channel
 * asks the same question at that moment, so they share one read (see shared-reads.ts). The page
 * is shared: read-only. (One-shot reads do not go through here: nothing to share, and on
 * PostgreSQL the state check costs a query.)
 */
export async function sharedChangesSince(db: Collection, scope: FeedScope, opts: ChangesOptions): Promise<ChangesPage> {
  const key = `changes:${pageScopeKey(db, scope, opts)}|${optionsKey(opts)}`;
  return db.sharedReads.read(await db.readState(), key, () => changesSince(db, scope, opts));
}

/**
 * What a page read from `opts.since` depends on in a scope, as a key. A caught-up feed usually had
 * all its channels before its position: then no channel is backfilled, so the grant sequences do
 * not shape the page, and neither does the user unless its own `_user/` entry is due. Every user
 * following the same channels then shares one read: with one user per device, 10,000 feeds of 100
 * channels made 10,000 index reads per write instead of 100. Otherwise the whole scope is the key.
 */
function pageScopeKey(db: Collection, scope: FeedScope, opts: ChangesOptions): string {
  // Built once per scope object (scopes are shared by the feeds of one principal and filter).
  const k = db.sharedReads.derived(scope, 'page-key', () => {
    const chans = scope.channels;
    if (chans === 'all') return { channels: 'all', newestGrant: scope.allGrantedAt ?? 0, whole: JSON.stringify(['all', scope.allGrantedAt, scope.user]) };
    return {
      channels: JSON.stringify([...chans.keys()].sort()),
      newestGrant: Math.max(0, ...chans.values()),
      whole: JSON.stringify([[...chans], scope.allGrantedAt, scope.user]),
    };
  });
  const since = opts.since;
  const floor = since.triggeredBy ? since.triggeredBy - 1 : since.seq;
  // The same tests as readPage's: a channel is backfilled when granted after the position.
  const backfill = since.triggeredBy !== undefined || (floor > 0 && k.newestGrant > Math.max(floor, 1));
  const userEntry = scope.user !== undefined && scope.user.seq > floor && !opts.docIds;
  return backfill || userEntry ? `scope:${k.whole}` : `channels:${k.channels}`;
}

/** Everything in the options that shapes a page, as a key: built for every woken feed, so a plain concatenation. */
export function optionsKey(opts: ChangesOptions): string {
  return `${opts.since.triggeredBy ?? ''}:${opts.since.seq}|${opts.limit}|${opts.style}|${!!opts.includeDocs}${opts.attachments ? '+atts' : ''}|${!!opts.activeOnly}|${!!opts.conflicts}|${opts.docIds ? JSON.stringify(opts.docIds) : ''}`;
}

async function readPage(db: Collection, scope: FeedScope, opts: ChangesOptions): Promise<ChangesPage> {
  const until = await db.store.lastSeq();
  const limit = opts.limit && opts.limit > 0 ? opts.limit : undefined;
  const since = opts.since;
  const floor = since.triggeredBy ? since.triggeredBy - 1 : since.seq;
  const reads: Promise<Source>[] = [];
  // Backfill only applies to a reader that already had a position: from 0 everything is new anyway.
  const backfills = (grantedAt: number) => floor > 0 && grantedAt > 1 && grantedAt > floor;
  const backfillFrom = (grantedAt: number) => (since.triggeredBy === grantedAt ? since.seq : 0);
  if (scope.channels === 'all') {
    const g = scope.allGrantedAt ?? 0;
    if (backfills(g)) reads.push(readSource(db, undefined, backfillFrom(g), until, limit, opts.docIds, g));
    else reads.push(readSource(db, undefined, floor, until, limit, opts.docIds));
  } else {
    const current: string[] = [];
    for (const [ch, g] of scope.channels) {
      if (backfills(g)) reads.push(readSource(db, [ch], backfillFrom(g), until, limit, opts.docIds, g));
      else current.push(ch);
    }
    if (current.length) reads.push(readSource(db, current, floor, until, limit, opts.docIds));
  }
  const sources = await Promise.all(reads);
  if (scope.user && scope.user.seq > floor && !opts.docIds) {
    const key: Key = [scope.user.seq, 1, 0];
    sources.push({ rows: [{ key, id: `_user/${scope.user.name}`, rev: '', deleted: false, visible: true, isUser: true }], lastExamined: key });
  }

  // Nothing past the earliest cut-off of a limited read is known to be complete.
  let bound: Key | undefined;
  for (const s of sources) if (s.completeUpTo && (!bound || cmp(s.completeUpTo, bound) < 0)) bound = s.completeUpTo;

  // One entry per document: its latest position; rows of that same position merge their removals.
  const byDoc = new Map<string, Candidate>();
  for (const s of sources) {
    for (const r of s.rows) {
      if (bound && cmp(r.key, bound) > 0) continue;
      const cur = byDoc.get(r.id);
      if (!cur || cmp(r.key, cur.key) > 0) byDoc.set(r.id, { ...r, removedFrom: r.removedFrom ? [...r.removedFrom] : undefined });
      else if (cmp(r.key, cur.key) === 0) {
        if (r.removedFrom) cur.removedFrom = [...(cur.removedFrom ?? []), ...r.removedFrom];
        cur.visible ||= r.visible;
      }
    }
  }
  let candidates = [...byDoc.values()].sort((a, b) => cmp(a.key, b.key));
  let complete = bound === undefined;
  if (limit !== undefined && candidates.length > limit) {
    candidates = candidates.slice(0, limit);
    complete = false;
  }

  let lastKey: Key = keyOf(since);
  if (candidates.length) lastKey = candidates[candidates.length - 1].key;
  else {
    // Everything examined was filtered out: move past it so paging does not stall.
    for (const s of sources) {
      const k = s.lastExamined;
      if (k && (!bound || cmp(k, bound) <= 0) && cmp(k, lastKey) > 0) lastKey = k;
    }
  }
  const kept = opts.activeOnly ? candidates.filter((c) => c.isUser || (!c.deleted && c.visible)) : candidates;
  return { entries: await shapeEntries(db, kept, opts), last: posOf(lastKey), complete };
}

async function shapeEntries(db: Collection, rows: Candidate[], opts: ChangesOptions): Promise<ChangeEntry[]> {
  const docRows = rows.filter((r) => !r.isUser);
  const conflicts = opts.includeDocs && opts.conflicts;
  const docs = opts.style === 'all_docs' || conflicts ? await db.store.getDocs(docRows.map((r) => r.id)) : undefined;
  const bodies = opts.includeDocs
    ? await db.revisionsAt(docRows.filter((r) => r.visible).map((r) => ({ id: r.id, rev: r.rev, seq: posOf(r.key).seq })))
    : undefined;
  const inline = bodies && opts.attachments ? await inlineAttachments(db, bodies) : undefined;
  return rows.map((r) => {
    const e: ChangeEntry = { pos: posOf(r.key), id: r.id, changes: r.isUser ? [] : [{ rev: r.rev }] };
    if (r.isUser) return e;
    if (r.deleted) e.deleted = true;
    if (r.removedFrom) e.removed = [...new Set(r.removedFrom)];
    if (!r.visible) e.unseen = true;
    const doc = docs?.get(r.id);
    const leafOrder = doc && doc.rev === r.rev && r.visible ? sortedLeaves(decodeRevTree(doc.tree)) : undefined;
    if (leafOrder && opts.style === 'all_docs') e.changes = leafOrder.map((l) => ({ rev: l.id }));
    if (opts.includeDocs) {
      if (!r.visible) e.doc = renderDoc({ id: r.id, rev: r.rev, deleted: false, body: '{}', attachments: null, removed: true });
      else {
        const b = bodies!.get(bodyKey(r.id, r.rev));
        const view: DocView = b
          ? { id: r.id, rev: r.rev, deleted: b.deleted, body: b.body, attachments: b.attachments }
          : { id: r.id, rev: r.rev, deleted: r.deleted, body: '{}', attachments: null };
        const others = conflicts && leafOrder ? leafOrder.slice(1).filter((l) => !l.deleted).map((l) => l.id) : [];
        if (others.length) view.conflicts = others;
        e.doc = renderDoc(view, { inline: b ? inline?.get(bodyKey(r.id, r.rev)) : undefined });
      }
    }
    return e;
  });
}

/** Every attachment's bytes of these revisions, by body key then name (include_docs with attachments=true). */
async function inlineAttachments(db: Collection, bodies: Map<string, StoredRevision>): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  for (const [key, b] of bodies) if (b.attachments) out.set(key, await db.attachmentsToInline(b.attachments, undefined));
  return out;
}

/** The entry's `seq` as JSON: a number, or the string `"T:N"` for backfill. */
export function renderSeq(s: Since): string {
  return s.triggeredBy ? `"${s.triggeredBy}:${s.seq}"` : String(s.seq);
}

/** Serializes an entry with Sync Gateway's field order: seq, id, deleted, removed, doc, changes. */
export function renderEntry(e: ChangeEntry): string {
  let s = `{"seq":${renderSeq(e.pos)},"id":${JSON.stringify(e.id)}`;
  if (e.deleted) s += ',"deleted":true';
  if (e.removed) s += `,"removed":${JSON.stringify(e.removed)}`;
  if (e.doc !== undefined) s += `,"doc":${e.doc}`;
  return s + `,"changes":${JSON.stringify(e.changes)}}`;
}

/**
 * What a principal's feed reads, narrowed by the bychannel filter: the one definition the REST feed
 * and BLIP's subChanges both use.
 */
export function feedScope(p: Principal, filter?: string[]): FeedScope {
  if (p.kind === 'admin') return { channels: filter ? new Map(filter.map((c) => [c, 0])) : 'all' };
  const user = { name: p.isGuest ? 'GUEST' : p.name, seq: p.seq };
  const star = p.channels.get(ALL_CHANNELS);
  if (star !== undefined) {
    if (!filter) return { channels: 'all', allGrantedAt: star, user };
    return { channels: new Map(filter.map((c) => [c, Math.min(star, p.channels.get(c) ?? star)])), user };
  }
  const channels = new Map<string, number>();
  for (const [c, g] of p.channels) if (!filter || filter.includes(c)) channels.set(c, g);
  return { channels, user };
}

/** Notifier keys a live feed waits on: its channels and its own principal (and roles); null = any change. */
export function feedWaitKeys(p: Principal, scope: FeedScope): string[] | null {
  if (p.kind === 'admin') return scope.channels === 'all' ? null : [...scope.channels.keys()];
  const keys = [`_user:${p.isGuest ? 'GUEST' : p.name}`, ...[...p.roles.keys()].map((r) => `_role:${r}`)];
  if (scope.channels === 'all') keys.push(ALL_CHANNELS);
  else keys.push(...scope.channels.keys());
  return keys;
}

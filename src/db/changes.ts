/**
 * The one changes path: read the index from `since`, shape entries, and (for live feeds) wait on the
 * notifier. REST feeds of every style and BLIP's subChanges are all built on `changesSince`.
 */
import { HttpError } from '../errors.ts';
import { decodeRevTree, leaves, winningRev } from '../revtree/index.ts';
import type { ChangeRow } from '../storage/store.ts';
import { bodyKey } from '../storage/store.ts';
import type { Database } from './database.ts';
import { renderDoc } from './render.ts';

export interface ChangesOptions {
  since: number;
  limit?: number;
  style?: 'main_only' | 'all_docs';
  includeDocs?: boolean;
  docIds?: string[];
  activeOnly?: boolean;
  /** Only these channels (the bychannel filter); undefined: every document. */
  channels?: string[];
}

export interface ChangeEntry {
  seq: number;
  id: string;
  deleted?: true;
  removed?: string[];
  /** Rendered document JSON text, with include_docs. */
  doc?: string;
  changes: { rev: string }[];
}

export interface ChangesPage {
  entries: ChangeEntry[];
  /** The last sequence examined: where the next page (or live wait) continues from. */
  lastSeq: number;
}

/**
 * Sequence values as clients send them back: `N`, or Sync Gateway's compound `T:N`, `L::N`, `L:T:N`.
 * Returns the sequence a reader may safely resume after.
 */
export function parseSince(value: unknown): number {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
    throw new HttpError(400, 'Invalid sequence');
  }
  if (typeof value !== 'string') throw new HttpError(400, 'Invalid sequence');
  const parts = value.split(':');
  const nums = parts.map((p) => (p === '' ? undefined : /^\d+$/.test(p) ? Number(p) : NaN));
  if (nums.some((n) => Number.isNaN(n)) || parts.length > 3) throw new HttpError(400, 'Invalid sequence');
  if (parts.length === 1) {
    if (nums[0] === undefined) throw new HttpError(400, 'Invalid sequence');
    return nums[0];
  }
  if (parts.length === 2) {
    // T:N is a backfill position for a channel granted at T. Resume the whole feed from before T.
    if (nums[0] === undefined || nums[1] === undefined) throw new HttpError(400, 'Invalid sequence');
    return Math.min(nums[0] - 1, nums[1]);
  }
  // L::N or L:T:N: a change after L may still be pending, so resume from L.
  if (nums[0] === undefined || nums[2] === undefined) throw new HttpError(400, 'Invalid sequence');
  return nums[0];
}

interface MergedRow extends ChangeRow {
  /** Channels the doc left at this sequence (Sync Gateway sends these even if it stays visible). */
  removedFrom?: string[];
  /** Still in at least one of the channels read. */
  visible: boolean;
}

/** One entry per sequence: rows of the same sequence from several channels are merged. */
function mergeBySeq(rows: ChangeRow[]): MergedRow[] {
  const bySeq = new Map<number, MergedRow>();
  const out: MergedRow[] = [];
  for (const r of rows) {
    let cur = bySeq.get(r.seq);
    if (!cur) {
      cur = { seq: r.seq, id: r.id, rev: r.rev, deleted: r.deleted, visible: false };
      bySeq.set(r.seq, cur);
      out.push(cur);
    }
    if (r.removed) (cur.removedFrom ??= []).push(r.removed);
    else cur.visible = true;
  }
  return out;
}

export async function changesSince(db: Database, opts: ChangesOptions): Promise<ChangesPage> {
  const until = await db.store.lastSeq();
  const limit = opts.limit && opts.limit > 0 ? opts.limit : undefined;
  const entries: ChangeEntry[] = [];
  let since = opts.since;
  let lastSeq = opts.since;
  // active_only drops rows after the query, so a limited page may need several reads to fill.
  for (;;) {
    const want = limit ? limit - entries.length : undefined;
    const rows = mergeBySeq(await db.store.changes({ since, until, limit: want, channels: opts.channels, docIds: opts.docIds }));
    if (rows.length === 0) break;
    since = rows[rows.length - 1].seq;
    const page = await shapeEntries(db, rows, opts);
    entries.push(...page);
    lastSeq = since;
    if (!limit || !opts.activeOnly || entries.length >= limit || (want !== undefined && rows.length < want)) break;
  }
  return { entries, lastSeq: Math.max(lastSeq, opts.since) };
}

async function shapeEntries(db: Database, rows: MergedRow[], opts: ChangesOptions): Promise<ChangeEntry[]> {
  // active_only drops tombstones, and removals only when the doc left every channel read.
  const kept = opts.activeOnly ? rows.filter((r) => !r.deleted && r.visible) : rows;
  const needDocs = opts.style === 'all_docs';
  const docs = needDocs ? await db.store.getDocs(kept.map((r) => r.id)) : undefined;
  const bodies = opts.includeDocs
    ? await db.store.getRevisions(kept.filter((r) => r.visible).map((r) => ({ id: r.id, rev: r.rev })))
    : undefined;
  return kept.map((r) => {
    const e: ChangeEntry = { seq: r.seq, id: r.id, changes: [{ rev: r.rev }] };
    if (r.deleted) e.deleted = true;
    if (r.removedFrom) e.removed = r.removedFrom;
    const doc = docs?.get(r.id);
    if (doc && doc.rev === r.rev) {
      const tree = decodeRevTree(doc.tree);
      const win = winningRev(tree)!.id;
      e.changes = [{ rev: win }, ...leaves(tree).filter((l) => l.id !== win).map((l) => ({ rev: l.id }))];
    }
    if (opts.includeDocs) {
      if (!r.visible) e.doc = renderDoc({ id: r.id, rev: r.rev, deleted: false, body: '{}', attachments: null, removed: true });
      else {
        const b = bodies!.get(bodyKey(r.id, r.rev));
        e.doc = b
          ? renderDoc({ id: r.id, rev: r.rev, deleted: b.deleted, body: b.body, attachments: b.attachments })
          : renderDoc({ id: r.id, rev: r.rev, deleted: r.deleted, body: '{}', attachments: null });
      }
    }
    return e;
  });
}

/** Serializes an entry with Sync Gateway's field order: seq, id, deleted, removed, doc, changes. */
export function renderEntry(e: ChangeEntry): string {
  let s = `{"seq":${e.seq},"id":${JSON.stringify(e.id)}`;
  if (e.deleted) s += ',"deleted":true';
  if (e.removed) s += `,"removed":${JSON.stringify(e.removed)}`;
  if (e.doc !== undefined) s += `,"doc":${e.doc}`;
  return s + `,"changes":${JSON.stringify(e.changes)}}`;
}

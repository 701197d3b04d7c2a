/**
 * What an at-least-once webhook (reliable.ts) can deliver without reading the changes feed back:
 * the revisions this node has just committed, as announced by the write path, kept in sequence
 * order. A run of them whose sequences follow the checkpoint with no gap is exactly what the feed
 * would give: every sequence is one document's commit, the feed's entry at that sequence is that
 * commit's winner, and the announcement carries the body the commit wrote.
 *
 * Anything not announced leaves a gap, and `after` stops there, so the caller reads the feed:
 * a sequence taken by a user or role, a resync, another node's commit (PostgreSQL), a revision
 * pruned as it arrived, an edit that left another revision winning (its winner's body is not at
 * hand, so it is not kept), and whatever was dropped because delivery fell more than `max` behind.
 */
import type { DocumentChange } from '../db/database.ts';
import { renderDoc } from '../db/render.ts';
import type { StoredRevision } from '../storage/store.ts';

/** One change to deliver: its sequence, document, winning revision and the document as the feed renders it. */
export interface Item { seq: number; id: string; rev: string; doc: string }

export const TIP_MAX = 5000;

export class AnnouncedTip {
  private entries: { seq: number; id: string; revision: StoredRevision }[] = [];

  constructor(private readonly max = TIP_MAX) {}

  add(changes: DocumentChange[]): void {
    for (const c of changes) {
      if (!c.winnerRevision) continue;
      const e = { seq: c.seq, id: c.id, revision: c.winnerRevision };
      const last = this.entries[this.entries.length - 1];
      if (!last || last.seq < e.seq) { this.entries.push(e); continue; }
      // Commits that finish out of sequence order (PostgreSQL's pool): insert in order.
      let i = this.entries.length;
      while (i > 0 && this.entries[i - 1].seq > e.seq) i--;
      if (this.entries[i - 1]?.seq !== e.seq) this.entries.splice(i, 0, e);
    }
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
  }

  /**
   * The revisions at `since + 1`, `since + 2`, ... up to the first sequence not held (at most
   * `limit`), rendered as the feed renders them with `include_docs`. Forgets what is at or before `since`.
   */
  after(since: number, limit: number): Item[] {
    let behind = 0;
    while (behind < this.entries.length && this.entries[behind].seq <= since) behind++;
    if (behind) this.entries.splice(0, behind);
    const items: Item[] = [];
    for (const { seq, id, revision: r } of this.entries) {
      if (items.length === limit || seq !== since + 1 + items.length) break;
      items.push({ seq, id, rev: r.rev, doc: renderDoc({ id, rev: r.rev, deleted: r.deleted, body: r.body, attachments: r.attachments }) });
    }
    return items;
  }

  clear(): void { this.entries = []; }

  get size(): number { return this.entries.length; }
}

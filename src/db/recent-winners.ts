/**
 * The winning revisions of a collection's latest commits, by the sequence each commit got: a
 * narrow form of Sync Gateway's revision cache. Whatever follows the write path asks for the body
 * a commit wrote moments after it was written: an at-least-once webhook and a live `_changes` with
 * `include_docs`, a BLIP pull's `rev` messages, an ISGR push. A commit already holds that body, so
 * it keeps it here instead of each reader loading it back from storage.
 *
 * Keyed by sequence and checked against the document id and revision, an entry is never stale and
 * needs no invalidation: a later commit of the document (an edit, a resync, a purge and re-create)
 * has a later sequence, and a reader always asks for the state at the sequence it read from storage.
 * Another node's commits (PostgreSQL) are simply not here: those reads go to storage as before.
 * One per database (sequences are database-wide, so its collections share it), bounded by entries
 * and by body bytes; the oldest go first.
 */
import type { StoredRevision } from '../storage/store.ts';

export const RECENT_WINNERS_ENTRIES = 5000;
export const RECENT_WINNERS_BYTES = 16 * 1024 * 1024;

export class RecentWinners {
  private readonly bySeq = new Map<number, { id: string; revision: StoredRevision; size: number }>();
  private bytes = 0;

  constructor(private readonly maxEntries = RECENT_WINNERS_ENTRIES, private readonly maxBytes = RECENT_WINNERS_BYTES) {}

  /** The body a commit at `seq` made the winner of document `id`. The object is shared: never mutate it. */
  put(seq: number, id: string, revision: StoredRevision): void {
    const size = revision.body.length + id.length + 64;
    if (size > this.maxBytes) return;
    this.bySeq.set(seq, { id, revision, size });
    this.bytes += size;
    for (const [oldest, e] of this.bySeq) {
      if (this.bySeq.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.bySeq.delete(oldest);
      this.bytes -= e.size;
    }
  }

  /** The revision `rev` of `id` as committed at `seq`, if that commit is still held. */
  get(seq: number, id: string, rev: string): StoredRevision | undefined {
    const e = this.bySeq.get(seq);
    return e && e.id === id && e.revision.rev === rev ? e.revision : undefined;
  }

  get size(): number { return this.bySeq.size; }
}

/**
 * Delta sync's database side (spec collections-delta.md §2.2, §2.6): finding a delta source's body
 * (a leaf, or an old revision still retained), the delta between two revisions as a BLIP peer sees
 * them (attachment metadata included, as Sync Gateway injects `_attachments` into both bodies), and
 * a small cache of computed deltas shared by every connection of the database (one edit pulled by
 * many clients is diffed once; Sync Gateway keeps them in its revision cache).
 */
import { applyDelta, createDelta, DeltaError } from '../delta/index.ts';
import { HttpError } from '../errors.ts';
import { isJsonObject } from '../json/index.ts';
import { canSee, type Principal } from '../auth/principal.ts';
import { decodeRevTree } from '../revtree/index.ts';
import type { AttachmentMap, CollectionStore, StoredRevision } from '../storage/store.ts';
import { renderAttachments } from './render.ts';

/** The JSON a `rev` message carries for a revision: the stored body with `_attachments` stubs first. */
export function blipBody(body: string, attachments: AttachmentMap | null): string {
  if (!attachments || Object.keys(attachments).length === 0) return body;
  const atts = `"_attachments":${renderAttachments(attachments, { digests: 'sha1' })}`;
  return body.length > 2 ? `{${atts},${body.slice(1)}` : `{${atts}}`;
}

/** A body that can be a delta source: a leaf's, else an old revision's still retained. */
export async function sourceRevision(store: CollectionStore, id: string, rev: string, nowSecs: number): Promise<StoredRevision | undefined> {
  return (await store.getRevision(id, rev)) ?? (await store.getOldRevision(id, rev, nowSecs));
}

export type DeltaOutcome =
  | { ok: true; delta: string; cached: boolean }
  | { ok: false; reason: 'missing' | 'tombstone' | 'larger' };

/** Bounded LRU of deltas by (doc, source rev, target rev): bodies of a revision never change. */
export class DeltaCache {
  private readonly entries = new Map<string, string>();
  private bytes = 0;

  constructor(private readonly maxEntries = 5000, private readonly maxBytes = 32 * 1024 * 1024) {}

  private static key(id: string, from: string, to: string): string {
    return `${id}\u0000${from}\u0000${to}`;
  }

  get(id: string, from: string, to: string): string | undefined {
    const k = DeltaCache.key(id, from, to);
    const v = this.entries.get(k);
    if (v !== undefined) { this.entries.delete(k); this.entries.set(k, v); }
    return v;
  }

  set(id: string, from: string, to: string, delta: string): void {
    const k = DeltaCache.key(id, from, to);
    if (delta.length > this.maxBytes / 4) return;
    const old = this.entries.get(k);
    if (old !== undefined) { this.entries.delete(k); this.bytes -= old.length; }
    this.entries.set(k, delta);
    this.bytes += delta.length;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const first = this.entries.keys().next().value as string;
      this.bytes -= this.entries.get(first)!.length;
      this.entries.delete(first);
    }
  }
}

/**
 * The delta from revision `from` to the target (whose `rev` body is `targetBody`), or why not:
 * the source body is gone or a tombstone (Sync Gateway's fall-backs to a full body), or the delta
 * would not be smaller than the full body (then the full body costs less on the wire).
 */
export async function revisionDelta(
  store: CollectionStore, cache: DeltaCache, id: string, from: string, to: string, targetBody: string, nowSecs: number,
): Promise<DeltaOutcome> {
  const hit = cache.get(id, from, to);
  if (hit !== undefined) return hit.length < targetBody.length ? { ok: true, delta: hit, cached: true } : { ok: false, reason: 'larger' };
  const src = await sourceRevision(store, id, from, nowSecs);
  if (!src) return { ok: false, reason: 'missing' };
  if (src.deleted) return { ok: false, reason: 'tombstone' };
  const delta = JSON.stringify(createDelta(JSON.parse(blipBody(src.body, src.attachments)), JSON.parse(targetBody)));
  cache.set(id, from, to, delta);
  return delta.length < targetBody.length ? { ok: true, delta, cached: false } : { ok: false, reason: 'larger' };
}

/**
 * Push side (spec §2.3, Sync Gateway's `processRev`): the body a pushed delta describes, from the
 * source revision as this principal may read it. Every refusal is HTTP 422 (the client then resends
 * the full body) and happens before anything is written.
 */
export async function applyPushedDelta(
  store: CollectionStore, principal: Principal, id: string, deltaSrc: string, delta: unknown, nowSecs: number,
): Promise<Record<string, unknown>> {
  const doc = await store.getDoc(id);
  const src = doc && decodeRevTree(doc.tree).has(deltaSrc) ? await sourceRevision(store, id, deltaSrc, nowSecs) : undefined;
  const channels = src?.channels ?? (doc && deltaSrc === doc.rev ? doc.channels : []);
  if (!src || !canSee(principal, channels)) throw new HttpError(422, `Can't fetch doc ${id} for deltaSrc=${deltaSrc}`);
  if (src.deleted) throw new HttpError(422, `Can't use delta. Found tombstone for doc ${id} deltaSrc=${deltaSrc}`);
  let out: unknown;
  try {
    out = applyDelta(JSON.parse(blipBody(src.body, src.attachments)), delta);
  } catch (err) {
    if (err instanceof DeltaError) throw new HttpError(422, `Error patching deltaSrc with delta: ${err.message}`);
    throw err;
  }
  if (!isJsonObject(out)) throw new HttpError(422, 'Error patching deltaSrc with delta: the result is not a JSON object');
  return out;
}

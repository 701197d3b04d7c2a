/**
 * A client pushing: `proposeChanges` / `changes` say which revisions the server wants, then each
 * `rev` is written through `Database.bulkWrite` with `new_edits:false` — the same path as REST's
 * `_bulk_docs` — so the sync function, access checks, conflicts and attachments behave identically.
 */
import { HttpError } from '../../../errors.ts';
import type { WriteRequest, WriteResult } from '../../../db/database.ts';
import type { Collection } from '../../../db/collection.ts';
import { isJsonObject } from '../../../json/index.ts';
import { parseRevId } from '../../../revid.ts';
import { decodeRevTree, genOf } from '../../../revtree/index.ts';
import { toRevisions } from '../../../db/render.ts';
import { applyPushedDelta } from '../../../db/deltas.ts';
import type { BlipRequest } from '../connection.ts';
import { fetchFromClient, proveWithClient } from './attachments.ts';
import { namesAttachment } from '../../../db/attachments.ts';
import type { BlipCollection } from './collections.ts';
import { boolProp, requireProp, type SyncContext } from './context.ts';

/** Drops trailing "nothing to say" entries, as the protocol allows (`[]` = all zero). */
function trimTrailing<T>(items: T[], isEmpty: (v: T) => boolean): T[] {
  let n = items.length;
  while (n > 0 && isEmpty(items[n - 1])) n--;
  return items.slice(0, n);
}

function bodyArray(req: BlipRequest): unknown[] | null {
  if (req.body.length === 0) return null;
  const list = req.json<unknown>();
  if (list === null) return null;
  if (!Array.isArray(list)) throw new HttpError(400, 'Body must be a JSON array');
  return list;
}

/** `proposeChanges`: per entry 0 (send it), 304 (have it) or 409 (conflict), trailing zeros omitted. */
export async function proposeChanges(ctx: SyncContext, bc: BlipCollection, req: BlipRequest): Promise<void> {
  const list = bodyArray(req);
  if (!list || list.length === 0) {
    // "Caught up" from a pushing client: sent noreply, nothing to answer.
    if (!req.noReply) req.respond(deltasProp(ctx));
    return;
  }
  const entries = list.map((e) => {
    if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'string') throw new HttpError(400, 'Invalid proposeChanges entry');
    return { id: e[0] as string, rev: e[1] as string, serverRev: typeof e[2] === 'string' && e[2] !== '' ? e[2] as string : undefined };
  });
  const includeRev = boolProp(req.properties.conflictIncludesRev);
  const docs = await bc.coll.store.getDocs([...new Set(entries.map((e) => e.id))]);
  const statuses = entries.map(({ id, rev, serverRev }): number | { status: number; rev: string } => {
    const doc = docs.get(id);
    if (!doc) return 0;
    if (doc.rev === rev || decodeRevTree(doc.tree).has(rev)) return 304;
    if (serverRev === doc.rev) return 0;
    if (serverRev === undefined && doc.deleted) return 0;
    return includeRev ? { status: 409, rev: doc.rev } : 409;
  });
  req.respond(deltasProp(ctx), trimTrailing(statuses, (s) => s === 0));
}

/** Sync Gateway announces `deltas: "true"` on every changes/proposeChanges response when it can use them. */
function deltasProp(ctx: SyncContext): Record<string, string> {
  return ctx.deltas.serverCan ? { deltas: 'true' } : {};
}

/**
 * `changes` from a pushing client (the pre-proposeChanges protocol): for each entry the revisions
 * the server has that could be ancestors, or 0 when it already has the revision. Refused with 409
 * in conflict-free mode, which makes Couchbase Lite switch to proposeChanges.
 */
export async function clientChanges(ctx: SyncContext, bc: BlipCollection, req: BlipRequest): Promise<void> {
  const list = bodyArray(req);
  if (!list || list.length === 0) {
    if (!req.noReply) req.respond(deltasProp(ctx));
    return;
  }
  if (!bc.coll.allowConflicts) throw new HttpError(409, 'Use proposeChanges');
  const entries = list.map((e) => {
    if (!Array.isArray(e) || typeof e[1] !== 'string' || typeof e[2] !== 'string') throw new HttpError(400, 'Invalid changes entry');
    return { id: e[1] as string, rev: e[2] as string };
  });
  const request: Record<string, string[]> = {};
  for (const e of entries) (request[e.id] ??= []).push(e.rev);
  const diff = await bc.coll.revsDiff(request, bc.principal);
  const answers = entries.map((e): number | string[] => {
    const d = diff[e.id];
    return d && d.missing.includes(e.rev) ? (d.possible_ancestors ?? []) : 0;
  });
  req.respond({ maxHistory: String(bc.coll.revsLimit), ...deltasProp(ctx) }, trimTrailing(answers, (a) => a === 0));
}

/** Client → server `norev`: the client could not send a revision it announced. Nothing to store. */
export function clientNorev(ctx: SyncContext, req: BlipRequest): void {
  ctx.log('debug', `client sent norev for ${req.properties.id} ${req.properties.rev}: ${req.properties.error ?? ''} ${req.properties.reason ?? ''}`);
  // Clients send it noreply; one that asks for a reply gets the empty one go-blip sends by default
  // (without it the requester waits forever).
  if (!req.noReply) req.respond();
}

/** The revision and its ancestors from `rev` and `history`, newest first, stopping at a gap in generations. */
function revHistory(rev: string, history: string | undefined): string[] {
  const hist = [rev];
  parseRevId(rev);
  for (const h of (history ?? '').split(',')) {
    if (h === '') continue;
    parseRevId(h);
    if (genOf(h) !== genOf(hist[hist.length - 1]) - 1) break;
    hist.push(h);
  }
  return hist;
}

/**
 * Writes pushed revisions of one collection through its `bulkWrite`. Revisions that arrive together
 * (Couchbase Lite keeps several in flight) are committed in one storage transaction; each still
 * succeeds or fails alone.
 */
export class RevWriter {
  private queue: { req: WriteRequest; resolve: (r: WriteResult) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly coll: Collection) {}

  write(req: WriteRequest): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      if (!this.running) { this.running = true; setImmediate(() => void this.drain()); }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const results = await this.coll.bulkWrite(batch.map((b) => b.req));
        results.forEach((r, i) => (r instanceof HttpError ? batch[i].reject(r) : batch[i].resolve(r)));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.running = false;
  }
}

interface StubEntry { name: string; digest: string; length?: number }

/**
 * Resolves the attachment stubs of a pushed revision: digests the parent revision already has need
 * nothing; digests stored elsewhere must be proven by the client; unknown ones are fetched from it.
 * Fetched bytes ride along as `follows` data of the same write (nothing is stored if it fails).
 */
async function resolveStubs(ctx: SyncContext, bc: BlipCollection, id: string, hist: string[], atts: Record<string, Record<string, unknown>>): Promise<Map<string, Buffer>> {
  const coll = bc.coll;
  const stubs: StubEntry[] = [];
  for (const [name, e] of Object.entries(atts)) {
    if (!e || typeof e !== 'object' || typeof e.data === 'string' || typeof e.digest !== 'string') continue;
    stubs.push({ name, digest: e.digest, length: typeof e.length === 'number' ? e.length : undefined });
  }
  const follows = new Map<string, Buffer>();
  if (stubs.length === 0) return follows;
  // Couchbase Lite names sha1 digests; a stub naming the md5 one (a CouchDB-protocol peer) works too.
  const known = new Set<string>();
  const doc = await coll.getDocMeta(id);
  if (doc) {
    const tree = decodeRevTree(doc.tree);
    const parent = hist.slice(1).find((h) => tree.has(h));
    const parentRev = parent ? await coll.store.getRevision(id, parent) : undefined;
    for (const m of Object.values(parentRev?.attachments ?? {})) {
      known.add(m.digest);
      if (m.md5) known.add(m.md5);
    }
  }
  const unknown = stubs.filter((s) => !known.has(s.digest));
  const stored = unknown.length ? await coll.store.findAttachments(unknown.map((s) => s.digest)) : [];
  const fetched = new Map<string, Buffer>();
  for (const s of unknown) {
    let data = fetched.get(s.digest);
    const have = stored.filter((k) => namesAttachment(s.digest, k));
    // Two stored attachments behind one md5 (a made collision): fetch rather than prove either.
    if (!data && have.length === 1) {
      const bytes = await coll.getAttachmentData(have[0].digest);
      if (bytes && await proveWithClient(ctx, bc, s.digest, bytes)) continue;
    }
    data ??= await fetchFromClient(ctx, bc, id, s.digest, s.length);
    fetched.set(s.digest, data);
    const entry = atts[s.name];
    delete entry.stub;
    entry.follows = true;
    follows.set(s.name, data);
  }
  return follows;
}

/** Client → server `rev`: one pushed revision, stored before the reply. */
export async function clientRev(ctx: SyncContext, bc: BlipCollection, req: BlipRequest): Promise<void> {
  const id = requireProp(req, 'id');
  const rev = requireProp(req, 'rev');
  if (id.startsWith('_')) throw new HttpError(400, 'Invalid doc ID');
  const hist = revHistory(rev, req.properties.history);
  let parsed = req.body.length ? req.json<unknown>() : {};
  const deltaSrc = req.properties.deltaSrc;
  if (deltaSrc !== undefined) {
    // Spec §2.3: 400 when deltas are off; 422 when the source is missing, unreadable, a tombstone,
    // or the delta does not apply. The patched body then goes the way of any full body.
    if (!ctx.deltas.serverCan) throw new HttpError(400, 'Deltas are disabled for this peer');
    const deltaBytes = req.body.length;
    parsed = await applyPushedDelta(bc.coll.store, bc.principal, id, deltaSrc, parsed, Math.floor(Date.now() / 1000));
    ctx.db.stats.deltaSync?.('push_applied', Math.max(0, Buffer.byteLength(JSON.stringify(parsed)) - deltaBytes));
  }
  if (!isJsonObject(parsed)) throw new HttpError(400, 'Document body must be a JSON object');
  const body: Record<string, unknown> = { ...parsed };
  for (const k of ['_id', '_rev', '_revisions', '_deleted']) delete body[k];
  if (body._removed !== undefined) throw new HttpError(400, 'A removal cannot be pushed');
  let follows: Map<string, Buffer> | undefined;
  const atts = body._attachments;
  if (atts && typeof atts === 'object' && !Array.isArray(atts)) {
    const copy: Record<string, Record<string, unknown>> = {};
    for (const [k, v] of Object.entries(atts as Record<string, unknown>)) copy[k] = v && typeof v === 'object' ? { ...(v as Record<string, unknown>) } : (v as Record<string, unknown>);
    body._attachments = copy;
    follows = await resolveStubs(ctx, bc, id, hist, copy);
  }
  body._revisions = toRevisions(hist);
  if (boolProp(req.properties.deleted)) body._deleted = true;
  await bc.writer.write({
    id, body, newEdits: false, principal: bc.principal, follows,
    noConflicts: boolProp(req.properties.noconflicts),
  });
  if (!req.noReply) req.respond();
}

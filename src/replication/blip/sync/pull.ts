/**
 * A client pulling: `subChanges` starts a feed read through the one changes path (`changesSince`
 * over the user's `feedScope`, the notifier for continuous feeds), sent as `changes` batches; the
 * client answers each batch with the revisions it wants, which go out as `rev` (or `norev`).
 */
import { HttpError } from '../../../errors.ts';
import {
  changesSince, type ChangeEntry, type ChangesOptions, feedScope, feedWaitKeys, type FeedScope, parseSince,
  renderSeq, type Since,
} from '../../../db/changes.ts';
import type { DocView } from '../../../db/render.ts';
import { blipBody, revisionDelta } from '../../../db/deltas.ts';
import { canSee } from '../../../auth/principal.ts';
import type { Collection } from '../../../db/collection.ts';
import type { BlipProperties, BlipRequest } from '../connection.ts';
import type { BlipCollection } from './collections.ts';
import { boolProp, intProp, type SyncContext } from './context.ts';

/** Sync Gateway's default and minimum `batch`. */
const DEFAULT_BATCH = 200;
const MIN_BATCH = 10;
/** Un-answered `changes` batches allowed in flight (Sync Gateway allows 2). */
const MAX_BATCHES_IN_FLIGHT = 2;

/** CBMobile_3 `changes` flags. */
export const FLAG_DELETED = 1;
export const FLAG_REVOKED = 2;
export const FLAG_REMOVED = 4;

export interface SubChangesOptions {
  since: Since;
  continuous: boolean;
  batch: number;
  activeOnly: boolean;
  channels?: string[];
  docIds?: string[];
  revocations: boolean;
  sendReplacementRevs: boolean;
}

/** Reads subChanges' properties and body; errors are HTTP/400 as in Sync Gateway. */
export function parseSubChanges(req: BlipRequest): SubChangesOptions {
  const p = req.properties;
  if (p.versioning !== undefined && p.versioning !== 'rev-trees') throw new HttpError(400, `Unsupported versioning "${p.versioning}"`);
  let since: Since = { seq: 0 };
  if (p.since !== undefined && p.since !== '') {
    let v: unknown = p.since;
    try { v = JSON.parse(p.since); } catch { /* a bare sequence string */ }
    since = parseSince(v);
  }
  if (boolProp(p.future)) since = { seq: Number.MAX_SAFE_INTEGER }; // clamped to the current sequence below
  let channels: string[] | undefined;
  if (p.filter !== undefined && p.filter !== '') {
    if (p.filter !== 'sync_gateway/bychannel') throw new HttpError(400, 'Unknown filter; try sync_gateway/bychannel');
    channels = (p.channels ?? '').split(',').filter((c) => c !== '');
    if (channels.length === 0) throw new HttpError(400, "Missing 'channels' filter parameter");
  }
  const continuous = boolProp(p.continuous);
  let docIds: string[] | undefined;
  if (req.body.length > 0) {
    const body = req.json<{ docIDs?: unknown } | null>();
    if (body && body.docIDs !== undefined) {
      if (!Array.isArray(body.docIDs) || !body.docIDs.every((d) => typeof d === 'string')) throw new HttpError(400, 'docIDs must be an array of strings');
      if (continuous) throw new HttpError(400, 'docIDs filter is not supported with continuous changes');
      docIds = body.docIDs as string[];
    }
  }
  return {
    since, continuous, channels, docIds,
    batch: Math.max(MIN_BATCH, intProp(p.batch, DEFAULT_BATCH)),
    activeOnly: boolProp(p.activeOnly),
    revocations: boolProp(p.revocations),
    sendReplacementRevs: boolProp(p.sendReplacementRevs),
  };
}

/** One `changes` row: `[seq, docID, revID, deleted?]`. */
type Row = [number | string, string, string, (number | boolean)?];

/** Sequence as the JSON value `changes` rows and the `sequence` property carry. */
function seqValue(s: Since): number | string {
  return s.triggeredBy ? `${s.triggeredBy}:${s.seq}` : s.seq;
}

interface Wanted { id: string; rev: string; seq: Since; known: string[] }

/** Counts batches awaiting their reply; `acquire` waits for a free slot. */
class Slots {
  private used = 0;
  private waiters: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async acquire(): Promise<void> {
    while (this.used >= this.max) await new Promise<void>((r) => this.waiters.push(r));
    this.used++;
  }
  release(): void {
    this.used--;
    this.waiters.shift()?.();
  }
}

/**
 * The server side of one subChanges, for one collection: runs until caught up (one-shot), until
 * `unsubChanges`, or until the connection ends. Every message it sends carries the collection's tag.
 */
export class ChangesFeed {
  private scope: FeedScope;
  private readonly batches = new Slots(MAX_BATCHES_IN_FLIGHT);
  private readonly revsInFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly ctx: SyncContext, private readonly opts: SubChangesOptions, private readonly bc: BlipCollection) {
    this.scope = feedScope(bc.principal, opts.channels);
  }

  stop(): void { this.stopped = true; }

  private get live(): boolean { return !this.stopped && !this.ctx.signal.aborted && !this.ctx.conn.closed && !this.ctx.db.isClosed; }

  async run(): Promise<void> {
    const { ctx, opts, bc } = this;
    // Sequences are database-wide: a collection's feed positions are the database's sequences.
    const lastSeq = await ctx.db.store.lastSeq();
    let since = opts.since.seq > lastSeq && !opts.since.triggeredBy ? { seq: lastSeq } : opts.since;
    let caughtUp = false;
    while (this.live) {
      const changesOpts: ChangesOptions = { since, limit: opts.batch, activeOnly: opts.activeOnly, docIds: opts.docIds };
      const seen = bc.coll.notifier.version; // a commit notified during the read wakes the wait below at once
      const page = await changesSince(bc.coll, this.scope, changesOpts);
      since = page.last;
      const rows = page.entries.map((e) => this.rowOf(e)).filter((r): r is Row => r !== undefined);
      if (rows.length > 0) await this.sendBatch(rows, page.entries);
      if (page.entries.length > 0 && !page.complete) continue;
      if (!caughtUp) {
        caughtUp = true;
        // An empty batch, noreply, means "caught up" (Sync Gateway sends null; Couchbase Lite takes both).
        await Promise.all(this.revsInFlight);
        if (!this.live) break;
        await ctx.conn.sendRequest({ Profile: 'changes', ...bc.tag }, [], { noReply: true });
      }
      if (!opts.continuous) break;
      const changed = await bc.coll.notifier.wait(feedWaitKeys(bc.principal, this.scope), 0, ctx.signal, seen);
      if (!changed || !this.live) break;
      const before = this.scope;
      if (!(await ctx.refreshPrincipal())) break;
      this.scope = feedScope(bc.principal, opts.channels);
      if (opts.revocations && ctx.protocol >= 3) await this.sendRevocations(before);
    }
  }

  /** The `changes` row for an entry; undefined for entries the protocol has no row for (the user doc). */
  private rowOf(e: ChangeEntry): Row | undefined {
    if (e.id.startsWith('_user/') || e.changes.length === 0) return undefined;
    const row: Row = [seqValue(e.pos), e.id, e.changes[0].rev];
    if (this.ctx.protocol >= 3) {
      let flags = e.deleted ? FLAG_DELETED : 0;
      // Removal from every channel the user sees is a flag only when the client asked for revocations;
      // otherwise the client asks for the revision and gets `{"_removed":true}`.
      if (e.unseen && this.opts.revocations) flags |= FLAG_REMOVED;
      if (flags) row.push(flags);
    } else if (e.deleted) row.push(true);
    return row;
  }

  /** Sends one batch and, once the client answers, the revisions it asked for (in the background). */
  private async sendBatch(rows: Row[], entries: ChangeEntry[]): Promise<void> {
    await this.batches.acquire();
    if (!this.live) { this.batches.release(); return; }
    const bySeq = new Map(entries.map((e) => [JSON.stringify(seqValue(e.pos)) + e.id, e]));
    const reply = this.ctx.conn.sendRequest({ Profile: 'changes', ...this.bc.tag }, rows, { compressed: true });
    // The slot frees when the reply arrives (or the connection dies), not when its revs are sent.
    void reply.then(() => this.batches.release(), () => this.batches.release());
    const work = reply.then(async (res) => {
      if (!res || res.isError) {
        if (res?.isError) this.ctx.log('warn', `client refused a changes batch: ${res.errorDomain}/${res.errorCode}`);
        return;
      }
      this.ctx.deltas.noteChangesResponse(res.properties);
      const answer = res.body.length ? res.json<unknown>() : [];
      if (!Array.isArray(answer)) throw new HttpError(400, 'changes reply must be an array');
      const maxHistory = intProp(res.properties.maxHistory, 0) || undefined;
      const wanted: Wanted[] = [];
      answer.forEach((a, i) => {
        if (!Array.isArray(a) || i >= rows.length) return;
        const [seq, id, rev] = rows[i];
        const e = bySeq.get(JSON.stringify(seq) + id);
        if (!e) return;
        wanted.push({ id, rev, seq: e.pos, known: a.filter((k): k is string => typeof k === 'string') });
      });
      if (wanted.length) await this.sendRevs(wanted, maxHistory);
    }).catch((err) => {
      if (this.live) this.ctx.log('warn', `sending revisions failed: ${(err as Error).message}`);
    });
    this.track(work);
  }

  private track(p: Promise<void>): void {
    this.revsInFlight.add(p);
    void p.finally(() => this.revsInFlight.delete(p));
  }

  /** Revisions for one answered batch: bodies read in one storage round trip, then one `rev` each. */
  private async sendRevs(wanted: Wanted[], maxHistory: number | undefined): Promise<void> {
    const { ctx, bc } = this;
    const views = await bc.coll.getMany(wanted.map((w) => ({
      id: w.id, rev: w.rev, opts: { revs: true, revsLimit: maxHistory, revsFrom: w.known },
    })), bc.principal);
    const replies: Promise<unknown>[] = [];
    const deltas = ctx.deltas.pullDeltas;
    for (let i = 0; i < wanted.length && this.live; i++) {
      const w = wanted[i];
      let view = views[i];
      const props: BlipProperties = { Profile: 'rev', id: w.id, rev: w.rev, sequence: renderSeq(w.seq), ...bc.tag };
      if (view instanceof HttpError && this.opts.sendReplacementRevs) {
        // The revision is gone (superseded): send the current one in its place, same sequence.
        const current = await bc.coll.getMany([{ id: w.id, opts: { revs: true, revsLimit: maxHistory, revsFrom: w.known } }], bc.principal);
        if (!(current[0] instanceof HttpError)) {
          view = current[0];
          props.rev = view.rev;
          props.replacedRev = w.rev;
        }
      }
      if (view instanceof HttpError) {
        await ctx.conn.sendRequest({
          Profile: 'norev', id: w.id, rev: w.rev, sequence: renderSeq(w.seq), error: String(view.status), reason: view.reason, ...bc.tag,
        }, undefined, { noReply: true });
        continue;
      }
      // Delta from the first ancestor the client listed (it lists only revisions whose bodies it
      // still has, current first). Redacted and deleted targets always go whole: a tombstone's body
      // is `{}` anyway, and Sync Gateway's `{}`-delta for it would leave the old body on a client
      // that applies it literally (spec §2.2, "Tombstone target quirk").
      const src = deltas && !view.removed && !view.deleted ? w.known[0] : undefined;
      const { reply } = await this.sendRev(view, props, src);
      if (reply) replies.push(reply);
    }
    await Promise.all(replies);
  }

  /**
   * One `rev`, as a delta from `deltaSrc` when one can be made (spec §2.2), else the full body. A
   * delta, or a revision with attachments, expects a reply: a client that cannot apply the delta
   * answers 422 (or 404) and gets the full body at once; attachment digests stay fetchable until
   * the last reply.
   */
  private async sendRev(view: DocView, props: BlipProperties, deltaSrc: string | undefined): Promise<{ reply?: Promise<void> }> {
    const { ctx, bc } = this;
    const ids = view.revisions?.ids ?? [];
    const start = view.revisions?.start ?? 0;
    const history = ids.slice(1).map((d, i) => `${start - 1 - i}-${d}`);
    if (history.length) props.history = history.join(',');
    if (view.deleted) props.deleted = '1';
    const full = view.removed ? '{"_removed":true}' : blipBody(view.body, view.attachments);
    let delta: string | undefined;
    if (deltaSrc !== undefined) {
      ctx.db.stats.deltaSync?.('requested');
      try {
        const d = await revisionDelta(bc.coll.store, bc.coll.deltaCache, view.id, deltaSrc, view.rev, full, Math.floor(Date.now() / 1000));
        if (d.ok) {
          delta = d.delta;
          ctx.db.stats.deltaSync?.(d.cached ? 'cache_hit' : 'cache_miss');
        } else {
          ctx.log('debug', `delta ${view.id} ${deltaSrc}->${view.rev} not sent: ${d.reason}; sending the full body`);
        }
      } catch (err) {
        ctx.log('warn', `delta ${view.id} ${deltaSrc}->${view.rev} failed (${(err as Error).message}); sending the full body`);
      }
    }
    const digests = !view.removed && view.attachments ? Object.values(view.attachments).map((a) => a.digest) : [];
    if (delta === undefined && digests.length === 0) {
      void ctx.conn.sendRequest(props, full, { noReply: true, compressed: full.length > 256 }).catch(() => {});
      return {};
    }
    const release = digests.length ? bc.attachments.allow(view.id, digests) : () => {};
    const sendFull = () => ctx.conn.sendRequest(props, full, { compressed: full.length > 256 });
    const first = delta === undefined
      ? sendFull()
      : ctx.conn.sendRequest({ ...props, deltaSrc: deltaSrc! }, delta, { compressed: delta.length > 256 });
    if (delta !== undefined) ctx.db.stats.deltaSync?.('sent', Buffer.byteLength(full) - Buffer.byteLength(delta));
    const reply = first
      .then(async (res) => {
        if (delta !== undefined && res?.isError && (res.errorCode === 422 || res.errorCode === 404)) {
          // The client lost the source body (or could not apply the delta): the whole revision, now.
          ctx.log('info', `client could not apply delta ${view.id} ${deltaSrc}->${view.rev} (${res.errorDomain}/${res.errorCode}); resending the full body`);
          res = await sendFull();
        }
        if (res?.isError) ctx.log('info', `client refused rev ${view.id} ${view.rev}: ${res.errorDomain}/${res.errorCode}`);
      })
      .finally(release);
    return { reply };
  }

  /**
   * CBMobile_3 revocations: when the user lost channels during a live feed, each document it can no
   * longer see through any channel is announced with the revoked flag (the client purges it).
   */
  private async sendRevocations(before: FeedScope): Promise<void> {
    const { bc } = this;
    if (before.channels === 'all' || this.scope.channels === 'all') return;
    const now = this.scope.channels;
    const lost = [...before.channels.keys()].filter((c) => !now.has(c));
    if (lost.length === 0) return;
    const lostScope: FeedScope = { channels: new Map(lost.map((c) => [c, 0])) };
    const principal = bc.principal;
    const userSeq = principal.kind === 'user' ? principal.seq : 0;
    let since: Since = { seq: 0 };
    for (;;) {
      const page = await changesSince(bc.coll, lostScope, { since, limit: this.opts.batch, activeOnly: true });
      if (page.entries.length === 0) break;
      since = page.last;
      const docs = await bc.coll.store.getDocs(page.entries.map((e) => e.id));
      const rows: Row[] = [];
      for (const e of page.entries) {
        const doc = docs.get(e.id);
        if (!doc || canSee(principal, doc.channels)) continue;
        // Tagged with the revoking sequence, so each row has its own sequence and resuming replays from there.
        rows.push([`${userSeq}:${e.pos.seq}`, e.id, doc.rev, FLAG_REVOKED]);
      }
      // Revoked rows ask for no revision: the reply is only awaited to keep the batch limit.
      if (rows.length) await this.sendBatch(rows, []);
    }
  }
}

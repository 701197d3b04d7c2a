/**
 * One collection's replication in the test replicator (test/helpers/blip-client.ts): its push
 * (proposeChanges or changes, then rev, answering getAttachment and proveAttachment), its pull
 * (subChanges, answering changes, receiving rev/norev, fetching blobs), its checkpoints, deltas as
 * Couchbase Lite does them. Every request it sends carries the collection's tag.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { BlipConnection, BlipProperties, BlipRequest, BlipResponse } from '../../src/replication/blip/connection.ts';
import { applyDelta, createDelta, DeltaError } from '../../src/delta/index.ts';
import { type AttachmentStub, type LocalDb, sha1Digest } from './blip-local-db.ts';

/** What a collection's replicator uses of its connection (BlipClient). */
export interface ReplicatorHost {
  readonly conn: BlipConnection;
  readonly isV3: boolean;
  readonly served: { getAttachment: number; proveAttachment: number };
  call(props: BlipProperties, body?: Buffer | string | object, opts?: { compressed?: boolean; urgent?: boolean }): Promise<BlipResponse>;
}

export interface PushOptions {
  /** `proposeChanges` (Couchbase Lite 3's default) or the older `changes` + revs-diff style. */
  mode?: 'proposeChanges' | 'changes';
  since?: number;
  batch?: number;
  /** With `changes` mode: announce every leaf (conflict branches too), not only the current revision. */
  allLeaves?: boolean;
  /** Revisions in flight at once (Couchbase Lite: 10). */
  concurrency?: number;
  /** Send `rev` bodies deflated, as Couchbase Lite does (default true). */
  compress?: boolean;
  /** Push deltas when the server announces `deltas` (Couchbase Lite's default unless `noDeltas`). */
  deltas?: boolean;
  /** Smallest body (JSON bytes) sent as a delta; LiteCore's `kMinBodySizeForDelta` is 200. */
  minDeltaBodySize?: number;
}

export interface PushResult {
  sent: number;
  /** Proposed revisions the server already had (304) or did not want. */
  skipped: number;
  /** docID → status of refused revisions (409 from proposeChanges, or the rev's error code). */
  errors: Map<string, number>;
  /** For 409 with conflictIncludesRev: the server's current revision. */
  serverRevs: Map<string, string>;
  lastSeq: number;
  /** The server announced `deltas: "true"`. */
  serverDeltas: boolean;
  /** Revisions sent as deltas (and accepted), and those resent whole after a 422. */
  deltasSent: number;
  deltasRefused: number;
}

export interface PullOptions {
  since?: unknown;
  continuous?: boolean;
  batch?: number;
  activeOnly?: boolean;
  channels?: string[];
  docIDs?: string[];
  revocations?: boolean;
  sendReplacementRevs?: boolean;
  /** Announce deltas on the first `changes` response, as Couchbase Lite does unless `noDeltas`. */
  deltas?: boolean;
  /** Test hook: answer every delta `rev` with this error (422 = CorruptDelta) instead of applying it. */
  refuseDeltas?: number;
  /** Test hook: replace the known-ancestors answer for a changes row. */
  knownFor?: (id: string, rev: string, known: string[]) => string[];
  /** Test hook: runs when a `rev` with attachments arrives, before its blobs are fetched (the server still awaits the reply). */
  beforeBlobs?: (props: BlipProperties) => Promise<void>;
}

/** One running pull: counts what arrived; `done` resolves when a one-shot pull has caught up. */
export class PullState extends EventEmitter {
  received = 0;
  norevs: { id: string; rev: string; error: string }[] = [];
  removed: string[] = [];
  revoked: string[] = [];
  batches = 0;
  caughtUp = false;
  lastSeq: unknown;
  /** Every `changes` row received, in order. */
  readonly rows: unknown[][] = [];
  /** Every `rev` message's properties, in order. */
  readonly revProps: BlipProperties[] = [];
  /** Revisions that arrived as deltas and were applied; delta revs this client refused. */
  deltasApplied = 0;
  deltasRefused = 0;
  /** Bytes of `rev` bodies as they arrived (deltas as deltas), before BLIP compression. */
  revBodyBytes = 0;
  /** Every `rev` body as it arrived (a delta as the delta), in order, beside `revProps`. */
  readonly revBodies: string[] = [];
  errors: Error[] = [];
  pending = 0;
  constructor(readonly continuous: boolean, readonly opts: PullOptions = {}) { super(); }

  /** Resolves once `pred` holds, re-checked after every message; rejects after `ms`. */
  waitFor(pred: () => boolean, ms = 10_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.off('progress', check); reject(new Error('pull: timed out waiting')); }, ms);
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        this.off('progress', check);
        resolve();
      };
      this.on('progress', check);
    });
  }
}

/** LiteCore's `boolProperty`: "true"/"YES" (any case) or a non-zero integer. */
function isTrue(v: string | undefined): boolean {
  if (v === undefined) return false;
  return /^(true|yes)$/i.test(v) || (/^-?\d+$/.test(v) && Number(v) !== 0);
}

/**
 * One collection as a client connection replicates it: its pull (state and local database), its
 * push, its checkpoints. In legacy mode the connection has one, untagged; in collection-aware mode
 * one per `getCollections` index, and every message it sends carries `collection`.
 */
export class CollectionReplicator {
  private pullState?: PullState;
  private pullDb?: LocalDb;
  private pushDb?: LocalDb;
  /** Requests of the server being handled for this collection. */
  readonly inflight = new Set<Promise<void>>();
  /** Requests the server made of this collection while it pushed. */
  readonly served = { getAttachment: 0, proveAttachment: 0 };

  constructor(private readonly client: ReplicatorHost, readonly tag: BlipProperties) {}

  async getCheckpoint(client: string): Promise<{ rev: string; body: Record<string, unknown> } | undefined> {
    const res = await this.client.conn.sendRequest({ Profile: 'getCheckpoint', client, ...this.tag });
    if (res?.isError && res.errorDomain === 'HTTP' && res.errorCode === 404) return undefined;
    if (!res || res.isError) throw Object.assign(new Error(`getCheckpoint failed: ${res?.errorDomain}/${res?.errorCode} ${res?.body.toString()}`), { status: res?.errorCode });
    return { rev: res.properties.rev, body: res.json() };
  }

  async setCheckpoint(client: string, body: Record<string, unknown>, rev?: string): Promise<string> {
    const res = await this.client.call({ Profile: 'setCheckpoint', client, ...(rev ? { rev } : {}), ...this.tag }, body);
    return res.properties.rev;
  }

  // ---- push ----

  async push(db: LocalDb, opts: PushOptions = {}): Promise<PushResult> {
    this.pushDb = db;
    const mode = opts.mode ?? 'proposeChanges';
    const batch = opts.batch ?? 200;
    const result: PushResult = {
      sent: 0, skipped: 0, errors: new Map(), serverRevs: new Map(), lastSeq: opts.since ?? 0, serverDeltas: false, deltasSent: 0, deltasRefused: 0,
    };
    const changed = db.changedSince(opts.since ?? 0);
    const limit = opts.concurrency ?? 10;
    const running = new Set<Promise<void>>();
    for (let i = 0; i < changed.length; i += batch) {
      const slice = changed.slice(i, i + batch);
      const items: { id: string; rev: string; known: string[]; seq: number }[] = [];
      let maxHistory = 20;
      if (mode === 'proposeChanges') {
        const entries = slice.map(({ id }) => {
          const rev = db.current(id)!;
          const server = db.remote.get(id);
          return server ? [id, rev, server] : [id, rev];
        });
        const res = await this.client.call({ Profile: 'proposeChanges', conflictIncludesRev: 'true', ...this.tag }, entries, { compressed: true, urgent: true });
        if (isTrue(res.properties.deltas)) result.serverDeltas = true;
        const statuses = res.json<unknown[]>() ?? [];
        slice.forEach(({ id, seq }, k) => {
          const s = statuses[k] ?? 0;
          const rev = entries[k][1];
          if (s === 0) items.push({ id, rev, known: db.remote.has(id) ? [db.remote.get(id)!] : [], seq });
          else if (s === 304) { result.skipped++; db.setRemote(id, rev); }
          else if (typeof s === 'object' && s) {
            const o = s as { status: number; rev?: string };
            result.errors.set(id, o.status);
            if (o.rev) result.serverRevs.set(id, o.rev);
          } else result.errors.set(id, Number(s));
        });
      } else {
        const entries: unknown[][] = [];
        const meta: { id: string; rev: string; seq: number }[] = [];
        for (const { id, seq } of slice) {
          const revs = opts.allLeaves ? db.leaves(id) : [db.current(id)!];
          for (const rev of revs) {
            const r = db.get(id, rev)!;
            entries.push(r.deleted ? [seq, id, rev, true] : [seq, id, rev]);
            meta.push({ id, rev, seq });
          }
        }
        const res = await this.client.call({ Profile: 'changes', ...this.tag }, entries, { compressed: true });
        if (isTrue(res.properties.deltas)) result.serverDeltas = true;
        maxHistory = Number(res.properties.maxHistory ?? 20);
        const answers = res.json<unknown[]>() ?? [];
        meta.forEach((m, k) => {
          const a = answers[k];
          if (Array.isArray(a)) items.push({ ...m, known: a as string[] });
          else result.skipped++;
        });
      }
      for (const it of items) {
        while (running.size >= limit) await Promise.race(running);
        const deltaOpts = opts.deltas && result.serverDeltas ? { minBody: opts.minDeltaBodySize ?? 200, result } : undefined;
        const p = this.sendRev(db, it.id, it.rev, it.known, it.seq, mode === 'proposeChanges', maxHistory, opts.compress ?? true, deltaOpts)
          .then((status) => {
            if (status === 0) { result.sent++; db.setRemote(it.id, it.rev); } else result.errors.set(it.id, status);
          });
        running.add(p);
        void p.finally(() => running.delete(p));
      }
      result.lastSeq = slice[slice.length - 1].seq;
    }
    await Promise.all(running);
    // "Caught up", as Couchbase Lite says it: an empty list, noreply.
    await this.client.conn.sendRequest({ Profile: mode, ...this.tag }, [], { noReply: true });
    return result;
  }

  /**
   * One `rev`; resolves 0 on success or the error code of the reply. With deltas, as LiteCore's
   * pusher: from the server's known revision (or the first known ancestor) when its body is here and
   * not a tombstone, the body is at least `minBody` bytes and the delta at most 1.2x the body; a 422
   * makes it resend the full body at once.
   */
  private async sendRev(
    db: LocalDb, id: string, rev: string, known: string[], seq: number, noconflicts: boolean, maxHistory: number, compressed: boolean,
    deltas?: { minBody: number; result: PushResult },
  ): Promise<number> {
    const r = db.get(id, rev)!;
    let history = db.history(id, rev).slice(1, maxHistory);
    const cut = history.findIndex((h) => known.includes(h));
    if (cut >= 0) history = history.slice(0, cut + 1);
    const props: BlipProperties = { Profile: 'rev', id, rev, sequence: String(seq), ...this.tag };
    if (history.length) props.history = history.join(',');
    if (r.deleted) props.deleted = '1';
    if (noconflicts) props.noconflicts = 'true';
    const body = r.body ?? {};
    if (deltas && !r.deleted) {
      const json = JSON.stringify(body);
      const base = [db.remote.get(id), ...known].find((b) => b !== undefined && db.get(id, b)?.body !== undefined);
      const baseRev = base ? db.get(id, base)! : undefined;
      if (baseRev && !baseRev.deleted && Buffer.byteLength(json) >= deltas.minBody) {
        const delta = JSON.stringify(createDelta(baseRev.body, body));
        if (delta.length <= 1.2 * json.length) {
          const res = await this.client.conn.sendRequest({ ...props, deltaSrc: base! }, delta, { compressed });
          if (!res) return 500;
          if (!res.isError) { deltas.result.deltasSent++; return 0; }
          if (res.errorCode !== 422) return res.errorCode ?? 500;
          deltas.result.deltasRefused++;
        }
      }
    }
    const res = await this.client.conn.sendRequest(props, body, { compressed });
    if (!res) return 500;
    return res.isError ? res.errorCode ?? 500 : 0;
  }

  // ---- pull ----

  /** Starts a pull; for a one-shot pull await `state.waitFor(() => state.caughtUp && state.pending === 0)` or use `pull()`. */
  async startPull(db: LocalDb, opts: PullOptions = {}): Promise<PullState> {
    const state = new PullState(opts.continuous === true, opts);
    this.pullState = state;
    this.pullDb = db;
    const props: BlipProperties = { Profile: 'subChanges', batch: String(opts.batch ?? 200), ...this.tag };
    if (opts.since !== undefined) props.since = JSON.stringify(opts.since);
    if (opts.continuous) props.continuous = 'true';
    if (opts.activeOnly) props.activeOnly = 'true';
    if (opts.revocations) props.revocations = 'true';
    if (opts.sendReplacementRevs) props.sendReplacementRevs = 'true';
    if (opts.channels) { props.filter = 'sync_gateway/bychannel'; props.channels = opts.channels.join(','); }
    await this.client.call(props, opts.docIDs ? { docIDs: opts.docIDs } : undefined);
    return state;
  }

  /** A one-shot pull to completion. */
  async pull(db: LocalDb, opts: PullOptions = {}, timeoutMs = 60_000): Promise<PullState> {
    const state = await this.startPull(db, { ...opts, continuous: false });
    await state.waitFor(() => state.caughtUp && state.pending === 0 && this.inflight.size === 0, timeoutMs);
    return state;
  }

  /** A request of the server about this collection. */
  onRequest(req: BlipRequest): Promise<void> {
    const work = this.handle(req).catch((err: Error) => {
      this.pullState?.errors.push(err);
      if (!req.noReply && !req.responded) req.respondError('HTTP', (err as { status?: number }).status ?? 500, err.message);
    });
    this.inflight.add(work);
    void work.finally(() => { this.inflight.delete(work); this.pullState?.emit('progress'); });
    return work;
  }

  private async handle(req: BlipRequest): Promise<void> {
    switch (req.profile) {
      case 'changes': return this.onChanges(req);
      case 'rev': return this.onRev(req);
      case 'norev': {
        const s = this.pullState!;
        s.norevs.push({ id: req.properties.id, rev: req.properties.rev, error: req.properties.error });
        s.pending--;
        return;
      }
      case 'getAttachment': {
        this.served.getAttachment++;
        this.client.served.getAttachment++;
        const data = this.pushDb?.blobs.get(req.properties.digest);
        if (!data) { req.respondError('HTTP', 404, 'no such blob'); return; }
        req.respond({}, data, { compressed: req.properties.compress === 'true' });
        return;
      }
      case 'proveAttachment': {
        this.served.proveAttachment++;
        this.client.served.proveAttachment++;
        const data = this.pushDb?.blobs.get(req.properties.digest);
        if (!data) { req.respondError('HTTP', 404, 'no such blob'); return; }
        const proof = 'sha1-' + createHash('sha1').update(Buffer.of(req.body.length)).update(req.body).update(data).digest('base64');
        req.respond({}, proof);
        return;
      }
      default:
        req.respondError('BLIP', 404, 'no handler for message');
    }
  }

  private async onChanges(req: BlipRequest): Promise<void> {
    const s = this.pullState!;
    const db = this.pullDb!;
    const rows = req.json<unknown[][] | null>() ?? [];
    if (rows.length === 0) {
      s.caughtUp = true;
      if (!req.noReply) req.respond({}, []);
      return;
    }
    // LiteCore announces deltas on its first changes response only; the server keeps the setting.
    const announce = s.opts.deltas === true && s.batches === 0;
    s.batches++;
    const answer: unknown[] = [];
    for (const row of rows) {
      s.rows.push(row);
      const [seq, id, rev, flags] = row as [unknown, string, string, number | boolean | undefined];
      if (typeof id !== 'string' || id.length === 0 || typeof rev !== 'string' || !rev.includes('-')) throw new Error(`invalid changes row ${JSON.stringify(row)}`);
      s.lastSeq = seq;
      const bits = typeof flags === 'number' ? flags : flags === true ? 1 : 0;
      // Revoked (2) or removed (4) without being a plain tombstone: purge, do not ask for the rev.
      if (bits & 2 || (bits & 4 && !(bits & 1))) {
        db.purge(id, bits & 2 ? 'revoked' : 'removed');
        (bits & 2 ? s.revoked : s.removed).push(id);
        answer.push(0);
        continue;
      }
      if (db.docs.get(id)?.revs.has(rev)) { answer.push(0); continue; }
      const known = s.opts.deltas ? db.ancestorsWithBodies(id, rev) : db.leaves(id);
      answer.push(s.opts.knownFor ? s.opts.knownFor(id, rev, known) : known);
      s.pending++;
    }
    req.respond({ maxHistory: '50', blobs: 'true', ...(announce ? { deltas: 'true' } : {}) }, answer, { compressed: true });
  }

  private async onRev(req: BlipRequest): Promise<void> {
    const s = this.pullState!;
    const db = this.pullDb!;
    const p = req.properties;
    s.revProps.push(p);
    // A refused delta is expected again as a full body (LiteCore's revReRequested): still pending.
    let again = false;
    try {
      // Couchbase Lite refuses a pulled rev without a sequence.
      if (!p.id || !p.rev || p.sequence === undefined) throw Object.assign(new Error('rev without id, rev or sequence'), { status: 400 });
      s.revBodyBytes += req.body.length;
      s.revBodies.push(req.body.toString('utf8'));
      let body = req.json<Record<string, unknown>>() ?? {};
      if (p.deltaSrc !== undefined) {
        again = true;
        if (s.opts.refuseDeltas) { s.deltasRefused++; throw Object.assign(new Error('delta refused (test hook)'), { status: s.opts.refuseDeltas }); }
        // LiteCore: a missing base is DeltaBaseUnknown, a bad delta CorruptDelta; both answered HTTP 422.
        const base = db.get(p.id, p.deltaSrc)?.body;
        if (!base) { s.deltasRefused++; throw Object.assign(new Error(`delta base ${p.deltaSrc} unknown`), { status: 422 }); }
        try {
          body = applyDelta(base, body) as Record<string, unknown>;
        } catch (err) {
          s.deltasRefused++;
          throw Object.assign(new Error(`corrupt delta: ${(err as Error).message}`), { status: err instanceof DeltaError ? 422 : 500 });
        }
        s.deltasApplied++;
        again = false;
      }
      if (body._removed === true) {
        db.purge(p.id, 'removed');
        s.removed.push(p.id);
      } else {
        const atts = body._attachments as Record<string, AttachmentStub> | undefined;
        if (atts && s.opts.beforeBlobs) await s.opts.beforeBlobs(p);
        for (const a of Object.values(atts ?? {})) {
          if (db.blobs.has(a.digest)) continue;
          const res = await this.client.call({ Profile: 'getAttachment', digest: a.digest, ...(this.client.isV3 ? { docID: p.id } : {}), ...this.tag });
          if (sha1Digest(res.body) !== a.digest || res.body.length !== a.length) throw Object.assign(new Error('attachment digest mismatch'), { status: 400 });
          db.blobs.set(a.digest, res.body);
        }
        const history = p.history ? p.history.split(',') : [];
        db.insert(p.id, p.rev, history, p.deleted === '1' || p.deleted === 'true', body);
        db.setRemote(p.id, p.rev);
        s.received++;
      }
      if (!req.noReply) req.respond();
    } finally {
      if (!again) s.pending--;
    }
  }
}

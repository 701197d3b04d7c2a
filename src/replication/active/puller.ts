/**
 * The pull direction: `subChanges` on the remote (from the checkpoint, bychannel filter, batch size,
 * continuous or one-shot), answering each `changes` batch with the revisions we lack (the local
 * revs-diff), receiving `rev` / `norev`, fetching attachments we do not have with `getAttachment`,
 * and writing through `LocalWriter`. A sequence is safe to checkpoint once it and every sequence
 * before it are written (or known not to be needed), so a crash replays, never skips.
 */
import { HttpError } from '../../errors.ts';
import type { Collection } from '../../db/collection.ts';
import type { BlipConnection, BlipRequest } from '../blip/connection.ts';
import { isJsonObject } from '../../json/index.ts';
import { decodeRevTree, isLeaf, leaves } from '../../revtree/index.ts';
import { parseRevId } from '../../revid.ts';
import type { LocalWriter, Pulled } from './local-write.ts';
import type { ReplicationCounters, ReplicationConfig } from '../isgr/types.ts';

/** CBMobile_3 `changes` flags. */
const FLAG_DELETED = 1;
const FLAG_REVOKED = 2;
const FLAG_REMOVED = 4;

type Log = (level: 'info' | 'warn' | 'debug', msg: string) => void;

/** Sequences in arrival order; the safe point is the last of the leading run of finished ones. */
class SequenceTracker {
  private readonly order: { seq: string; done: boolean }[] = [];
  private readonly bySeq = new Map<string, { seq: string; done: boolean }>();
  safe = '';

  add(seq: string): void {
    if (this.bySeq.has(seq)) return;
    const e = { seq, done: false };
    this.order.push(e);
    this.bySeq.set(seq, e);
  }

  done(seq: string): void {
    const e = this.bySeq.get(seq);
    if (!e) return;
    e.done = true;
    let n = 0;
    while (n < this.order.length && this.order[n].done) n++;
    if (n === 0) return;
    this.safe = this.order[n - 1].seq;
    for (const x of this.order.splice(0, n)) this.bySeq.delete(x.seq);
  }

  get pending(): number { return this.order.length; }
}

/** The `sequence` value of a `changes` row or `rev` message, as the string we checkpoint. */
function seqString(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    try {
      const parsed: unknown = JSON.parse(v);
      if (typeof parsed === 'number' || typeof parsed === 'string') return String(parsed);
    } catch { /* a bare string */ }
    return v;
  }
  return JSON.stringify(v);
}

export class Puller {
  private readonly tracker = new SequenceTracker();
  private caughtUpSignal = false;
  private waiters: (() => void)[] = [];
  /** Writes of revisions that arrived together, flushed as one group. */
  private queue: { p: Pulled; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;
  private failure: Error | undefined;

  constructor(
    private readonly conn: BlipConnection,
    private readonly local: Collection,
    private readonly writer: LocalWriter,
    private readonly config: ReplicationConfig,
    private readonly counters: ReplicationCounters,
    private readonly log: Log,
    private readonly changed: () => void,
    private readonly onFailure: (err: Error) => void,
    /** `{collection: "<i>"}` on every message about this collection; none in legacy mode. */
    private readonly tag: Record<string, string> = {},
  ) {}

  /** Sends subChanges from `since` ('' = the start). */
  async start(since: string): Promise<void> {
    this.tracker.safe = since;
    const props: Record<string, string> = { Profile: 'subChanges', ...this.tag, batch: String(this.config.batch_size) };
    if (since !== '') props.since = /^\d+$/.test(since) ? since : JSON.stringify(since);
    if (this.config.continuous) props.continuous = 'true';
    // As Sync Gateway: purge_on_removal asks the remote for revocations, announced as row flags.
    if (this.config.purge_on_removal) props.revocations = 'true';
    const channels = this.config.query_params?.channels ?? [];
    if (this.config.filter === 'sync_gateway/bychannel') {
      props.filter = 'sync_gateway/bychannel';
      props.channels = channels.join(',');
    }
    const res = await this.conn.sendRequest(props);
    if (res?.isError) throw new HttpError(res.errorCode || 500, `subChanges refused by the remote: ${res.errorDomain}/${res.errorCode} ${res.body.toString('utf8')}`);
  }

  /** The checkpoint-safe remote sequence. */
  get safeSeq(): string { return this.tracker.safe; }

  /** One-shot: resolves once the remote said "caught up" and every announced revision is handled. */
  caughtUp(): Promise<void> {
    if (this.isCaughtUp) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  get error(): Error | undefined { return this.failure; }

  private get isCaughtUp(): boolean { return this.caughtUpSignal && this.tracker.pending === 0 && this.queue.length === 0 && !this.flushing; }

  private checkCaughtUp(): void {
    if (!this.isCaughtUp) return;
    for (const w of this.waiters.splice(0)) w();
  }

  private finish(seq: string): void {
    this.tracker.done(seq);
    this.counters.last_seq_pull = this.tracker.safe;
    this.checkCaughtUp();
  }

  /** Remote → us `changes`: answer with what we lack; an empty batch means caught up. */
  async onChanges(req: BlipRequest): Promise<void> {
    const rows = req.body.length ? req.json<unknown>() : null;
    if (rows === null || (Array.isArray(rows) && rows.length === 0)) {
      this.caughtUpSignal = true;
      if (!req.noReply) req.respond();
      this.checkCaughtUp();
      return;
    }
    if (!Array.isArray(rows)) throw new HttpError(400, 'changes body must be an array');
    this.caughtUpSignal = false;
    const entries: { seq: string; id: string; rev: string; deleted: boolean; gone: boolean }[] = [];
    for (const r of rows) {
      if (!Array.isArray(r) || typeof r[1] !== 'string' || typeof r[2] !== 'string') throw new HttpError(400, 'Invalid changes row');
      parseRevId(r[2]);
      const flags = r[3];
      const bits = typeof flags === 'number' ? flags : 0;
      entries.push({
        seq: seqString(r[0]), id: r[1], rev: r[2], deleted: flags === true || (bits & FLAG_DELETED) !== 0,
        gone: (bits & (FLAG_REVOKED | FLAG_REMOVED)) !== 0,
      });
    }
    for (const e of entries) this.tracker.add(e.seq);
    // Revoked or removed (we asked for revocations only with purge_on_removal): purge, ask nothing.
    for (const e of entries) if (e.gone) await this.onRemoved(e.id);
    const docs = await this.local.store.getDocs([...new Set(entries.map((e) => e.id))]);
    const known: { id: string; rev: string }[] = [];
    const answer: (number | string[])[] = entries.map((e) => {
      if (e.gone) return 0;
      const doc = docs.get(e.id);
      if (!doc) return [];
      const tree = decodeRevTree(doc.tree);
      if (tree.has(e.rev)) {
        // The remote's winner is a branch we hold that loses here to a live revision: resolve them.
        if (!doc.deleted && doc.rev !== e.rev && isLeaf(tree, e.rev)) known.push({ id: e.id, rev: e.rev });
        return 0;
      }
      // Our leaves are the revisions the remote's history may stop at.
      return leaves(tree).map((l) => l.id);
    });
    this.counters.docs_checked_pull += entries.length;
    // Rows we already have are finished now; the others when their rev (or norev) arrives.
    entries.forEach((e, i) => { if (answer[i] === 0) this.finish(e.seq); });
    let n = answer.length;
    while (n > 0 && answer[n - 1] === 0) n--;
    if (!req.noReply) req.respond({}, answer.slice(0, n));
    for (const k of known) {
      try {
        await this.writer.resolveKnown(k.id, k.rev);
      } catch (err) {
        this.counters.rejected_by_local++;
        this.log('info', `pull: resolving ${k.id} against the remote's ${k.rev} failed: ${(err as Error).message}`);
      }
    }
    this.changed();
  }

  /** Remote → us `norev`: the revision is gone there; nothing to write. */
  onNorev(req: BlipRequest): void {
    const seq = req.properties.sequence ?? req.properties.seq;
    this.log('debug', `remote sent norev for ${req.properties.id} ${req.properties.rev}: ${req.properties.error ?? ''} ${req.properties.reason ?? ''}`);
    if (seq !== undefined) this.finish(seqString(seq));
    if (!req.noReply) req.respond();
  }

  /** Remote → us `rev`: one revision, written before the reply (when one is asked for). */
  async onRev(req: BlipRequest): Promise<void> {
    const id = req.properties.id ?? '';
    const rev = req.properties.rev ?? '';
    // CBMobile_3 names it `sequence`; Sync Gateway sends `seq` to ISGR peers on CBMobile_2.
    const seq = seqString(req.properties.sequence ?? req.properties.seq ?? '');
    let finished = true;
    try {
      if (id === '' || rev === '') throw new HttpError(400, 'rev without id or rev');
      const parsed = req.body.length ? req.json<unknown>() : {};
      if (!isJsonObject(parsed)) throw new HttpError(400, 'rev body must be a JSON object');
      const body = { ...parsed } as Record<string, unknown>;
      if (body._removed === true) {
        await this.onRemoved(id);
      } else {
        const history = [rev, ...(req.properties.history ?? '').split(',').filter((h) => h !== '')];
        const deleted = req.properties.deleted === '1' || req.properties.deleted === 'true' || body._deleted === true;
        const follows = await this.fetchAttachments(id, body);
        await this.enqueue({ id, history, deleted, body, follows });
      }
      if (!req.noReply) req.respond();
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, (err as Error).message);
      this.log('warn', `pull: ${id} ${rev} not written: ${e.status} ${e.reason}`);
      if (!req.noReply) req.respondError('HTTP', e.status, e.reason);
      // A local failure (not a refusal) leaves the sequence unfinished: the checkpoint stops
      // before it and the replicator reconnects, so the revision is asked for again.
      if (!(err instanceof HttpError) || this.conn.closed) { finished = false; this.failure ??= e; this.onFailure(e); }
    } finally {
      if (finished) this.finish(seq);
      this.changed();
    }
  }

  /** The remote user lost access: with purge_on_removal the local document goes. */
  private async onRemoved(id: string): Promise<void> {
    if (!this.config.purge_on_removal) return;
    if (await this.local.purge(id)) this.counters.docs_purged++;
  }

  /** Attachment stubs whose bytes we lack are fetched now and written as `follows` data. */
  private async fetchAttachments(id: string, body: Record<string, unknown>): Promise<Map<string, Buffer> | undefined> {
    const atts = body._attachments;
    if (!isJsonObject(atts)) return undefined;
    const copy: Record<string, Record<string, unknown>> = {};
    const follows = new Map<string, Buffer>();
    for (const [name, raw] of Object.entries(atts)) {
      if (!isJsonObject(raw)) throw new HttpError(400, `Invalid attachment "${name}"`);
      const e = { ...raw } as Record<string, unknown>;
      copy[name] = e;
      if (typeof e.data === 'string' || typeof e.digest !== 'string') continue;
      if (await this.local.getAttachmentData(e.digest)) continue;
      const res = await this.conn.sendRequest({ Profile: 'getAttachment', ...this.tag, digest: e.digest, docID: id });
      // Not a refusal: the revision stays unfinished and is asked for again after a reconnect.
      if (!res || res.isError) throw new Error(`could not fetch attachment ${e.digest} of ${id} from the remote (${res?.errorDomain}/${res?.errorCode})`);
      delete e.stub;
      e.follows = true;
      follows.set(name, res.body);
    }
    body._attachments = copy;
    return follows.size ? follows : undefined;
  }

  private enqueue(p: Pulled): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ p, resolve, reject });
      if (!this.flushing) { this.flushing = true; setImmediate(() => void this.flush()); }
    });
  }

  /** Writes queued revisions in groups (those that arrived in the same turn share a transaction). */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, 500);
      try {
        const results = await this.writer.write(group.map((g) => g.p));
        results.forEach((r, i) => {
          if (r.ok) { this.counters.docs_read++; group[i].resolve(); return; }
          this.counters.rejected_by_local++;
          this.log('info', `pull: local write of ${group[i].p.id} ${group[i].p.history[0]} refused: ${r.error.status} ${r.error.reason}`);
          group[i].resolve();
        });
      } catch (err) {
        this.log('warn', `pull: writing a group failed: ${(err as Error).message}`);
        for (const g of group) g.reject(err);
      }
    }
    this.flushing = false;
    this.checkCaughtUp();
  }
}

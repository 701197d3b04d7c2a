/**
 * The push direction: reads the local changes feed through the one changes path (`changesSince`
 * over the `run_as` user's channels, or everything for the admin, narrowed by the bychannel
 * filter; continuous feeds wait on the collection's notifier) and offers each batch to the remote.
 *
 * Every leaf of a changed document is offered, not only the winner (the CouchDB replicator's
 * `all_docs` style; Sync Gateway's pusher offers the winner only): a conflict resolved here leaves
 * a tombstone on the remote's branch that is not the local winner, and the remote must get it too,
 * or it keeps its branch alive and the replicas disagree.
 *
 * As Sync Gateway's active pusher, it sends `changes` with `ignoreNoConflicts: true` (the remote
 * answers with the revisions it lacks and the ancestors it has, as a revs-diff), then a `rev` for
 * each wanted revision with its history cut at what the remote has. A remote that refuses
 * `changes` with 409 (a conflict-free peer that does not honour `ignoreNoConflicts`) gets
 * `proposeChanges` for the rest of the connection. The remote may fetch or ask us to prove the
 * attachments of revisions being sent to it, and only those. A batch is checkpointed once every
 * revision in it was answered.
 */
import { createHash } from 'node:crypto';
import { HttpError } from '../../errors.ts';
import type { Collection } from '../../db/collection.ts';
import type { Principal } from '../../auth/principal.ts';
import { changesSince, type ChangeEntry, feedScope, feedWaitKeys, formatSince, parseSince, type Since } from '../../db/changes.ts';
import { blipBody } from '../../db/deltas.ts';
import type { BlipConnection, BlipRequest } from '../blip/connection.ts';
import type { ReplicationConfig, ReplicationCounters } from '../isgr/types.ts';

type Log = (level: 'info' | 'warn' | 'debug', msg: string) => void;

/** Revisions in flight at once (Couchbase Lite keeps about as many). */
const MAX_REVS_IN_FLIGHT = 16;

interface Wanted { e: ChangeEntry; rev: string; known: string[] }

/** One offered revision: every leaf of each changed document, the winner first. */
interface Offer { e: ChangeEntry; rev: string }

export class Pusher {
  private mode: 'changes' | 'proposeChanges' = 'changes';
  /** Digest → how many revisions being sent carry it: the remote may fetch only those. */
  private readonly allowed = new Map<string, number>();
  private caughtUpOnce = false;
  private waiters: (() => void)[] = [];
  private position: Since = { seq: 0 };
  private current: Principal | undefined;

  constructor(
    private readonly conn: BlipConnection,
    private readonly local: Collection,
    private readonly config: ReplicationConfig,
    private readonly counters: ReplicationCounters,
    private readonly log: Log,
    private readonly refreshPrincipal: () => Promise<Principal>,
    private readonly changed: () => void,
    /** `{collection: "<i>"}` on every message about this collection; none in legacy mode. */
    private readonly tag: Record<string, string> = {},
  ) {}

  /** The checkpoint-safe local position. */
  get safeSeq(): string { return formatSince(this.position); }

  caughtUp(): Promise<void> {
    if (this.caughtUpOnce) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Runs until caught up (one-shot) or until `signal` aborts / the connection closes (continuous). */
  async run(since: string, signal: AbortSignal): Promise<void> {
    this.position = parseSince(since);
    this.counters.last_seq_push = since;
    const filter = this.config.filter === 'sync_gateway/bychannel' ? this.config.query_params?.channels ?? [] : undefined;
    const live = () => !signal.aborted && !this.conn.closed && !this.local.db.isClosed;
    while (live()) {
      const principal = await this.refreshPrincipal();
      this.current = principal;
      const scope = feedScope(principal, filter);
      const seen = this.local.notifier.version;
      const page = await changesSince(this.local, scope, { since: this.position, limit: this.config.batch_size, style: 'all_docs' });
      const entries = page.entries.filter((e) => !e.id.startsWith('_user/') && e.changes.length > 0);
      if (entries.length) await this.sendBatch(entries);
      if (!live()) return;
      this.position = page.last;
      this.counters.last_seq_push = formatSince(page.last);
      this.changed();
      if (page.entries.length > 0 && !page.complete) continue;
      if (!this.caughtUpOnce) {
        this.caughtUpOnce = true;
        for (const w of this.waiters.splice(0)) w();
      }
      if (!this.config.continuous) return;
      const woke = await this.local.notifier.wait(feedWaitKeys(principal, scope), 0, signal, seen);
      if (!woke) return;
    }
  }

  private async sendBatch(entries: ChangeEntry[]): Promise<void> {
    this.counters.docs_checked_push += entries.length;
    const offers: Offer[] = entries.flatMap((e) => e.changes.map((c) => ({ e, rev: c.rev })));
    const wanted = this.mode === 'changes' ? await this.offerChanges(offers) : undefined;
    const list = wanted ?? await this.propose(offers);
    const inFlight = new Set<Promise<void>>();
    for (const w of list) {
      if (this.conn.closed) break;
      const p = this.sendRev(w).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= MAX_REVS_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (this.conn.closed) throw new Error('connection closed while pushing');
  }

  /** `changes` with revision ids; undefined when the remote wants proposeChanges instead. */
  private async offerChanges(entries: Offer[]): Promise<Wanted[] | undefined> {
    const rows = entries.map(({ e, rev }) => {
      const row: unknown[] = [e.pos.triggeredBy ? formatSince(e.pos) : e.pos.seq, e.id, rev];
      if (e.deleted && rev === e.changes[0].rev) row.push(1);
      return row;
    });
    const res = await this.conn.sendRequest({ Profile: 'changes', ...this.tag, ignoreNoConflicts: 'true' }, rows);
    if (!res) throw new Error('no reply to changes');
    if (res.isError) {
      if (res.errorCode === 409) {
        this.log('info', 'push: the remote refuses "changes" (conflict-free); using proposeChanges');
        this.mode = 'proposeChanges';
        return undefined;
      }
      throw new Error(`the remote refused a changes batch: ${res.errorDomain}/${res.errorCode} ${res.body.toString('utf8')}`);
    }
    const answer = res.body.length ? res.json<unknown>() : [];
    if (!Array.isArray(answer)) throw new Error('changes reply must be an array');
    const out: Wanted[] = [];
    entries.forEach(({ e, rev }, i) => {
      const a = answer[i];
      if (Array.isArray(a)) out.push({ e, rev, known: a.filter((k): k is string => typeof k === 'string') });
    });
    return out;
  }

  /** `proposeChanges` naming our parent revision as the one the remote should have. */
  private async propose(entries: Offer[]): Promise<Wanted[]> {
    const histories = await this.local.getMany(entries.map(({ e, rev }) => ({ id: e.id, rev, opts: { revs: true } })));
    const histOf = (i: number): string[] => {
      const v = histories[i];
      if (v instanceof HttpError || !v.revisions) return [];
      return v.revisions.ids.map((d, k) => `${v.revisions!.start - k}-${d}`);
    };
    const body = entries.map(({ e, rev }, i) => {
      const parent = histOf(i)[1];
      return parent ? [e.id, rev, parent] : [e.id, rev];
    });
    const res = await this.conn.sendRequest({ Profile: 'proposeChanges', ...this.tag, conflictIncludesRev: 'true' }, body);
    if (!res) throw new Error('no reply to proposeChanges');
    if (res.isError) throw new Error(`the remote refused proposeChanges: ${res.errorDomain}/${res.errorCode}`);
    const answer = res.body.length ? res.json<unknown>() : [];
    if (!Array.isArray(answer)) throw new Error('proposeChanges reply must be an array');
    const out: Wanted[] = [];
    entries.forEach(({ e, rev }, i) => {
      const a = answer[i] ?? 0;
      if (a === 0) { out.push({ e, rev, known: [] }); return; }
      if (a === 304) return;
      const serverRev = typeof a === 'object' && a !== null ? (a as { rev?: unknown }).rev : undefined;
      // The remote is simply behind on this branch: our revision extends what it has.
      if (typeof serverRev === 'string' && histOf(i).includes(serverRev)) { out.push({ e, rev, known: [serverRev] }); return; }
      this.counters.doc_write_conflict++;
    });
    return out;
  }

  private async sendRev(w: Wanted): Promise<void> {
    const { e, rev, known } = w;
    const [view] = await this.local.getMany([{ id: e.id, rev, opts: { revs: true, revsFrom: known } }], this.current);
    // Superseded since the feed read it (the newer revision comes later in the feed), or not visible.
    if (view instanceof HttpError || view.removed) return;
    const ids = view.revisions?.ids ?? [];
    const start = view.revisions?.start ?? 0;
    const props: Record<string, string> = { Profile: 'rev', ...this.tag, id: view.id, rev: view.rev, sequence: JSON.stringify(e.pos.triggeredBy ? formatSince(e.pos) : e.pos.seq) };
    const history = ids.slice(1).map((d, i) => `${start - 1 - i}-${d}`);
    if (history.length) props.history = history.join(',');
    if (view.deleted) props.deleted = '1';
    const body = blipBody(view.body, view.attachments);
    const digests = view.attachments ? Object.values(view.attachments).map((a) => a.digest) : [];
    for (const d of digests) this.allowed.set(d, (this.allowed.get(d) ?? 0) + 1);
    try {
      const res = await this.conn.sendRequest(props, body, { compressed: body.length > 256 });
      if (!res) return;
      if (!res.isError) { this.counters.docs_written++; return; }
      const why = `${res.errorDomain}/${res.errorCode} ${res.body.toString('utf8')}`;
      if (res.errorCode === 403 || res.errorCode === 401) this.counters.rejected_by_remote++;
      else if (res.errorCode === 409) this.counters.doc_write_conflict++;
      else this.counters.doc_write_failures++;
      this.log('info', `push: the remote refused ${view.id} ${view.rev}: ${why}`);
    } finally {
      for (const d of digests) {
        const n = (this.allowed.get(d) ?? 1) - 1;
        if (n <= 0) this.allowed.delete(d); else this.allowed.set(d, n);
      }
      this.changed();
    }
  }

  private allowedDigest(req: BlipRequest): string {
    const digest = req.properties.digest ?? '';
    if (!this.allowed.has(digest)) throw new HttpError(403, 'Attachment is not part of a revision being sent to you');
    return digest;
  }

  /** Remote → us `getAttachment` for a revision we are pushing. */
  async onGetAttachment(req: BlipRequest): Promise<void> {
    const data = await this.local.getAttachmentData(this.allowedDigest(req));
    if (!data) throw new HttpError(404, 'missing attachment');
    req.respond({}, data, { compressed: req.properties.compress === 'true' });
  }

  /** Remote → us `proveAttachment`: sha1(len(nonce) ‖ nonce ‖ data), as the passive side checks it. */
  async onProveAttachment(req: BlipRequest): Promise<void> {
    const data = await this.local.getAttachmentData(this.allowedDigest(req));
    if (!data) throw new HttpError(404, 'missing attachment');
    const nonce = req.body;
    if (nonce.length === 0 || nonce.length > 255) throw new HttpError(400, 'Invalid nonce');
    req.respond({}, 'sha1-' + createHash('sha1').update(Buffer.of(nonce.length)).update(nonce).update(data).digest('base64'));
  }
}

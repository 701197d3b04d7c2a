/**
 * The local database of the test replicator (test/helpers/blip-client.ts): a device's documents as
 * Couchbase Lite keeps them, revision trees, bodies of leaves (and of the revision last known on the
 * server, a delta base), blobs by digest, and a local sequence.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface AttachmentIn { data: Buffer; content_type?: string }
export interface AttachmentStub { digest: string; length: number; revpos: number; content_type?: string; stub: true }

interface LocalRev { parent?: string; deleted: boolean; body?: Record<string, unknown> }
interface LocalDoc { revs: Map<string, LocalRev>; seq: number }

export function sha1Digest(data: Buffer): string {
  return 'sha1-' + createHash('sha1').update(data).digest('base64');
}

function gen(rev: string): number { return Number(rev.slice(0, rev.indexOf('-'))); }

/** The local database of a device: revision trees, bodies of leaves, blobs by digest, a sequence. */
export class LocalDb {
  readonly docs = new Map<string, LocalDoc>();
  readonly blobs = new Map<string, Buffer>();
  /** The revision of each document the server is known to have (proposeChanges' serverRevID). */
  readonly remote = new Map<string, string>();
  /** Documents purged because the user lost access (revoked) or the doc left its channels (removed). */
  readonly purged = new Map<string, 'revoked' | 'removed'>();
  private seq = 0;

  get lastSeq(): number { return this.seq; }

  leaves(id: string): string[] {
    const d = this.docs.get(id);
    if (!d) return [];
    const parents = new Set([...d.revs.values()].map((r) => r.parent).filter((p): p is string => p !== undefined));
    return [...d.revs.keys()].filter((r) => !parents.has(r));
  }

  /** Winning leaf: live beats deleted, then higher generation, then greater id (as both servers pick). */
  current(id: string): string | undefined {
    const d = this.docs.get(id);
    if (!d) return undefined;
    return this.leaves(id).sort((a, b) => {
      const da = d.revs.get(a)!.deleted ? 0 : 1;
      const db = d.revs.get(b)!.deleted ? 0 : 1;
      if (da !== db) return db - da;
      if (gen(a) !== gen(b)) return gen(b) - gen(a);
      return a < b ? 1 : -1;
    })[0];
  }

  get(id: string, rev = this.current(id)): (LocalRev & { rev: string }) | undefined {
    const r = rev ? this.docs.get(id)?.revs.get(rev) : undefined;
    return r && rev ? { ...r, rev } : undefined;
  }

  /** Ancestry of a revision, newest first, including it. */
  history(id: string, rev: string): string[] {
    const d = this.docs.get(id)!;
    const out: string[] = [];
    for (let r: string | undefined = rev; r && d.revs.has(r); r = d.revs.get(r)!.parent) out.push(r);
    return out;
  }

  /**
   * A local edit: a child of `parent` (default: the current revision) with a SHA-1 based id as
   * Couchbase Lite makes them. Attachments are stored as blobs and appear as stubs in the body.
   */
  put(id: string, body: Record<string, unknown>, opts: { parent?: string | null; deleted?: boolean; attachments?: Record<string, AttachmentIn> } = {}): string {
    const parent = opts.parent === null ? undefined : opts.parent ?? this.current(id);
    const g = parent ? gen(parent) + 1 : 1;
    const b: Record<string, unknown> = { ...body };
    if (opts.attachments) {
      const atts: Record<string, AttachmentStub> = {};
      for (const [name, a] of Object.entries(opts.attachments)) {
        const digest = sha1Digest(a.data);
        this.blobs.set(digest, a.data);
        atts[name] = { stub: true, digest, length: a.data.length, revpos: g, ...(a.content_type ? { content_type: a.content_type } : {}) };
      }
      b._attachments = atts;
    } else if (parent && !opts.deleted) {
      const prev = this.get(id, parent)?.body?._attachments;
      if (prev) b._attachments = prev;
    }
    const rev = `${g}-${createHash('sha1').update(`${parent ?? ''}\u0000${JSON.stringify(b)}\u0000${opts.deleted ? 1 : 0}`).update(randomBytes(4)).digest('hex')}`;
    this.insert(id, rev, parent ? [parent] : [], opts.deleted === true, opts.deleted ? {} : b);
    return rev;
  }

  delete(id: string, parent?: string): string {
    return this.put(id, {}, { parent, deleted: true });
  }

  /** Inserts a revision with its ancestry (newest first, excluding `rev`); bumps the local sequence. */
  insert(id: string, rev: string, history: string[], deleted: boolean, body: Record<string, unknown>): void {
    let d = this.docs.get(id);
    if (!d) this.docs.set(id, (d = { revs: new Map(), seq: 0 }));
    const chain = [rev, ...history];
    for (let i = chain.length - 1; i >= 0; i--) {
      const r = chain[i];
      if (!d.revs.has(r)) d.revs.set(r, { parent: chain[i + 1], deleted: i === 0 ? deleted : false });
    }
    const node = d.revs.get(rev)!;
    node.deleted = deleted;
    node.body = body;
    // Only leaves keep bodies, and the revision the server is known to have (a delta base).
    if (node.parent && this.remote.get(id) !== node.parent) { const p = d.revs.get(node.parent); if (p) delete p.body; }
    d.seq = ++this.seq;
    this.purged.delete(id);
  }

  purge(id: string, why: 'revoked' | 'removed'): void {
    this.docs.delete(id);
    this.remote.delete(id);
    this.purged.set(id, why);
  }

  /** Records the server's revision of a document; the previous one's body goes unless it is a leaf. */
  setRemote(id: string, rev: string): void {
    const before = this.remote.get(id);
    this.remote.set(id, rev);
    if (before && before !== rev && !this.leaves(id).includes(before)) {
      const r = this.docs.get(id)?.revs.get(before);
      if (r) delete r.body;
    }
  }

  /**
   * What Couchbase Lite answers a pulled `changes` row with, deltas on: its revisions of the doc
   * that still have bodies and are older than the incoming one, the current revision first.
   */
  ancestorsWithBodies(id: string, incoming: string): string[] {
    const d = this.docs.get(id);
    if (!d) return [];
    const current = this.current(id);
    const withBodies = [...d.revs.entries()].filter(([r, v]) => v.body !== undefined && gen(r) < gen(incoming)).map(([r]) => r);
    return withBodies.sort((a, b) => (a === current ? -1 : b === current ? 1 : gen(b) - gen(a)));
  }

  /** Documents changed after `since`, in sequence order. */
  changedSince(since: number): { id: string; seq: number }[] {
    return [...this.docs.entries()].filter(([, d]) => d.seq > since).map(([id, d]) => ({ id, seq: d.seq })).sort((a, b) => a.seq - b.seq);
  }

  /** Live documents (current revision not deleted). */
  liveIds(): string[] {
    return [...this.docs.keys()].filter((id) => !this.get(id)!.deleted);
  }
}

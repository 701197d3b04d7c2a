/**
 * Writing pulled revisions into the local collection through its one write path (`bulkWrite`,
 * `newEdits: false`, as the `run_as` user so the local sync function and its require* checks run).
 * Revisions that arrive together go in one call. A revision that would branch from the local
 * current revision is a conflict and is resolved first, as Sync Gateway's
 * `PutExistingRevWithConflictResolution` does:
 *   - remote wins: the remote revision is added and the local branch is tombstoned;
 *   - local wins / merge: the winning body becomes a new revision, child of the remote revision
 *     (its id computed from parent and body, so two gateways resolving the same conflict the same
 *     way make the same revision), and the local branch is tombstoned.
 * The resolution is an ordinary new revision: the push direction replicates it back. Every other
 * live leaf is tombstoned too (Sync Gateway tombstones only the local current revision): a branch
 * left alive here would win again later and the replicas would not agree.
 *
 * A remote's feed names only its winning revision. When that winner is a leaf we already have but
 * not our winner (the remote tombstoned our winning branch, and the tombstone is not its winner, so
 * its feed never names it), the two leaves are resolved the same way (`resolveKnown`).
 */
import { HttpError } from '../../errors.ts';
import type { Collection, WriteRequest, WriteResult } from '../../db/collection.ts';
import type { Principal } from '../../auth/principal.ts';
import type { StoredDoc } from '../../storage/store.ts';
import { toRevisions } from '../../db/render.ts';
import { blipBody } from '../../db/deltas.ts';
import { decodeRevTree, history as treeHistory, isLeaf, liveLeaves } from '../../revtree/index.ts';
import { canonicalJson } from '../../json/canonical.ts';
import { createRevId } from '../../revid.ts';
import type { Body, ResolverFn } from './resolver.ts';

/** One revision received from the remote, ready to write. */
export interface Pulled {
  id: string;
  /** The revision and its ancestors, newest first. */
  history: string[];
  deleted: boolean;
  /** User properties and `_attachments` (stubs, or `follows` entries with bytes in `follows`). */
  body: Body;
  follows?: Map<string, Buffer>;
}

export type PullOutcome =
  | { ok: true; rev: string; resolved?: 'local' | 'remote' | 'merge' }
  | { ok: false; error: HttpError };

const SPECIAL = ['_id', '_rev', '_deleted', '_revisions', '_removed', '_exp'];

function userBody(b: Body): Body {
  const out: Body = {};
  for (const [k, v] of Object.entries(b)) if (!SPECIAL.includes(k)) out[k] = v;
  return out;
}

/** True when writing `p` would branch the document instead of extending (or reviving) it. */
function isConflict(doc: StoredDoc, p: Pulled): boolean {
  const tree = decodeRevTree(doc.tree);
  if (tree.has(p.history[0])) return false;
  if (p.history.includes(doc.rev)) return false;
  // A deletion on top of another leaf, or meeting a local deletion, needs no resolution (Sync Gateway's allowConflictingTombstone).
  if (p.deleted && doc.deleted) return false;
  return true;
}

function replicated(p: Pulled, principal: Principal, history = p.history, body = p.body, deleted = p.deleted, follows = p.follows): WriteRequest {
  const b: Body = { ...userBody(body), _revisions: toRevisions(history) };
  if (deleted) b._deleted = true;
  return { id: p.id, body: b, newEdits: false, principal, follows };
}

function asError(r: WriteResult | HttpError): PullOutcome {
  return r instanceof HttpError ? { ok: false, error: r } : { ok: true, rev: r.rev };
}

export class LocalWriter {
  constructor(
    private readonly local: Collection,
    private readonly principal: () => Principal,
    private readonly resolve: ResolverFn,
  ) {}

  /** Writes a group of pulled revisions; each succeeds or fails alone. */
  async write(items: Pulled[]): Promise<PullOutcome[]> {
    const out: PullOutcome[] = new Array(items.length);
    const docs = await this.local.store.getDocs([...new Set(items.map((p) => p.id))]);
    const plain: number[] = [];
    const conflicts: number[] = [];
    const seen = new Set<string>();
    items.forEach((p, i) => {
      const doc = docs.get(p.id);
      // A second revision of one document in the group is judged after the first is written.
      if (seen.has(p.id)) { conflicts.push(i); return; }
      seen.add(p.id);
      (doc && isConflict(doc, p) ? conflicts : plain).push(i);
    });
    if (plain.length) {
      const results = await this.local.bulkWrite(plain.map((i) => replicated(items[i], this.principal())));
      results.forEach((r, k) => { out[plain[k]] = asError(r); });
    }
    for (const i of conflicts) {
      try {
        out[i] = await this.writeOne(items[i]);
      } catch (err) {
        out[i] = { ok: false, error: err instanceof HttpError ? err : new HttpError(500, (err as Error).message) };
      }
    }
    return out;
  }

  /**
   * The remote's winner `rev` is a non-winning leaf here while our winner is live: resolves the two.
   * Returns false when there is nothing to resolve (any more).
   */
  async resolveKnown(id: string, rev: string): Promise<boolean> {
    const doc = await this.local.store.getDoc(id);
    if (!doc || doc.deleted || doc.rev === rev) return false;
    const tree = decodeRevTree(doc.tree);
    if (!tree.has(rev) || !isLeaf(tree, rev)) return false;
    const view = await this.local.get(id, { rev });
    const p: Pulled = {
      id, history: treeHistory(tree, rev), deleted: view.deleted,
      body: view.deleted ? {} : JSON.parse(blipBody(view.body, view.attachments)) as Body,
    };
    const r = await this.writeOne(p, true);
    if (!r.ok) throw r.error;
    return true;
  }

  private async writeOne(p: Pulled, known = false): Promise<PullOutcome> {
    const doc = await this.local.store.getDoc(p.id);
    if (!doc || (!known && !isConflict(doc, p))) {
      const [r] = await this.local.bulkWrite([replicated(p, this.principal())]);
      return asError(r);
    }
    const localView = await this.local.get(p.id, { rev: doc.rev });
    const localDoc: Body = { _id: p.id, _rev: doc.rev, ...(localView.deleted ? { _deleted: true } : {}), ...JSON.parse(blipBody(localView.body, localView.attachments)) as Body };
    const remoteDoc: Body = { _id: p.id, _rev: p.history[0], ...(p.deleted ? { _deleted: true } : {}), ...p.body };
    const { kind, body } = this.resolve({ LocalDocument: localDoc, RemoteDocument: remoteDoc });
    let write: WriteRequest;
    if (kind === 'remote') {
      write = replicated(p, this.principal());
    } else {
      // The winner (local or merged body) as a child of the remote revision.
      const deleted = body._deleted === true;
      const props = userBody(body);
      const digestInput = canonicalJson(deleted ? { ...props, _deleted: true } : props);
      const newRev = createRevId(p.history[0], digestInput);
      // Attachments of the winner that came with the remote revision keep their bytes.
      write = replicated(p, this.principal(), [newRev, ...p.history], props, deleted, p.follows);
    }
    const [r] = await this.local.bulkWrite([write]);
    if (r instanceof HttpError) return { ok: false, error: r };
    // The losing local branches end in tombstones, so every replica agrees on the winner. The
    // tombstone of a revision is the same on every gateway (its id comes from parent and body).
    await this.tombstoneOthers(p.id, r.rev);
    return { ok: true, rev: r.rev, resolved: kind };
  }

  /** Tombstones every live leaf but `keep`; a leaf that moved on meanwhile (409) is left alone. */
  private async tombstoneOthers(id: string, keep: string): Promise<void> {
    for (let round = 0; round < 3; round++) {
      const doc = await this.local.store.getDoc(id);
      if (!doc) return;
      const others = liveLeaves(decodeRevTree(doc.tree)).map((l) => l.id).filter((l) => l !== keep);
      if (others.length === 0) return;
      const results = await this.local.bulkWrite(others.map((leaf) => ({ id, body: { _deleted: true }, newEdits: true, parentRev: leaf, principal: this.principal() })));
      const failed = results.find((t) => t instanceof HttpError && t.status !== 409);
      if (failed) throw failed;
    }
  }
}

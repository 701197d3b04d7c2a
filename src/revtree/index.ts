/**
 * Revision trees, as Sync Gateway keeps them per document (`db/revtree.go`).
 * Pure functions over plain data: no I/O, no clock.
 */

export interface RevInfo {
  id: string;
  /** Parent rev id, or null for a root (or for a node whose parent was pruned). */
  parent: string | null;
  deleted: boolean;
}

export type RevTree = Map<string, RevInfo>;

/** Generation of a (validated) rev id: the integer before the first '-'. */
export function genOf(rev: string): number {
  const dash = rev.indexOf('-');
  return dash > 0 ? Number(rev.slice(0, dash)) : 0;
}

function digestOf(rev: string): string {
  return rev.slice(rev.indexOf('-') + 1);
}

/** Orders revisions for winner selection: higher generation wins, then the greater digest string. */
export function compareRevs(a: string, b: string): number {
  const ga = genOf(a);
  const gb = genOf(b);
  if (ga !== gb) return ga - gb;
  const da = digestOf(a);
  const db = digestOf(b);
  return da < db ? -1 : da > db ? 1 : 0;
}

export function leaves(tree: RevTree): RevInfo[] {
  const parents = new Set<string>();
  for (const info of tree.values()) if (info.parent !== null) parents.add(info.parent);
  const out: RevInfo[] = [];
  for (const info of tree.values()) if (!parents.has(info.id)) out.push(info);
  return out;
}

export function isLeaf(tree: RevTree, rev: string): boolean {
  if (!tree.has(rev)) return false;
  for (const info of tree.values()) if (info.parent === rev) return false;
  return true;
}

/** A live leaf beats a deleted one; ties go to the higher generation, then the greater digest. */
export function winningRev(tree: RevTree): RevInfo | undefined {
  let best: RevInfo | undefined;
  for (const leaf of leaves(tree)) {
    if (best === undefined) { best = leaf; continue; }
    if (best.deleted !== leaf.deleted) {
      if (best.deleted) best = leaf;
      continue;
    }
    if (compareRevs(leaf.id, best.id) > 0) best = leaf;
  }
  return best;
}

/**
 * Every leaf in CouchDB's order (couch_doc:to_doc_info): live before deleted, then the higher
 * generation, then the greater digest; the winner comes first. `_changes?style=all_docs`,
 * `_conflicts` and `_deleted_conflicts` list leaves in this order.
 */
export function sortedLeaves(tree: RevTree): RevInfo[] {
  return leaves(tree).sort((a, b) => (a.deleted !== b.deleted ? (a.deleted ? 1 : -1) : compareRevs(b.id, a.id)));
}

/**
 * CouchDB's `latest=true`: the leaves descending from `rev` (itself when it is a leaf), in CouchDB's
 * leaf order, so the first is the one that would win among them. Empty when `rev` is unknown.
 */
export function latestLeaves(tree: RevTree, rev: string): string[] {
  if (!tree.has(rev)) return [];
  return sortedLeaves(tree).filter((l) => history(tree, l.id).includes(rev)).map((l) => l.id);
}

/** More than one live leaf: the document is in conflict. */
export function liveLeaves(tree: RevTree): RevInfo[] {
  return leaves(tree).filter((l) => !l.deleted);
}

/** Ancestry of `rev`, newest first, including `rev`; stops at a root, a pruned parent or `limit` entries. */
export function history(tree: RevTree, rev: string, limit = Infinity): string[] {
  const out: string[] = [];
  let cur: RevInfo | undefined = tree.get(rev);
  while (cur && out.length < limit) {
    out.push(cur.id);
    cur = cur.parent === null ? undefined : tree.get(cur.parent);
  }
  return out;
}

export interface AddHistoryResult {
  /** Revisions that were new to the tree, newest first. Empty when the newest was already known. */
  added: string[];
  /** The existing revision the new chain hangs from, or null when it starts a new root. */
  attachedTo: string | null;
}

/**
 * Adds a replicator-style history (newest first, consecutive generations) to the tree: the first
 * already-known id is where the new chain attaches; only the newest revision may be a tombstone.
 */
export function addHistory(tree: RevTree, historyNewestFirst: string[], deleted: boolean): AddHistoryResult {
  let known = historyNewestFirst.length;
  for (let i = 0; i < historyNewestFirst.length; i++) {
    if (tree.has(historyNewestFirst[i])) { known = i; break; }
  }
  const added = historyNewestFirst.slice(0, known);
  const attachedTo = known < historyNewestFirst.length ? historyNewestFirst[known] : null;
  for (let i = added.length - 1; i >= 0; i--) {
    const parent = i + 1 < historyNewestFirst.length ? historyNewestFirst[i + 1] : null;
    tree.set(added[i], { id: added[i], parent, deleted: i === 0 ? deleted : false });
  }
  return { added, attachedTo };
}

/**
 * Drops every node whose distance to its nearest leaf is more than `revsLimit` (a leaf is at 1), as
 * Sync Gateway's pruneRevisions does. Leaves are always kept. Returns the ids removed.
 */
export function prune(tree: RevTree, revsLimit: number): string[] {
  if (revsLimit <= 0 || tree.size <= revsLimit) return [];
  const depth = new Map<string, number>();
  for (const leaf of leaves(tree)) {
    let d = 1;
    let cur: RevInfo | undefined = leaf;
    while (cur) {
      const seen = depth.get(cur.id);
      if (seen !== undefined && seen <= d) break;
      depth.set(cur.id, d);
      d++;
      cur = cur.parent === null ? undefined : tree.get(cur.parent);
    }
  }
  const removed: string[] = [];
  for (const [id, d] of depth) {
    if (d > revsLimit) { tree.delete(id); removed.push(id); }
  }
  if (removed.length > 0) {
    for (const info of tree.values()) {
      if (info.parent !== null && !tree.has(info.parent)) info.parent = null;
    }
  }
  return removed;
}

/** Compact storage form, Sync Gateway style: parallel arrays of revs and parent indexes. */
export interface EncodedRevTree { revs: string[]; parents: number[]; deleted?: number[] }

export function encodeRevTree(tree: RevTree): EncodedRevTree {
  const revs = [...tree.keys()];
  const index = new Map<string, number>();
  revs.forEach((r, i) => index.set(r, i));
  const parents: number[] = [];
  const deleted: number[] = [];
  revs.forEach((r, i) => {
    const info = tree.get(r)!;
    parents.push(info.parent === null ? -1 : index.get(info.parent) ?? -1);
    if (info.deleted) deleted.push(i);
  });
  return deleted.length ? { revs, parents, deleted } : { revs, parents };
}

export function decodeRevTree(enc: EncodedRevTree): RevTree {
  const tree: RevTree = new Map();
  const del = new Set(enc.deleted ?? []);
  enc.revs.forEach((r, i) => {
    const p = enc.parents[i];
    tree.set(r, { id: r, parent: p >= 0 ? enc.revs[p] : null, deleted: del.has(i) });
  });
  return tree;
}

export function cloneRevTree(tree: RevTree): RevTree {
  const out: RevTree = new Map();
  for (const [k, v] of tree) out.set(k, { ...v });
  return out;
}

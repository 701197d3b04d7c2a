/**
 * Revision trees under replication (issue 8, item 3): fast-check properties over the pure code in
 * src/revtree, phrased the way replicas use it.
 *
 *  - merge is order-independent: a tree is the union of the histories it has received, so merging
 *    replica A into B or B into A, in any order, any number of times, gives the same tree;
 *  - the winner is deterministic: a function of the leaves only, never of insertion order;
 *  - pruning keeps every leaf (with its deleted flag) and never more than `revs_limit` ancestors of
 *    any leaf: every revision it keeps is one of the `revs_limit` newest of some leaf's branch.
 *
 * Seeded: a failure prints fast-check's seed and path; replay with
 *   FC_SEED=<seed> FC_PATH=<path> node --import tsx --test test/unit/revtree-properties.test.ts
 * FC_SEED=random draws a fresh seed (printed on failure); FC_RUNS sets the number of runs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addHistory, cloneRevTree, decodeRevTree, encodeRevTree, genOf, history, leaves, prune, sortedLeaves, winningRev,
  type RevTree,
} from '../../src/revtree/index.ts';

function params<T>(): fc.Parameters<T> {
  const p: fc.Parameters<T> = { numRuns: Number(process.env.FC_RUNS ?? 500) };
  const seed = process.env.FC_SEED;
  if (seed === undefined || seed === '') p.seed = 0x8_2ee5;
  else if (seed !== 'random') p.seed = Number(seed);
  if (process.env.FC_PATH) p.path = process.env.FC_PATH;
  return p;
}

function check<Ts extends [unknown, ...unknown[]]>(prop: fc.IProperty<Ts>): void {
  fc.assert(prop, params<Ts>());
}

// ---------------------------------------------------------------------------------------------
// A model of replicas editing one document: each edit extends some revision it knows with a new
// child (an update or a tombstone); replicas exchange full (to-root) histories of their leaves.

type Op =
  | { kind: 'edit'; replica: number; from: number; deleted: boolean; digest: number }
  | { kind: 'sync'; from: number; to: number };

interface World {
  /** Each replica's tree, merged only through addHistory. */
  trees: RevTree[];
  /** Every revision ever created, with its true parent. */
  all: Map<string, { parent: string | null; deleted: boolean }>;
}

const editArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('edit' as const), replica: fc.nat(2), from: fc.nat(), deleted: fc.boolean(),
  digest: fc.integer({ min: 0, max: 0xffff }),
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: editArb },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }) },
);
/** Operations starting with an edit, so that there is always a document. */
const opsArb = fc.tuple(editArb, fc.array(opArb, { maxLength: 40 })).map(([first, rest]) => [first, ...rest]);

/** Full history of `rev` in a tree, newest first (what `_revisions` carries with no revs limit). */
function fullHistory(tree: RevTree, rev: string): string[] {
  return history(tree, rev);
}

/** Pushes every leaf of `from` into `to`, as a replicator does (revs_diff, then the full history). */
function replicate(from: RevTree, to: RevTree): void {
  for (const leaf of leaves(from)) addHistory(to, fullHistory(from, leaf.id), leaf.deleted);
}

function run(ops: Op[]): World {
  const trees: RevTree[] = [new Map(), new Map(), new Map()];
  const all = new Map<string, { parent: string | null; deleted: boolean }>();
  let n = 0;
  for (const op of ops) {
    if (op.kind === 'sync') { replicate(trees[op.from], trees[op.to]); continue; }
    const tree = trees[op.replica];
    const known = [...tree.keys()];
    const parent = known.length === 0 ? null : known[op.from % known.length];
    const gen = parent === null ? 1 : genOf(parent) + 1;
    // The counter keeps ids unique; the random prefix makes digest order (conflict winners) random.
    const id = `${gen}-${op.digest.toString(16).padStart(4, '0')}${(n++).toString(36)}`;
    const hist = parent === null ? [id] : [id, ...fullHistory(tree, parent)];
    addHistory(tree, hist, op.deleted);
    all.set(id, { parent, deleted: op.deleted });
  }
  return { trees, all };
}

/** A tree as a set of `rev<parent` edges plus the leaves' deleted flags: what must agree. */
function shape(tree: RevTree): { edges: string[]; leaves: string[] } {
  return {
    edges: [...tree.values()].map((n) => `${n.id}<${n.parent ?? ''}`).sort(),
    leaves: leaves(tree).map((l) => `${l.id}${l.deleted ? '†' : ''}`).sort(),
  };
}

const worldArb = opsArb.map(run);

/** A permutation of 0..n-1 from random keys. */
function permutation(n: number, keys: number[]): number[] {
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[a % Math.max(keys.length, 1)] ?? a) - (keys[b % Math.max(keys.length, 1)] ?? b) || a - b);
}

describe('revtree properties under replication (fast-check)', () => {
  it('merge is commutative: A into B equals B into A', () => {
    check(fc.property(worldArb, ({ trees: [a, b] }) => {
      const ab = cloneRevTree(b);
      replicate(a, ab);
      const ba = cloneRevTree(a);
      replicate(b, ba);
      assert.deepEqual(shape(ab), shape(ba));
      assert.equal(winningRev(ab)?.id, winningRev(ba)?.id);
    }));
  });

  it('merge is associative and idempotent: three replicas merged in any order, twice, agree', () => {
    check(fc.property(worldArb, fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), ({ trees }, keys) => {
      const results = [permutation(3, keys), permutation(3, keys.slice(3)), [2, 1, 0]].map((order) => {
        const t: RevTree = new Map();
        for (const i of order) replicate(trees[i], t);
        for (const i of order) replicate(trees[i], t); // again: nothing changes
        return t;
      });
      for (const t of results.slice(1)) {
        assert.deepEqual(shape(t), shape(results[0]));
        assert.equal(winningRev(t)?.id, winningRev(results[0])?.id);
      }
      // Fully synced replicas hold exactly the union of what they were given, with true parents.
      const union = new Set(trees.flatMap((t) => [...t.keys()]));
      assert.deepEqual(new Set(results[0].keys()), union);
    }));
  });

  it('merged trees keep every revision\'s true parent, and leaves with their deleted flag', () => {
    check(fc.property(worldArb, ({ trees, all }) => {
      const t: RevTree = new Map();
      for (const tree of trees) replicate(tree, t);
      for (const n of t.values()) assert.equal(n.parent, all.get(n.id)!.parent, n.id);
      for (const l of leaves(t)) assert.equal(l.deleted, all.get(l.id)!.deleted, l.id);
    }));
  });

  it('the winner is deterministic: insertion order, encoding and the replica it was computed on do not matter', () => {
    check(fc.property(worldArb, fc.array(fc.nat(), { maxLength: 64 }), ({ trees }, keys) => {
      const merged: RevTree = new Map();
      for (const tree of trees) replicate(tree, merged);
      const win = winningRev(merged);
      assert.ok(win);
      // Rebuild the same nodes in a random insertion order.
      const nodes = [...merged.values()];
      const shuffled: RevTree = new Map(permutation(nodes.length, keys).map((i) => [nodes[i].id, { ...nodes[i] }]));
      assert.deepEqual(winningRev(shuffled), win);
      // CouchDB's leaf order starts with the winner and does not depend on insertion order either.
      assert.deepEqual(sortedLeaves(merged)[0], win);
      assert.deepEqual(sortedLeaves(shuffled).map((l) => l.id), sortedLeaves(merged).map((l) => l.id));
      assert.deepEqual(winningRev(decodeRevTree(JSON.parse(JSON.stringify(encodeRevTree(merged))))), win);
      // The winner depends on the leaves alone: a tree of just the leaves picks the same one.
      const onlyLeaves: RevTree = new Map(leaves(merged).map((l) => [l.id, { ...l, parent: null }]));
      assert.equal(winningRev(onlyLeaves)?.id, win.id);
      // Live beats deleted; then the higher generation; then the greater digest.
      for (const l of leaves(merged)) {
        if (l.id === win.id) continue;
        if (l.deleted !== win.deleted) assert.equal(win.deleted, false);
        else assert.ok(genOf(l.id) < genOf(win.id) || (genOf(l.id) === genOf(win.id) && l.id.slice(l.id.indexOf('-')) < win.id.slice(win.id.indexOf('-'))));
      }
    }));
  });

  it('pruning keeps every leaf and never more than revs_limit ancestors of any leaf', () => {
    check(fc.property(worldArb, fc.integer({ min: 1, max: 12 }), ({ trees }, limit) => {
      const t: RevTree = new Map();
      for (const tree of trees) replicate(tree, t);
      const before = cloneRevTree(t);
      prune(t, limit);
      assert.deepEqual(shape(t).leaves, shape(before).leaves, 'same leaves, same deleted flags');
      assert.equal(winningRev(t)?.id, winningRev(before)?.id);
      // Every kept revision is among the `limit` newest of some leaf's branch ...
      const near = new Set(leaves(before).flatMap((l) => history(before, l.id, limit)));
      for (const id of t.keys()) assert.ok(near.has(id), `${id} is more than ${limit} from every leaf`);
      // ... and every one of those is kept, so each leaf still has min(limit, depth) revisions.
      for (const id of near) assert.ok(t.has(id), `${id} is within ${limit} of a leaf`);
      for (const l of leaves(t)) assert.ok(history(t, l.id).length >= Math.min(limit, history(before, l.id).length));
      // A single branch keeps exactly `limit`.
      if (leaves(before).length === 1) assert.equal(t.size, Math.min(limit, before.size));
      assert.ok(t.size <= leaves(t).length * limit);
    }));
  });

  it('pruning after every write and every replicated history (as the database does) never loses a leaf', () => {
    // The write path prunes on every revision it adds. A revision that is a leaf stays in the tree
    // until a child of it arrives: a dropped leaf would come back on the next replication (the peer
    // still has it, _revs_diff reports it missing) and replicas would disagree on _conflicts.
    check(fc.property(opsArb, fc.integer({ min: 1, max: 6 }), (ops, limit) => {
      const trees: RevTree[] = [new Map(), new Map(), new Map()];
      let n = 0;
      const add = (tree: RevTree, hist: string[], deleted: boolean) => {
        const leafSetBefore = new Set(leaves(tree).map((l) => l.id));
        addHistory(tree, hist, deleted);
        prune(tree, limit);
        const now = new Set(leaves(tree).map((l) => l.id));
        assert.ok(tree.has(hist[0]), 'the newest revision of a history is kept');
        for (const l of leafSetBefore) if (!hist.includes(l)) assert.ok(now.has(l), `leaf ${l} survived`);
        const near = new Set([...now].flatMap((l) => history(tree, l, limit)));
        for (const id of tree.keys()) assert.ok(near.has(id), `${id} is more than ${limit} from every leaf`);
      };
      for (const op of ops) {
        if (op.kind === 'sync') {
          for (const leaf of leaves(trees[op.from])) add(trees[op.to], history(trees[op.from], leaf.id), leaf.deleted);
          continue;
        }
        const tree = trees[op.replica];
        const known = [...tree.keys()];
        const parent = known.length === 0 ? null : known[op.from % known.length];
        const id = `${parent === null ? 1 : genOf(parent) + 1}-${op.digest.toString(16).padStart(4, '0')}${(n++).toString(36)}`;
        add(tree, parent === null ? [id] : [id, ...history(tree, parent)], op.deleted);
      }
    }));
  });
});

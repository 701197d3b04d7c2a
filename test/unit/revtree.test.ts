/**
 * Revision trees (spec §6.2): property tests over random replicated histories, plus examples.
 *
 * Property runs are seeded: a failure prints fast-check's `seed` and `path`; replay it with
 *   FC_SEED=<seed> FC_PATH=<path> node --import tsx --test test/unit/revtree.test.ts
 * FC_SEED=random picks a fresh seed per run (it is printed on failure), FC_RUNS changes the run count.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addHistory, cloneRevTree, compareRevs, decodeRevTree, encodeRevTree, genOf, history, isLeaf, latestLeaves, leaves,
  liveLeaves, prune, sortedLeaves, winningRev,
} from '../../src/revtree/index.ts';
import type { EncodedRevTree, RevInfo, RevTree } from '../../src/revtree/index.ts';

// ---------------------------------------------------------------------------------------------
// Property-run parameters

const FC_PARAMS: fc.Parameters<unknown> = (() => {
  const p: fc.Parameters<unknown> = { numRuns: Number(process.env.FC_RUNS ?? 300) };
  const seed = process.env.FC_SEED;
  if (seed === undefined || seed === '') p.seed = 0x5eed_7e3e;
  else if (seed !== 'random') p.seed = Number(seed);
  if (process.env.FC_PATH) p.path = process.env.FC_PATH;
  return p;
})();

function check<Ts extends [unknown, ...unknown[]]>(prop: fc.IProperty<Ts>): void {
  fc.assert(prop, FC_PARAMS as fc.Parameters<Ts>);
}

// ---------------------------------------------------------------------------------------------
// Models, independent of the code under test

interface UNode { id: string; parent: string | null; deleted: boolean }

/** A "universe": every revision any replica ever made, with true parents. Nodes are in creation order. */
interface Universe { nodes: UNode[]; byId: Map<string, UNode> }

/** Reference winner rule (spec §6.2), written without compareRevs: live > deleted, then gen, then digest. */
function referenceWinner(ls: { id: string; deleted: boolean }[]): string | undefined {
  const key = (r: { id: string; deleted: boolean }) => {
    const dash = r.id.indexOf('-');
    return { live: r.deleted ? 0 : 1, gen: parseInt(r.id.slice(0, dash), 10), digest: r.id.slice(dash + 1) };
  };
  let best: { id: string; deleted: boolean } | undefined;
  for (const r of ls) {
    if (!best) { best = r; continue; }
    const a = key(r);
    const b = key(best);
    if (a.live !== b.live ? a.live > b.live : a.gen !== b.gen ? a.gen > b.gen : a.digest > b.digest) best = r;
  }
  return best?.id;
}

/** Leaves of a plain node list: nodes that no other node names as parent. */
function modelLeaves(nodes: Iterable<UNode>): UNode[] {
  const list = [...nodes];
  const parents = new Set(list.map((n) => n.parent).filter((p): p is string => p !== null));
  return list.filter((n) => !parents.has(n.id));
}

/** Path from a node to its root, newest first. */
function pathToRoot(u: Universe, id: string): string[] {
  const out: string[] = [];
  for (let n = u.byId.get(id); n; n = n.parent === null ? undefined : u.byId.get(n.parent)) out.push(n.id);
  return out;
}

/** Encoded tree as a set of `rev<parent[†]` strings, independent of array order. */
function asSet(enc: EncodedRevTree): Set<string> {
  const del = new Set(enc.deleted ?? []);
  return new Set(enc.revs.map((r, i) => {
    const p = enc.parents[i];
    return `${r}<${p >= 0 ? enc.revs[p] : ''}${del.has(i) ? '†' : ''}`;
  }));
}

/** Structure only (no deleted flags), plus the deleted flags of leaves. */
function structureAndLeafFlags(tree: RevTree): { edges: Set<string>; leafFlags: Set<string> } {
  return {
    edges: new Set([...tree.values()].map((n) => `${n.id}<${n.parent ?? ''}`)),
    leafFlags: new Set(leaves(tree).map((l) => `${l.id}${l.deleted ? '†' : ''}`)),
  };
}

/** Distance from each node to its nearest descendant leaf (a leaf is at 1), by the definition. */
function modelDepths(tree: RevTree): Map<string, number> {
  const children = new Map<string, string[]>();
  for (const n of tree.values()) {
    if (n.parent !== null && tree.has(n.parent)) {
      const list = children.get(n.parent) ?? [];
      list.push(n.id);
      children.set(n.parent, list);
    }
  }
  const memo = new Map<string, number>();
  const depth = (id: string): number => {
    const hit = memo.get(id);
    if (hit !== undefined) return hit;
    const kids = children.get(id);
    const d = kids ? 1 + Math.min(...kids.map(depth)) : 1;
    memo.set(id, d);
    return d;
  };
  for (const id of tree.keys()) depth(id);
  return memo;
}

function treeFrom(nodes: Iterable<UNode>): RevTree {
  const t: RevTree = new Map();
  for (const n of nodes) t.set(n.id, { ...n });
  return t;
}

function snapshot(tree: RevTree): [string, RevInfo][] {
  return [...tree.entries()].map(([k, v]) => [k, { ...v }] as [string, RevInfo]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Generators

/**
 * A random universe: node 0 is a root; each next node is a child of an earlier node (so siblings of
 * the same generation, i.e. conflicts, are common) or, rarely, a new disconnected root. Root
 * generations vary up to 12 so that generations ≥ 10 (numeric vs string order) occur.
 * `internalTombstones` lets an internal node be deleted (a tombstone that was later resurrected).
 */
function universeArb(opts: { internalTombstones: boolean; maxNodes?: number }): fc.Arbitrary<Universe> {
  const step = fc.record({
    parent: fc.nat(),
    newRoot: fc.integer({ min: 0, max: 14 }), // 0 → new root
    rootGen: fc.integer({ min: 1, max: 12 }),
    digest: fc.integer({ min: 0, max: 0xfff }),
    deleted: fc.integer({ min: 0, max: 2 }), // 0 → tombstone (one in three)
  });
  return fc.array(step, { minLength: 1, maxLength: opts.maxNodes ?? 30 }).map((steps) => {
    const nodes: UNode[] = [];
    const gens: number[] = [];
    steps.forEach((s, i) => {
      const root = i === 0 || s.newRoot === 0;
      const parentIdx = root ? -1 : s.parent % i;
      const gen = root ? s.rootGen : gens[parentIdx] + 1;
      // The index suffix keeps ids unique; the random prefix makes digest order random.
      const id = `${gen}-${s.digest.toString(16).padStart(3, '0')}${i.toString(36)}`;
      gens.push(gen);
      nodes.push({ id, parent: root ? null : nodes[parentIdx].id, deleted: s.deleted === 0 });
    });
    const parents = new Set(nodes.map((n) => n.parent));
    if (!opts.internalTombstones) for (const n of nodes) if (parents.has(n.id)) n.deleted = false;
    return { nodes, byId: new Map(nodes.map((n) => [n.id, n])) };
  });
}

interface Replication { u: Universe; histories: { revs: string[]; deleted: boolean }[]; orderA: number[]; orderB: number[] }

/** A universe, a random list of full (to-root) replicated histories, and two random merge orders. */
function replicationArb(internalTombstones: boolean): fc.Arbitrary<Replication> {
  return fc.record({
    u: universeArb({ internalTombstones }),
    picks: fc.array(fc.nat(), { minLength: 1, maxLength: 25 }),
    keysA: fc.array(fc.nat({ max: 1000 }), { minLength: 25, maxLength: 25 }),
    keysB: fc.array(fc.nat({ max: 1000 }), { minLength: 25, maxLength: 25 }),
    allLeaves: fc.boolean(),
  }).map(({ u, picks, keysA, keysB, allLeaves }) => {
    const tops = picks.map((p) => u.nodes[p % u.nodes.length].id);
    // Half the time every universe leaf is replicated too, so the merged tree is the whole universe.
    if (allLeaves) tops.push(...modelLeaves(u.nodes).map((n) => n.id));
    const histories = tops.map((id) => ({ revs: pathToRoot(u, id), deleted: u.byId.get(id)!.deleted }));
    const order = (keys: number[]) =>
      histories.map((_, i) => i).sort((a, b) => (keys[a % keys.length] - keys[b % keys.length]) || a - b);
    return { u, histories, orderA: order(keysA), orderB: order(keysB) };
  });
}

function merge(r: Replication, order: number[]): RevTree {
  const tree: RevTree = new Map();
  for (const i of order) addHistory(tree, r.histories[i].revs, r.histories[i].deleted);
  return tree;
}

/** The tree a full set of to-root histories must produce: the union of the paths, with true parents. */
function expectedMerge(r: Replication): UNode[] {
  const ids = new Set(r.histories.flatMap((h) => h.revs));
  return r.u.nodes.filter((n) => ids.has(n.id));
}

/** A random tree built by merging random histories (the way trees arise in practice). */
const treeArb: fc.Arbitrary<RevTree> = replicationArb(true).map((r) => merge(r, r.orderA));

// ---------------------------------------------------------------------------------------------

describe('revtree properties (fast-check)', () => {
  it('(1) merging the same to-root histories in any order gives the same tree and winner', () => {
    check(fc.property(replicationArb(false), (r) => {
      const a = merge(r, r.orderA);
      const b = merge(r, r.orderB);
      const want = asSet(encodeRevTree(treeFrom(expectedMerge(r))));
      assert.deepEqual(asSet(encodeRevTree(a)), want);
      assert.deepEqual(asSet(encodeRevTree(b)), want);
      assert.equal(winningRev(a)?.id, winningRev(b)?.id);
      assert.equal(winningRev(a)?.id, referenceWinner(modelLeaves(expectedMerge(r))));
    }));
  });

  it('(1b) with resurrected tombstones, order still fixes the structure, the leaves\' flags and the winner', () => {
    // An internal tombstone's own flag depends on whether it first arrived as a history's newest rev
    // (deleted) or inside a longer history (not deleted); only leaves' flags matter for anything.
    check(fc.property(replicationArb(true), (r) => {
      const a = merge(r, r.orderA);
      const b = merge(r, r.orderB);
      assert.deepEqual(structureAndLeafFlags(a), structureAndLeafFlags(b));
      assert.equal(winningRev(a)?.id, winningRev(b)?.id);
      assert.equal(winningRev(a)?.id, referenceWinner(leaves(a)));
    }));
  });

  it('addHistory reports the new revs newest first and where they attach', () => {
    check(fc.property(replicationArb(true), (r) => {
      const tree: RevTree = new Map();
      for (const i of r.orderA) {
        const h = r.histories[i];
        const before = new Set(tree.keys());
        const firstKnown = h.revs.findIndex((id) => before.has(id));
        const res = addHistory(tree, h.revs, h.deleted);
        const cut = firstKnown < 0 ? h.revs.length : firstKnown;
        assert.deepEqual(res.added, h.revs.slice(0, cut));
        assert.equal(res.attachedTo, firstKnown < 0 ? null : h.revs[firstKnown]);
        assert.equal(tree.size, before.size + res.added.length);
        res.added.forEach((id, k) => {
          assert.equal(tree.get(id)!.parent, h.revs[k + 1] ?? null);
          assert.equal(tree.get(id)!.deleted, k === 0 ? h.deleted : false);
        });
      }
    }));
  });

  it('(2) the winner is a leaf chosen by: live beats deleted, then generation, then digest', () => {
    check(fc.property(treeArb, fc.array(fc.nat(), { maxLength: 40 }), (tree, keys) => {
      const win = winningRev(tree);
      const ls = leaves(tree);
      assert.ok(win, 'a non-empty tree has a winner');
      assert.ok(isLeaf(tree, win.id));
      assert.equal(win.id, referenceWinner(ls));
      if (ls.some((l) => !l.deleted)) assert.equal(win.deleted, false, 'a live leaf beats any tombstone');
      for (const l of ls) {
        if (l.deleted === win.deleted && l.id !== win.id) assert.ok(compareRevs(win.id, l.id) > 0);
      }
      // Deterministic: independent of the order the map holds its entries in.
      const entries = [...tree.values()];
      const shuffled = entries
        .map((n, i) => ({ n, k: keys[i % Math.max(keys.length, 1)] ?? i, i }))
        .sort((x, y) => (x.k - y.k) || (y.i - x.i))
        .map((x) => x.n);
      assert.equal(winningRev(treeFrom(shuffled))?.id, win.id);
      assert.equal(winningRev(treeFrom([...entries].reverse()))?.id, win.id);
    }));
  });

  it('compareRevs is a total order: antisymmetric, numeric generations, then digest strings', () => {
    const rev = fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.string({ minLength: 1, maxLength: 6, unit: fc.constantFrom(...'0123456789abcdef') }))
      .map(([g, d]) => `${g}-${d}`);
    check(fc.property(rev, rev, rev, (a, b, c) => {
      assert.equal(Math.sign(compareRevs(a, b)) + Math.sign(compareRevs(b, a)), 0); // a sum: 0 and -0 differ to strict equality
      assert.equal(compareRevs(a, a), 0);
      if (genOf(a) !== genOf(b)) assert.equal(Math.sign(compareRevs(a, b)), Math.sign(genOf(a) - genOf(b)));
      if (compareRevs(a, b) <= 0 && compareRevs(b, c) <= 0) assert.ok(compareRevs(a, c) <= 0);
    }));
  });

  it('(3) prune keeps exactly the nodes within `limit` of some leaf, every leaf, and re-roots orphans', () => {
    check(fc.property(treeArb, fc.integer({ min: 1, max: 8 }), (tree, limit) => {
      const before = cloneRevTree(tree);
      const depths = modelDepths(before);
      const beforeLeaves = new Set(leaves(before).map((l) => l.id));
      const removed = prune(tree, limit);

      const wantKept = [...before.keys()].filter((id) => depths.get(id)! <= limit);
      assert.deepEqual(new Set(tree.keys()), new Set(wantKept));
      assert.deepEqual(new Set(removed), new Set([...before.keys()].filter((id) => !tree.has(id))));
      assert.equal(removed.length, before.size - tree.size);
      assert.deepEqual(new Set(leaves(tree).map((l) => l.id)), beforeLeaves, 'leaves are unchanged');
      for (const leaf of beforeLeaves) {
        // Nodes within `limit` of a leaf are kept: the first `limit` of its old history survive.
        const old = history(before, leaf);
        assert.deepEqual(history(tree, leaf).slice(0, limit), old.slice(0, limit));
        // Whatever lies further up the branch is only there because it is near another leaf.
        for (const id of history(tree, leaf)) assert.ok(depths.get(id)! <= limit);
      }
      for (const n of tree.values()) {
        const was = before.get(n.id)!;
        assert.equal(n.deleted, was.deleted);
        assert.equal(n.parent, was.parent !== null && tree.has(was.parent) ? was.parent : null);
      }
      assert.deepEqual(prune(tree, limit), [], 'pruning twice removes nothing more');
      assert.equal(winningRev(tree)?.id, winningRev(before)?.id, 'pruning never changes the winner');
    }));
  });

  it('(3b) on a tree with one branch, no branch keeps more than `limit` revisions', () => {
    const chain = fc.record({ len: fc.integer({ min: 1, max: 60 }), limit: fc.integer({ min: 1, max: 70 }), dead: fc.boolean() });
    check(fc.property(chain, ({ len, limit, dead }) => {
      const tree: RevTree = new Map();
      const revs = Array.from({ length: len }, (_, i) => `${len - i}-d${len - i}`);
      addHistory(tree, revs, dead);
      const removed = prune(tree, limit);
      const leaf = revs[0];
      assert.ok(tree.has(leaf));
      assert.equal(tree.get(leaf)!.deleted, dead);
      assert.deepEqual(history(tree, leaf), revs.slice(0, Math.min(len, limit)));
      assert.deepEqual(removed.sort(), revs.slice(Math.min(len, limit)).sort());
    }));
  });

  it('(3c) with several branches, every leaf keeps at least min(limit, its depth) revisions and no node deeper than limit', () => {
    // "history(tree, leaf).length <= limit" does not hold on branched trees: an ancestor shared with
    // a shorter branch is kept (SG measures each node's depth to its *nearest* leaf). See the example
    // 'prune keeps an ancestor shared with a short branch'.
    check(fc.property(treeArb, fc.integer({ min: 1, max: 8 }), (tree, limit) => {
      const before = cloneRevTree(tree);
      prune(tree, limit);
      const depths = modelDepths(tree);
      for (const d of depths.values()) assert.ok(d <= limit);
      for (const l of leaves(tree)) {
        assert.ok(history(tree, l.id).length >= Math.min(limit, history(before, l.id).length));
      }
    }));
  });

  it('(4) encode/decode round trip, also through JSON text', () => {
    check(fc.property(treeArb, (tree) => {
      const enc = encodeRevTree(tree);
      assert.equal(enc.revs.length, enc.parents.length);
      assert.equal(new Set(enc.revs).size, enc.revs.length);
      assert.deepEqual(snapshot(decodeRevTree(enc)), snapshot(tree));
      assert.deepEqual(snapshot(decodeRevTree(JSON.parse(JSON.stringify(enc)) as EncodedRevTree)), snapshot(tree));
      assert.deepEqual(encodeRevTree(decodeRevTree(enc)), enc);
      if (![...tree.values()].some((n) => n.deleted)) assert.equal('deleted' in enc, false);
    }));
  });

  it('(4b) encode/decode round trip after pruning (orphaned parents become roots)', () => {
    check(fc.property(treeArb, fc.integer({ min: 1, max: 4 }), (tree, limit) => {
      prune(tree, limit);
      assert.deepEqual(snapshot(decodeRevTree(encodeRevTree(tree))), snapshot(tree));
    }));
  });

  it('(5) adding a history whose newest rev is already present adds nothing', () => {
    check(fc.property(treeArb, fc.nat(), fc.boolean(), fc.array(fc.nat({ max: 99 }), { maxLength: 4 }), (tree, pick, deleted, junk) => {
      const ids = [...tree.keys()];
      const newest = ids[pick % ids.length];
      // Its known ancestry, followed by revs the tree has never seen (a longer history than ours).
      const older = history(tree, newest).slice(1);
      const gen = genOf(older.at(-1) ?? newest);
      const hist = [newest, ...older, ...junk.map((j, k) => `${gen - k - 1}-unknown${j}`)];
      const before = snapshot(tree);
      const res = addHistory(tree, hist, deleted);
      assert.deepEqual(res, { added: [], attachedTo: newest });
      assert.deepEqual(snapshot(tree), before);
    }));
  });
});

// ---------------------------------------------------------------------------------------------

function build(...histories: [string[], boolean?][]): RevTree {
  const t: RevTree = new Map();
  for (const [h, d] of histories) addHistory(t, h, d ?? false);
  return t;
}

describe('revtree examples', () => {
  it('genOf parses the generation, 0 when there is none', () => {
    assert.equal(genOf('1-abc'), 1);
    assert.equal(genOf('123-abc'), 123);
    assert.equal(genOf('abc'), 0);
  });

  it('a conflict is won by the greater digest, whatever the insertion order', () => {
    const a = build([['2-abc', '1-x']], [['2-abd', '1-x']]);
    const b = build([['2-abd', '1-x']], [['2-abc', '1-x']]);
    assert.equal(winningRev(a)?.id, '2-abd');
    assert.equal(winningRev(b)?.id, '2-abd');
    assert.deepEqual(liveLeaves(a).map((l) => l.id).sort(), ['2-abc', '2-abd']);
  });

  it('digests compare as strings: "b" beats "aaaa"; but generations compare as numbers: 10 beats 9', () => {
    assert.equal(winningRev(build([['2-aaaa', '1-x']], [['2-b', '1-x']]))?.id, '2-b');
    const deep = Array.from({ length: 10 }, (_, i) => `${10 - i}-a${10 - i}`);
    const t = build([deep], [['9-zzz', ...deep.slice(2)]]);
    assert.equal(winningRev(t)?.id, '10-a10');
    assert.ok(compareRevs('10-a', '9-z') > 0);
  });

  it('sortedLeaves: CouchDB\'s order (live first, then generation and digest descending); latestLeaves: those a revision led to', () => {
    const t = build(
      [['3-c', '2-b', '1-a']], [['3-e', '2-d', '1-a'], true], [['2-f', '1-a']], [['2-g', '1-a']], [['4-h', '3-x', '2-d', '1-a'], true],
    );
    assert.deepEqual(sortedLeaves(t).map((l) => l.id), ['3-c', '2-g', '2-f', '4-h', '3-e']);
    assert.equal(sortedLeaves(t)[0].id, winningRev(t)?.id);
    assert.deepEqual(latestLeaves(t, '2-b'), ['3-c']);
    assert.deepEqual(latestLeaves(t, '2-d'), ['4-h', '3-e']);
    assert.deepEqual(latestLeaves(t, '1-a'), ['3-c', '2-g', '2-f', '4-h', '3-e']);
    assert.deepEqual(latestLeaves(t, '2-f'), ['2-f']);
    assert.deepEqual(latestLeaves(t, '9-nope'), []);
  });

  it('a tombstone loses to a live leaf of lower generation', () => {
    const t = build([['4-dead', '3-c', '2-b', '1-a'], true], [['2-live', '1-a']]);
    assert.equal(winningRev(t)?.id, '2-live');
    assert.deepEqual(liveLeaves(t).map((l) => l.id), ['2-live']);
    // Deleting the live branch too: the highest tombstone wins.
    addHistory(t, ['3-gone', '2-live', '1-a'], true);
    assert.deepEqual(winningRev(t), { id: '4-dead', parent: '3-c', deleted: true });
    assert.deepEqual(liveLeaves(t), []);
  });

  it('among tombstones, generation then digest decide', () => {
    const t = build([['2-b', '1-a'], true], [['2-c', '1-a'], true], [['1-z'], true]);
    assert.equal(winningRev(t)?.id, '2-c');
  });

  it('resurrection: a child of a tombstone makes the document live again', () => {
    const t = build([['2-del', '1-a'], true]);
    assert.equal(winningRev(t)?.deleted, true);
    const res = addHistory(t, ['3-back', '2-del', '1-a'], false);
    assert.deepEqual(res, { added: ['3-back'], attachedTo: '2-del' });
    assert.equal(isLeaf(t, '2-del'), false);
    assert.deepEqual(leaves(t).map((l) => l.id), ['3-back']);
    assert.deepEqual(winningRev(t), { id: '3-back', parent: '2-del', deleted: false });
    assert.deepEqual(history(t, '3-back'), ['3-back', '2-del', '1-a']);
  });

  it('disconnected resurrection: a new generation-1 root beats the old tombstone of higher generation', () => {
    const t = build([['3-old', '2-b', '1-a'], true], [['1-new']]);
    assert.equal(winningRev(t)?.id, '1-new');
    assert.deepEqual(leaves(t).map((l) => l.id).sort(), ['1-new', '3-old']);
  });

  it('an empty tree has no winner and no leaves', () => {
    const t: RevTree = new Map();
    assert.equal(winningRev(t), undefined);
    assert.deepEqual(leaves(t), []);
    assert.equal(isLeaf(t, '1-a'), false);
    assert.deepEqual(history(t, '1-a'), []);
    assert.deepEqual(encodeRevTree(t), { revs: [], parents: [] });
  });

  it('history stops at the limit, a root, or a pruned parent', () => {
    const t = build([['4-d', '3-c', '2-b', '1-a']]);
    assert.deepEqual(history(t, '4-d', 2), ['4-d', '3-c']);
    assert.deepEqual(history(t, '2-b'), ['2-b', '1-a']);
    prune(t, 2);
    assert.deepEqual(history(t, '4-d'), ['4-d', '3-c']);
    assert.equal(t.get('3-c')!.parent, null);
  });

  it('a history of one unknown rev starts a new root', () => {
    const t = build([['2-b', '1-a']]);
    assert.deepEqual(addHistory(t, ['5-x'], false), { added: ['5-x'], attachedTo: null });
    assert.equal(t.get('5-x')!.parent, null);
  });

  it('prune keeps an ancestor shared with a short branch (depth is to the nearest leaf)', () => {
    // Counterexample to "history(tree, leaf).length <= limit" on branched trees: 1-a is 2 from
    // 2-short, so it stays, and 3-long keeps 3 revisions with a limit of 2. Sync Gateway does the same.
    const t = build([['3-long', '2-b', '1-a']], [['2-short', '1-a']]);
    assert.deepEqual(prune(t, 2), []);
    assert.deepEqual(history(t, '3-long'), ['3-long', '2-b', '1-a']);
    // One generation more and 2-b (3 from its nearest leaf) goes: 1-a stays, unreachable from 4-long.
    const u = build([['4-long', '3-c', '2-b', '1-a']], [['2-short', '1-a']]);
    assert.deepEqual(prune(u, 2), ['2-b']);
    assert.deepEqual(history(u, '4-long'), ['4-long', '3-c']);
    assert.deepEqual(history(u, '2-short'), ['2-short', '1-a']);
    // With a limit of 1 only the leaves survive.
    assert.deepEqual(prune(t, 1).sort(), ['1-a', '2-b']);
    assert.deepEqual([...t.keys()].sort(), ['2-short', '3-long']);
    assert.equal(t.get('3-long')!.parent, null);
  });

  it('prune with a limit of 0 or larger than the tree is a no-op', () => {
    const t = build([['3-c', '2-b', '1-a']]);
    assert.deepEqual(prune(t, 0), []);
    assert.deepEqual(prune(t, 3), []);
    assert.equal(t.size, 3);
  });

  it('truncated histories: a rev first seen without ancestry never gets it back', () => {
    // Documents current (and Sync Gateway's) behaviour: addHistory stops at the first known rev, so
    // the order in which truncated histories arrive decides which ancestors are known.
    const shortFirst = build([['2-b']], [['3-c', '2-b', '1-a']]);
    const fullFirst = build([['3-c', '2-b', '1-a']], [['2-b']]);
    assert.deepEqual([...shortFirst.keys()].sort(), ['2-b', '3-c']);
    assert.deepEqual([...fullFirst.keys()].sort(), ['1-a', '2-b', '3-c']);
    assert.equal(winningRev(shortFirst)?.id, winningRev(fullFirst)?.id);
  });

  it('prune keeps a tombstoned branch far below the live one: every leaf survives (issue 8)', () => {
    // Sync Gateway's pruneRevisions also drops tombstoned branches whose leaf generation is more
    // than revs_limit below the shortest live branch; Syncgate deliberately does not. CouchDB keeps
    // every leaf, and a dropped leaf comes back: the next replicator that still has it sees it
    // missing in _revs_diff and pushes it again (its winner and _conflicts would then differ between
    // replicas). So only the depth rule applies; the tombstone and its parent stay.
    const live = Array.from({ length: 9 }, (_, i) => `${10 - i}-${'jihgfedcb'[i]}`);
    const t = build([[...live, '1-a']], [['2-dead', '1-a'], true]);
    prune(t, 3);
    assert.ok(t.has('2-dead'));
    assert.ok(t.get('2-dead')!.deleted);
    assert.deepEqual(history(t, '10-j'), ['10-j', '9-i', '8-h']);
    assert.deepEqual(history(t, '2-dead'), ['2-dead', '1-a']);
  });
});

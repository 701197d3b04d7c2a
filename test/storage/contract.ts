/**
 * The shared Store contract (ARCHITECTURE.md "Tests"): every backend runs this same suite.
 *
 *   storeContract('sqlite :memory:', () => new SqliteStore({ path: ':memory:' }));
 *
 * `open` must return a fresh, empty store each time it is called; `close` (default: `store.close()`)
 * may also remove whatever `open` created.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type {
  AttachmentMap, ChangeRow, CollectionStore, CommitResult, DocWrite, RetiredBody, Store, StoredRevision,
} from '../../src/storage/store.ts';
import { bodyKey } from '../../src/storage/store.ts';
import { encodeRevTree } from '../../src/revtree/index.ts';
import type { EncodedRevTree, RevTree } from '../../src/revtree/index.ts';

export type OpenStore = () => Promise<Store> | Store;
export type CloseStore = (store: Store) => Promise<void> | void;

export interface ContractOptions {
  /**
   * Run the document-level half of the contract against this named collection of the store (made
   * by `store.collection(scope, name)`), the database-wide half against the store itself.
   */
  collection?: [scope: string, name: string];
}

/** Every CollectionStore member: what a collection view takes from the collection. */
const COLLECTION_MEMBERS: Record<keyof CollectionStore, true> = {
  lastSeq: true, getDoc: true, getDocs: true, getRevision: true, getRevisions: true, getOldRevision: true, dropOldRevisions: true,
  oldRevisionUsage: true, commit: true, purge: true, expired: true, changes: true, allDocs: true, docChannels: true, channelTail: true,
  countDocs: true, docCounts: true, getAttachment: true, hasAttachments: true, findAttachments: true, getLocal: true, putLocal: true,
  deleteLocal: true, grantsBy: true, tombstonesBefore: true,
};

/**
 * A Store whose document-level members are those of `coll` and whose database-wide members
 * (principals, grantsTo, sessions, jobs, compaction, uuid) are the store's: how a database uses a
 * named collection.
 */
export function collectionView(store: Store, coll: CollectionStore): Store {
  return new Proxy(store, {
    get(target, prop) {
      const from: object = typeof prop === 'string' && prop in COLLECTION_MEMBERS ? coll : target;
      const v: unknown = Reflect.get(from, prop);
      return typeof v === 'function' ? v.bind(from) : v;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers (exported so backend-specific suites can build writes the same way)

/** A linear revision tree 1-… up to `rev`, encoded. */
export function linearTree(rev: string, deleted = false): EncodedRevTree {
  const gen = Number(rev.slice(0, rev.indexOf('-')));
  const tree: RevTree = new Map();
  let parent: string | null = null;
  for (let g = 1; g <= gen; g++) {
    const id: string = g === gen ? rev : `${g}-anc${g}`;
    tree.set(id, { id, parent, deleted: g === gen && deleted });
    parent = id;
  }
  return encodeRevTree(tree);
}

export interface WriteOptions {
  rev?: string;
  deleted?: boolean;
  channels?: string[];
  previousChannels?: string[];
  body?: string;
  bodyAttachments?: AttachmentMap | null;
  addBodies?: StoredRevision[];
  dropBodies?: string[];
  retireBodies?: RetiredBody[];
  /** New bytes by sha1 digest; their md5 is computed here unless `md5s` names one (to test collisions). */
  attachments?: Map<string, Buffer>;
  md5s?: Map<string, string>;
  tree?: EncodedRevTree;
}

/** A DocWrite with sensible defaults: the revision's own body is added. */
export function docWrite(id: string, expectedSeq: number, o: WriteOptions = {}): DocWrite {
  const rev = o.rev ?? '1-a';
  const deleted = o.deleted ?? false;
  return {
    id,
    expectedSeq,
    tree: o.tree ?? linearTree(rev, deleted),
    rev,
    deleted,
    channels: o.channels ?? [],
    previousChannels: o.previousChannels ?? [],
    addBodies: o.addBodies ?? [{ rev, deleted, body: o.body ?? `{"rev":${JSON.stringify(rev)}}`, attachments: o.bodyAttachments ?? null }],
    dropBodies: o.dropBodies ?? [],
    ...(o.retireBodies ? { retireBodies: o.retireBodies } : {}),
    ...(o.attachments ? { attachments: new Map([...o.attachments].map(([d, data]) => [d, { data, md5: o.md5s?.get(d) ?? md5Of(data) }])) } : {}),
  };
}

export function md5Of(data: Buffer): string {
  return `md5-${createHash('md5').update(data).digest('base64')}`;
}

export function digestOf(data: Buffer): string {
  return `sha1-${createHash('sha1').update(data).digest('base64')}`;
}

function okSeq(r: CommitResult | undefined): number {
  assert.ok(r, 'a result per write');
  assert.equal(r.ok, true, `expected the write to commit, got ${JSON.stringify(r)}`);
  return (r as { ok: true; seq: number }).seq;
}

/** Commits one write and returns its seq (failing the test on conflict). */
async function put(store: Store, w: DocWrite): Promise<number> {
  const res = await store.commit([w]);
  assert.equal(res.length, 1);
  return okSeq(res[0]);
}

const CONFLICT: CommitResult = { ok: false, reason: 'conflict' };

/** Rows reduced to comparable tuples. */
function brief(rows: ChangeRow[]): string[] {
  return rows.map((r) => `${r.seq}:${r.id}:${r.rev}${r.deleted ? ':deleted' : ''}${r.removed !== undefined ? `:removed=${r.removed}` : ''}`);
}

/** Byte order of UTF-8, the order Sync Gateway sorts ids in (PostgreSQL needs COLLATE "C"). */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ---------------------------------------------------------------------------------------------

export function storeContract(name: string, open: OpenStore, close: CloseStore = (s) => s.close(), opts: ContractOptions = {}): void {
  /** Runs `fn` against a fresh store (or its named collection) and always closes it. */
  const withStore = (fn: (store: Store) => Promise<void>) => async () => {
    const store = await open();
    try {
      await fn(opts.collection ? collectionView(store, await store.collection(...opts.collection)) : store);
    } finally {
      await close(store);
    }
  };
  if (opts.collection) name = `${name}, collection ${opts.collection.join('.')}`;

  describe(`Store contract: ${name}`, () => {
    describe('empty store', () => {
      it('starts at sequence 0 with nothing in it', withStore(async (s) => {
        assert.equal(await s.lastSeq(), 0);
        assert.equal(await s.getDoc('a'), undefined);
        assert.equal((await s.getDocs(['a', 'b'])).size, 0);
        assert.equal(await s.getRevision('a', '1-a'), undefined);
        assert.equal((await s.getRevisions([{ id: 'a', rev: '1-a' }])).size, 0);
        assert.deepEqual(await s.changes({ since: 0 }), []);
        assert.deepEqual(await s.allDocs({}), []);
        assert.deepEqual(await s.allDocs({ includeDeleted: true }), []);
        assert.equal(await s.countDocs(), 0);
        assert.equal(await s.getAttachment('sha1-none'), undefined);
        assert.equal((await s.hasAttachments(['sha1-none'])).size, 0);
        assert.deepEqual(await s.findAttachments(['sha1-none', 'md5-none']), []);
        assert.equal(await s.getLocal('x'), undefined);
        assert.equal(await s.purge('a'), false);
      }));

      it('empty inputs give empty outputs', withStore(async (s) => {
        assert.deepEqual(await s.commit([]), []);
        assert.equal(await s.lastSeq(), 0);
        assert.equal((await s.getDocs([])).size, 0);
        assert.equal((await s.getRevisions([])).size, 0);
        assert.equal((await s.hasAttachments([])).size, 0);
        assert.deepEqual(await s.findAttachments([]), []);
        await put(s, docWrite('a', 0, { channels: ['c'] }));
        assert.deepEqual(await s.changes({ since: 0, docIds: [] }), []);
        assert.deepEqual(await s.changes({ since: 0, channels: [] }), []);
      }));

      it('has a uuid: non-empty, stable across calls, different per store', withStore(async (s) => {
        const u = await s.uuid();
        assert.equal(typeof u, 'string');
        assert.ok(u.length >= 16, `uuid ${u} looks too short`);
        assert.equal(await s.uuid(), u);
        await put(s, docWrite('a', 0));
        assert.equal(await s.uuid(), u, 'writes do not change the uuid');
        const other = await open();
        try {
          assert.notEqual(await other.uuid(), u);
        } finally {
          await close(other);
        }
      }));
    });

    describe('commit and documents', () => {
      it('stores the document row and its body; getDoc returns them as written', withStore(async (s) => {
        const atts: AttachmentMap = { 'a.txt': { content_type: 'text/plain', digest: 'sha1-x', length: 3, revpos: 1 } };
        const w = docWrite('doc1', 0, { rev: '1-abc', channels: ['red', 'blue'], body: '{"n":1,"s":"é\\u0000"}', bodyAttachments: atts });
        const seq = await put(s, w);
        assert.equal(seq, 1);
        assert.equal(await s.lastSeq(), 1);
        assert.deepEqual(await s.getDoc('doc1'), {
          id: 'doc1', tree: w.tree, rev: '1-abc', deleted: false, seq: 1, channels: ['red', 'blue'],
        });
        assert.deepEqual(await s.getRevision('doc1', '1-abc'), {
          rev: '1-abc', deleted: false, body: '{"n":1,"s":"é\\u0000"}', attachments: atts,
        });
        assert.equal(await s.getRevision('doc1', '1-nope'), undefined);
        assert.equal(await s.getRevision('doc2', '1-abc'), undefined);
      }));

      it('round-trips a branched tree with tombstones and odd ids', withStore(async (s) => {
        const tree: EncodedRevTree = { revs: ['1-a', '2-b', '2-c', '3-d'], parents: [-1, 0, 0, 2], deleted: [1] };
        const id = 'odd id/with\u00e9 "quotes" and 😀';
        await put(s, docWrite(id, 0, { rev: '3-d', tree }));
        const doc = await s.getDoc(id);
        assert.deepEqual(doc?.tree, tree);
        assert.equal(doc?.id, id);
        assert.deepEqual([...(await s.getDocs([id])).keys()], [id]);
      }));

      it('sequences go up by exactly one per successful write, across batches', withStore(async (s) => {
        const seqs: number[] = [];
        for (let i = 0; i < 20; i++) seqs.push(await put(s, docWrite(`d${i % 7}`, (await s.getDoc(`d${i % 7}`))?.seq ?? 0, { rev: `${Math.floor(i / 7) + 1}-x` })));
        const batch = await s.commit([docWrite('b1', 0), docWrite('b2', 0), docWrite('b3', 0)]);
        seqs.push(...batch.map(okSeq));
        assert.deepEqual(seqs, Array.from({ length: 23 }, (_, i) => i + 1));
        assert.equal(await s.lastSeq(), 23);
      }));

      it('an update needs the current seq; a stale or zero expectedSeq is a conflict and changes nothing', withStore(async (s) => {
        const s1 = await put(s, docWrite('a', 0, { rev: '1-a', channels: ['c'] }));
        const s2 = await put(s, docWrite('a', s1, { rev: '2-a', channels: ['c'], previousChannels: ['c'] }));
        assert.equal(s2, s1 + 1);
        assert.deepEqual(await s.commit([docWrite('a', s1, { rev: '3-stale' })]), [CONFLICT]);
        assert.deepEqual(await s.commit([docWrite('a', 0, { rev: '1-new' })]), [CONFLICT], '0 means the doc must not exist');
        assert.deepEqual(await s.commit([docWrite('a', s2 + 5, { rev: '3-future' })]), [CONFLICT]);
        assert.deepEqual(await s.commit([docWrite('missing', 7, { rev: '2-x' })]), [CONFLICT], 'a missing doc is at seq 0');
        assert.equal(await s.lastSeq(), s2, 'conflicts consume no sequence');
        const doc = await s.getDoc('a');
        assert.equal(doc?.rev, '2-a');
        assert.equal(doc?.seq, s2);
        assert.equal(await s.getRevision('a', '3-stale'), undefined);
        assert.equal(await s.getRevision('a', '1-new'), undefined);
        assert.equal(await s.getDoc('missing'), undefined);
        assert.deepEqual(brief(await s.changes({ since: 0 })), [`${s2}:a:2-a`]);
      }));

      it('in one batch, a conflicting write is skipped and the others commit with consecutive seqs', withStore(async (s) => {
        const s1 = await put(s, docWrite('x', 0));
        const res = await s.commit([
          docWrite('p', 0),
          docWrite('x', 0, { rev: '1-dup' }), // x exists
          docWrite('q', 0),
        ]);
        assert.deepEqual(res, [{ ok: true, seq: s1 + 1 }, CONFLICT, { ok: true, seq: s1 + 2 }]);
        assert.equal(await s.lastSeq(), s1 + 2);
        assert.equal((await s.getDoc('x'))?.rev, '1-a');
      }));

      it('two writes to the same doc in one batch: the second has a stale expectedSeq and conflicts', withStore(async (s) => {
        const res = await s.commit([
          docWrite('d', 0, { rev: '1-first', channels: ['c1'] }),
          docWrite('d', 0, { rev: '1-second', channels: ['c2'] }),
        ]);
        assert.deepEqual(res, [{ ok: true, seq: 1 }, CONFLICT]);
        const doc = await s.getDoc('d');
        assert.equal(doc?.rev, '1-first');
        assert.deepEqual(doc?.channels, ['c1']);
        assert.equal(await s.getRevision('d', '1-second'), undefined);
        assert.deepEqual(await s.changes({ since: 0, channels: ['c2'] }), []);
        // Chained correctly (the second names the first's seq), both commit.
        const chained = await s.commit([
          docWrite('e', 0, { rev: '1-e' }),
          docWrite('e', 2, { rev: '2-e' }),
        ]);
        assert.deepEqual(chained, [{ ok: true, seq: 2 }, { ok: true, seq: 3 }]);
        assert.equal((await s.getDoc('e'))?.rev, '2-e');
        assert.deepEqual(brief(await s.changes({ since: 0 })), ['1:d:1-first', '3:e:2-e']);
      }));

      it('concurrent commits of the same new doc: exactly one wins', withStore(async (s) => {
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => s.commit([docWrite('race', 0, { rev: `1-r${i}` })])));
        const oks = results.flat().filter((r) => r.ok);
        assert.equal(oks.length, 1);
        assert.equal(results.flat().filter((r) => !r.ok).length, 7);
        assert.equal(await s.lastSeq(), 1);
      }));

      it('concurrent commits of different docs get distinct, gap-free seqs', withStore(async (s) => {
        const results = await Promise.all(Array.from({ length: 25 }, (_, i) => s.commit([docWrite(`c${i}`, 0)])));
        const seqs = results.flat().map(okSeq).sort((a, b) => a - b);
        assert.deepEqual(seqs, Array.from({ length: 25 }, (_, i) => i + 1));
        assert.equal(await s.lastSeq(), 25);
      }));

      it('addBodies and dropBodies manage revision bodies', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-a' }));
        // A conflict branch: keep 1-a's body? No: 2-b and 2-c are leaves, 1-a is dropped.
        const s2 = await put(s, docWrite('d', s1, {
          rev: '2-c',
          tree: { revs: ['1-a', '2-b', '2-c'], parents: [-1, 0, 0] },
          addBodies: [
            { rev: '2-b', deleted: false, body: '{"b":1}', attachments: null },
            { rev: '2-c', deleted: false, body: '{"c":1}', attachments: null },
          ],
          dropBodies: ['1-a'],
        }));
        assert.equal(await s.getRevision('d', '1-a'), undefined);
        assert.equal((await s.getRevision('d', '2-b'))?.body, '{"b":1}');
        // A tombstone on 2-b.
        await put(s, docWrite('d', s2, {
          rev: '2-c',
          tree: { revs: ['1-a', '2-b', '2-c', '3-b'], parents: [-1, 0, 0, 1], deleted: [3] },
          addBodies: [{ rev: '3-b', deleted: true, body: '{}', attachments: null }],
          dropBodies: ['2-b', '9-never-existed'],
        }));
        assert.equal(await s.getRevision('d', '2-b'), undefined);
        assert.deepEqual(await s.getRevision('d', '3-b'), { rev: '3-b', deleted: true, body: '{}', attachments: null });
        assert.equal((await s.getRevision('d', '2-c'))?.body, '{"c":1}');
      }));

      it('re-adding an existing revision body replaces it', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-a', body: '{"v":1}' }));
        await put(s, docWrite('d', s1, { rev: '1-a', body: '{"v":2}' }));
        assert.equal((await s.getRevision('d', '1-a'))?.body, '{"v":2}');
      }));

      it('bodies are per document: the same rev id in two docs is two bodies', withStore(async (s) => {
        await s.commit([docWrite('a', 0, { rev: '1-same', body: '{"doc":"a"}' }), docWrite('b', 0, { rev: '1-same', body: '{"doc":"b"}' })]);
        assert.equal((await s.getRevision('a', '1-same'))?.body, '{"doc":"a"}');
        assert.equal((await s.getRevision('b', '1-same'))?.body, '{"doc":"b"}');
      }));

      it('a deletion keeps the doc row (a tombstone) and its winner flag', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-a' }));
        const s2 = await put(s, docWrite('d', s1, { rev: '2-del', deleted: true, body: '{}' }));
        const doc = await s.getDoc('d');
        assert.equal(doc?.deleted, true);
        assert.equal(doc?.rev, '2-del');
        assert.equal(doc?.seq, s2);
        assert.equal((await s.getRevision('d', '2-del'))?.deleted, true);
        // Resurrection continues from the tombstone's seq.
        const s3 = await put(s, docWrite('d', s2, { rev: '3-back' }));
        assert.equal((await s.getDoc('d'))?.deleted, false);
        assert.equal(s3, s2 + 1);
      }));
    });

    describe('getDocs and getRevisions (batches)', () => {
      it('getDocs returns the existing docs by id, ignores missing ones and duplicates', withStore(async (s) => {
        await s.commit([docWrite('a', 0), docWrite('b', 0, { deleted: true }), docWrite('c', 0)]);
        const m = await s.getDocs(['c', 'missing', 'a', 'b', 'a']);
        assert.deepEqual([...m.keys()].sort(), ['a', 'b', 'c']);
        assert.equal(m.get('b')?.deleted, true, 'tombstones are returned too');
        assert.equal(m.get('c')?.seq, 3);
      }));

      it('getDocs with more than 1000 ids (and a missing one in every chunk)', withStore(async (s) => {
        const ids = Array.from({ length: 2100 }, (_, i) => `doc-${String(i).padStart(5, '0')}`);
        assert.deepEqual((await s.commit(ids.map((id) => docWrite(id, 0)))).map(okSeq), ids.map((_, i) => i + 1));
        const ask = ids.flatMap((id, i) => (i % 300 === 0 ? [id, `missing-${i}`] : [id]));
        const m = await s.getDocs(ask);
        assert.equal(m.size, ids.length);
        for (const [i, id] of ids.entries()) assert.equal(m.get(id)?.seq, i + 1);
      }));

      it('getRevisions looks up many (id, rev) pairs, keyed by bodyKey, skipping missing ones', withStore(async (s) => {
        await s.commit([
          docWrite('a', 0, { rev: '1-a', body: '{"a":1}' }),
          docWrite('b', 0, { rev: '1-b', body: '{"b":1}' }),
        ]);
        const keys = [
          { id: 'a', rev: '1-a' }, { id: 'b', rev: '1-b' }, { id: 'a', rev: '1-b' }, { id: 'zzz', rev: '1-a' }, { id: 'a', rev: '1-a' },
        ];
        const m = await s.getRevisions(keys);
        assert.deepEqual([...m.keys()].sort(), [bodyKey('a', '1-a'), bodyKey('b', '1-b')].sort());
        assert.equal(m.get(bodyKey('a', '1-a'))?.body, '{"a":1}');
        assert.equal(m.get(bodyKey('b', '1-b'))?.rev, '1-b');
      }));

      it('getRevisions with more than 1000 keys', withStore(async (s) => {
        const ids = Array.from({ length: 1200 }, (_, i) => `r${i}`);
        await s.commit(ids.map((id) => docWrite(id, 0, { rev: '1-x', body: `{"i":"${id}"}` })));
        const m = await s.getRevisions(ids.map((id) => ({ id, rev: '1-x' })));
        assert.equal(m.size, 1200);
        assert.equal(m.get(bodyKey('r1199', '1-x'))?.body, '{"i":"r1199"}');
      }));
    });

    describe('changes', () => {
      /** Five docs, some rewritten and one deleted: seq → (id, rev). */
      async function seed(s: Store): Promise<void> {
        await put(s, docWrite('a', 0, { rev: '1-a' }));        // 1
        await put(s, docWrite('b', 0, { rev: '1-b' }));        // 2
        await put(s, docWrite('c', 0, { rev: '1-c' }));        // 3
        await put(s, docWrite('a', 1, { rev: '2-a' }));        // 4: a moves from 1 to 4
        await put(s, docWrite('d', 0, { rev: '1-d' }));        // 5
        await put(s, docWrite('b', 2, { rev: '2-b', deleted: true })); // 6: b is deleted
        await put(s, docWrite('e', 0, { rev: '1-e' }));        // 7
      }

      it('lists each doc once, at its latest seq, in seq order, with the deleted flag', withStore(async (s) => {
        await seed(s);
        assert.deepEqual(brief(await s.changes({ since: 0 })), ['3:c:1-c', '4:a:2-a', '5:d:1-d', '6:b:2-b:deleted', '7:e:1-e']);
        for (const r of await s.changes({ since: 0 })) assert.equal(r.removed, undefined);
      }));

      it('since is exclusive, until is inclusive, and limit caps the page', withStore(async (s) => {
        await seed(s);
        assert.deepEqual(brief(await s.changes({ since: 4 })), ['5:d:1-d', '6:b:2-b:deleted', '7:e:1-e']);
        assert.deepEqual(brief(await s.changes({ since: 3, until: 5 })), ['4:a:2-a', '5:d:1-d']);
        assert.deepEqual(brief(await s.changes({ since: 0, until: 2 })), [], 'a and b moved past until');
        assert.deepEqual(brief(await s.changes({ since: 0, limit: 2 })), ['3:c:1-c', '4:a:2-a']);
        assert.deepEqual(brief(await s.changes({ since: 4, until: 7, limit: 1 })), ['5:d:1-d']);
        assert.deepEqual(await s.changes({ since: 7 }), []);
        assert.deepEqual(await s.changes({ since: 100 }), []);
        assert.deepEqual(await s.changes({ since: 5, until: 5 }), []);
      }));

      it('until defaults to the last committed seq; a reader that fixed until does not see later writes', withStore(async (s) => {
        await seed(s);
        const until = await s.lastSeq();
        await put(s, docWrite('f', 0, { rev: '1-f' }));
        assert.deepEqual(brief(await s.changes({ since: 6, until })), ['7:e:1-e']);
        assert.deepEqual(brief(await s.changes({ since: 6 })), ['7:e:1-e', '8:f:1-f']);
      }));

      it('paging with limit and since = last seq returns every change exactly once', withStore(async (s) => {
        await seed(s);
        const pages: string[] = [];
        for (let since = 0; ;) {
          const page = await s.changes({ since, limit: 2 });
          if (page.length === 0) break;
          pages.push(...brief(page));
          since = page[page.length - 1].seq;
        }
        assert.deepEqual(pages, brief(await s.changes({ since: 0 })));
      }));

      it('docIds filter: only those docs, at their latest seq, with since, until and limit', withStore(async (s) => {
        await seed(s);
        assert.deepEqual(brief(await s.changes({ since: 0, docIds: ['e', 'a', 'nope', 'b'] })), ['4:a:2-a', '6:b:2-b:deleted', '7:e:1-e']);
        assert.deepEqual(brief(await s.changes({ since: 4, docIds: ['e', 'a', 'b'] })), ['6:b:2-b:deleted', '7:e:1-e']);
        assert.deepEqual(brief(await s.changes({ since: 0, until: 6, docIds: ['e', 'a', 'b'] })), ['4:a:2-a', '6:b:2-b:deleted']);
        assert.deepEqual(brief(await s.changes({ since: 0, limit: 1, docIds: ['e', 'a', 'b'] })), ['4:a:2-a']);
        assert.deepEqual(await s.changes({ since: 0, docIds: ['nope'] }), []);
      }));

      it('docIds filter with more than 1000 ids, in any order', withStore(async (s) => {
        const ids = Array.from({ length: 1500 }, (_, i) => `id${i}`);
        await s.commit(ids.map((id) => docWrite(id, 0)));
        // Every third id, listed backwards, plus unknown ids.
        const want = ids.filter((_, i) => i % 3 === 0);
        const ask = [...want].reverse().flatMap((id, k) => (k % 100 === 0 ? [id, `unknown${k}`] : [id]));
        const rows = await s.changes({ since: 0, docIds: ask });
        assert.deepEqual(rows.map((r) => r.id), want);
        assert.deepEqual(rows.map((r) => r.seq), want.map((id) => Number(id.slice(2)) + 1));
        const limited = await s.changes({ since: 600, limit: 10, docIds: ask });
        assert.deepEqual(limited.map((r) => r.seq), [601, 604, 607, 610, 613, 616, 619, 622, 625, 628]);
      }));

      it('docIds filter lists a doc once even when its id is repeated far apart in the list', withStore(async (s) => {
        const ids = Array.from({ length: 1200 }, (_, i) => `id${i}`);
        await s.commit(ids.map((id) => docWrite(id, 0)));
        const ask = ['id5', ...ids.slice(100, 1100), 'id5', 'id7', 'id7'];
        const rows = await s.changes({ since: 0, docIds: ask });
        assert.deepEqual(rows.filter((r) => r.id === 'id5').length, 1);
        assert.deepEqual(rows.filter((r) => r.id === 'id7').length, 1);
        assert.equal(rows.length, 1002);
      }));

      it('a purged doc leaves the feed', withStore(async (s) => {
        await seed(s);
        assert.equal(await s.purge('a'), true);
        assert.deepEqual(brief(await s.changes({ since: 0 })), ['3:c:1-c', '5:d:1-d', '6:b:2-b:deleted', '7:e:1-e']);
        assert.deepEqual(await s.changes({ since: 0, docIds: ['a'] }), []);
      }));
    });

    describe('channel index', () => {
      it('a doc appears in each of its channels at its latest seq', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['red', 'blue'] }));
        await put(s, docWrite('o', 0, { rev: '1-o', channels: ['blue'] }));
        const s3 = await put(s, docWrite('d', s1, { rev: '2-d', channels: ['red', 'blue'], previousChannels: ['red', 'blue'] }));
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['red'] })), [`${s3}:d:2-d`]);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['blue'] })), ['2:o:1-o', `${s3}:d:2-d`]);
        assert.deepEqual(await s.changes({ since: 0, channels: ['green'] }), []);
        // Per-channel rows: with several channels a doc in both has one row per channel at one seq.
        const both = await s.changes({ since: 0, channels: ['red', 'blue'] });
        assert.deepEqual(both.map((r) => r.seq), [2, s3, s3]);
        assert.ok(both.every((r) => r.removed === undefined));
      }));

      it('dropping a channel leaves a removed row there at the new seq; re-adding clears it', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['a', 'b'] }));
        const s2 = await put(s, docWrite('d', s1, { rev: '2-d', channels: ['b', 'c'], previousChannels: ['a', 'b'] }));
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['a'] })), [`${s2}:d:2-d:removed=a`]);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['b'] })), [`${s2}:d:2-d`]);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['c'] })), [`${s2}:d:2-d`]);
        assert.deepEqual(await s.changes({ since: s2, channels: ['a'] }), []);
        // Unrelated writes (previousChannels no longer has a) leave the removal where it was.
        const s3 = await put(s, docWrite('d', s2, { rev: '3-d', channels: ['b', 'c'], previousChannels: ['b', 'c'] }));
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['a'] })), [`${s2}:d:2-d:removed=a`]);
        // Back into a: a normal row again, at the newest seq.
        const s4 = await put(s, docWrite('d', s3, { rev: '4-d', channels: ['a'], previousChannels: ['b', 'c'] }));
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['a'] })), [`${s4}:d:4-d`]);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['b', 'c'] })).sort(), [`${s4}:d:4-d:removed=b`, `${s4}:d:4-d:removed=c`]);
        // The doc itself is in a only.
        assert.deepEqual((await s.getDoc('d'))?.channels, ['a']);
      }));

      it('several channels: the removal shows for the channel left, a live row for the one kept', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['a', 'b'] }));
        const s2 = await put(s, docWrite('d', s1, { rev: '2-d', channels: ['b'], previousChannels: ['a', 'b'] }));
        const rows = await s.changes({ since: 0, channels: ['a', 'b'] });
        assert.deepEqual(brief(rows).sort(), [`${s2}:d:2-d`, `${s2}:d:2-d:removed=a`]);
      }));

      it('paging a several-channel feed with limit never loses or splits a sequence', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['a', 'b'] }));
        const s2 = await put(s, docWrite('d', s1, { rev: '2-d', channels: ['b'], previousChannels: ['a', 'b'] }));
        const all = brief(await s.changes({ since: 0, channels: ['a', 'b'] })).sort();
        const page1 = await s.changes({ since: 0, channels: ['a', 'b'], limit: 1 });
        const page2 = await s.changes({ since: page1[page1.length - 1].seq, channels: ['a', 'b'], limit: 1 });
        assert.equal(s2, 2);
        assert.deepEqual([...brief(page1), ...brief(page2)].sort(), all);
      }));

      it('a deletion that empties the channels leaves removed+deleted rows in the old ones', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['a'] }));
        const s2 = await put(s, docWrite('d', s1, { rev: '2-d', deleted: true, channels: [], previousChannels: ['a'] }));
        const rows = await s.changes({ since: 0, channels: ['a'] });
        assert.deepEqual(rows, [{ seq: s2, id: 'd', rev: '2-d', deleted: true, removed: 'a' }]);
        // A tombstone that stays in its channel is just deleted, not removed.
        const t1 = await put(s, docWrite('t', 0, { rev: '1-t', channels: ['k'] }));
        const t2 = await put(s, docWrite('t', t1, { rev: '2-t', deleted: true, channels: ['k'], previousChannels: ['k'] }));
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['k'] })), [`${t2}:t:2-t:deleted`]);
      }));

      it('channel feeds obey since, until and limit', withStore(async (s) => {
        for (let i = 0; i < 10; i++) await put(s, docWrite(`d${i}`, 0, { channels: i % 2 ? ['odd', 'all'] : ['even', 'all'] }));
        assert.deepEqual((await s.changes({ since: 0, channels: ['odd'] })).map((r) => r.seq), [2, 4, 6, 8, 10]);
        assert.deepEqual((await s.changes({ since: 4, channels: ['odd'] })).map((r) => r.seq), [6, 8, 10]);
        assert.deepEqual((await s.changes({ since: 4, until: 8, channels: ['odd'] })).map((r) => r.seq), [6, 8]);
        assert.deepEqual((await s.changes({ since: 0, limit: 3, channels: ['even'] })).map((r) => r.seq), [1, 3, 5]);
        assert.deepEqual((await s.changes({ since: 0, limit: 4, channels: ['all'] })).map((r) => r.seq), [1, 2, 3, 4]);
        assert.deepEqual((await s.changes({ since: 0, channels: ['odd', 'even'] })).map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      }));

      it('a rewrite moves the doc to its new seq in the channel (no stale row left behind)', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['a'] }));
        await put(s, docWrite('x', 0, { channels: ['a'] }));
        const s3 = await put(s, docWrite('d', s1, { rev: '2-d', channels: ['a'], previousChannels: ['a'] }));
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['a'] })), ['2:x:1-a', `${s3}:d:2-d`]);
        assert.deepEqual(brief(await s.changes({ since: 0, until: 2, channels: ['a'] })), ['2:x:1-a']);
      }));

      it('a purged doc leaves every channel', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['a', 'b'] }));
        await put(s, docWrite('d', s1, { rev: '2-d', channels: ['b'], previousChannels: ['a', 'b'] }));
        await put(s, docWrite('k', 0, { channels: ['a'] }));
        assert.equal(await s.purge('d'), true);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['a', 'b'] })), ['3:k:1-a']);
      }));

      it('channels and docIds together: only those docs, and only in those channels', withStore(async (s) => {
        await s.commit([
          docWrite('in', 0, { channels: ['mine'] }),
          docWrite('out', 0, { channels: ['theirs'] }),
        ]);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['mine'], docIds: ['in', 'out'] })), ['1:in:1-a']);
      }));
    });

    describe('channel index of one document (docChannels) and of one channel (channelTail)', () => {
      it('docChannels: current channels, and removals with the removing seq and rev', withStore(async (s) => {
        assert.deepEqual(await s.docChannels('d'), []);
        const s1 = await put(s, docWrite('d', 0, { rev: '1-d', channels: ['b', 'a'] }));
        await put(s, docWrite('other', 0, { channels: ['a', 'z'] }));
        assert.deepEqual(await s.docChannels('d'), [
          { channel: 'a', seq: s1, rev: '1-d', deleted: false, removed: false },
          { channel: 'b', seq: s1, rev: '1-d', deleted: false, removed: false },
        ]);
        const s3 = await put(s, docWrite('d', s1, { rev: '2-d', channels: ['b', 'c'], previousChannels: ['b', 'a'] }));
        const s4 = await put(s, docWrite('d', s3, { rev: '3-d', deleted: true, channels: [], previousChannels: ['b', 'c'] }));
        assert.deepEqual(await s.docChannels('d'), [
          { channel: 'a', seq: s3, rev: '2-d', deleted: false, removed: true },
          { channel: 'b', seq: s4, rev: '3-d', deleted: true, removed: true },
          { channel: 'c', seq: s4, rev: '3-d', deleted: true, removed: true },
        ]);
        // Back into a channel it left: a current row again.
        const s5 = await put(s, docWrite('d', s4, { rev: '4-d', channels: ['a'], previousChannels: [] }));
        assert.deepEqual((await s.docChannels('d')).find((r) => r.channel === 'a'), { channel: 'a', seq: s5, rev: '4-d', deleted: false, removed: false });
        assert.equal(await s.purge('d'), true);
        assert.deepEqual(await s.docChannels('d'), []);
        assert.equal((await s.docChannels('other')).length, 2);
      }));

      it('docChannels orders channel names by UTF-8 bytes', withStore(async (s) => {
        const names = ['é', 'Z', 'a', '_x', '😀', 'ÿ'];
        await put(s, docWrite('d', 0, { channels: names }));
        const sorted = [...names].sort(utf8Compare);
        assert.deepEqual((await s.docChannels('d')).map((r) => r.channel), sorted);
      }));

      it('channelTail: the newest rows of one channel, oldest first, removals marked', withStore(async (s) => {
        assert.deepEqual(await s.channelTail('a', 10), []);
        for (let i = 1; i <= 5; i++) await put(s, docWrite(`d${i}`, 0, { rev: `1-${i}`, channels: ['a'] }));
        await put(s, docWrite('elsewhere', 0, { channels: ['b'] }));
        // d2 leaves a (a removal row at the new seq); d3 is rewritten (its row moves to the end).
        const s7 = await put(s, docWrite('d2', 2, { rev: '2-2', channels: [], previousChannels: ['a'] }));
        const s8 = await put(s, docWrite('d3', 3, { rev: '2-3', channels: ['a'], previousChannels: ['a'] }));
        assert.deepEqual(brief(await s.channelTail('a', 10)), ['1:d1:1-1', '4:d4:1-4', '5:d5:1-5', `${s7}:d2:2-2:removed=a`, `${s8}:d3:2-3`]);
        assert.deepEqual(brief(await s.channelTail('a', 2)), [`${s7}:d2:2-2:removed=a`, `${s8}:d3:2-3`]);
        assert.deepEqual(brief(await s.channelTail('b', 2)), ['6:elsewhere:1-a']);
        assert.deepEqual(await s.channelTail('nowhere', 2), []);
      }));
    });

    describe('allDocs and countDocs', () => {
      const ids = ['b', 'a', 'd', 'c', 'e', 'f'];
      async function seed(s: Store): Promise<void> {
        await s.commit(ids.map((id) => docWrite(id, 0, { rev: `1-${id}`, channels: [`ch-${id}`] })));
        await put(s, docWrite('c', 4, { rev: '2-c', deleted: true, previousChannels: ['ch-c'] }));
      }

      it('lists live docs in id order with rev, seq and channels', withStore(async (s) => {
        await seed(s);
        assert.deepEqual(await s.allDocs({}), [
          { id: 'a', rev: '1-a', seq: 2, deleted: false, channels: ['ch-a'] },
          { id: 'b', rev: '1-b', seq: 1, deleted: false, channels: ['ch-b'] },
          { id: 'd', rev: '1-d', seq: 3, deleted: false, channels: ['ch-d'] },
          { id: 'e', rev: '1-e', seq: 5, deleted: false, channels: ['ch-e'] },
          { id: 'f', rev: '1-f', seq: 6, deleted: false, channels: ['ch-f'] },
        ]);
        assert.equal(await s.countDocs(), 5);
      }));

      it('includeDeleted lists tombstones too', withStore(async (s) => {
        await seed(s);
        const rows = await s.allDocs({ includeDeleted: true });
        assert.deepEqual(rows.map((r) => r.id), ['a', 'b', 'c', 'd', 'e', 'f']);
        assert.deepEqual(rows[2], { id: 'c', rev: '2-c', seq: 7, deleted: true, channels: [] });
      }));

      it('startkey and endkey are inclusive bounds; limit and skip page', withStore(async (s) => {
        await seed(s);
        const idsOf = async (q: Parameters<Store['allDocs']>[0]) => (await s.allDocs(q)).map((r) => r.id);
        assert.deepEqual(await idsOf({ startkey: 'b', endkey: 'e' }), ['b', 'd', 'e']);
        assert.deepEqual(await idsOf({ startkey: 'b', endkey: 'e', includeDeleted: true }), ['b', 'c', 'd', 'e']);
        assert.deepEqual(await idsOf({ startkey: 'bb' }), ['d', 'e', 'f']);
        assert.deepEqual(await idsOf({ endkey: 'b' }), ['a', 'b']);
        assert.deepEqual(await idsOf({ startkey: 'e', endkey: 'b' }), []);
        assert.deepEqual(await idsOf({ limit: 2 }), ['a', 'b']);
        assert.deepEqual(await idsOf({ limit: 0 }), []);
        assert.deepEqual(await idsOf({ skip: 3 }), ['e', 'f']);
        assert.deepEqual(await idsOf({ skip: 1, limit: 2 }), ['b', 'd']);
        assert.deepEqual(await idsOf({ skip: 10 }), []);
        assert.deepEqual(await idsOf({ startkey: 'b', skip: 1, limit: 1 }), ['d']);
      }));

      it('descending reverses the order, with startkey as the high bound', withStore(async (s) => {
        await seed(s);
        const idsOf = async (q: Parameters<Store['allDocs']>[0]) => (await s.allDocs(q)).map((r) => r.id);
        assert.deepEqual(await idsOf({ descending: true }), ['f', 'e', 'd', 'b', 'a']);
        assert.deepEqual(await idsOf({ descending: true, startkey: 'e', endkey: 'b' }), ['e', 'd', 'b']);
        assert.deepEqual(await idsOf({ descending: true, startkey: 'd' }), ['d', 'b', 'a']);
        assert.deepEqual(await idsOf({ descending: true, endkey: 'd' }), ['f', 'e', 'd']);
        assert.deepEqual(await idsOf({ descending: true, limit: 2, skip: 1 }), ['e', 'd']);
        assert.deepEqual(await idsOf({ descending: true, startkey: 'b', endkey: 'e' }), []);
      }));

      it('inclusiveEnd: false leaves out the endkey row, at the high end or (descending) the low end', withStore(async (s) => {
        await seed(s);
        const idsOf = async (q: Parameters<Store['allDocs']>[0]) => (await s.allDocs(q)).map((r) => r.id);
        assert.deepEqual(await idsOf({ startkey: 'b', endkey: 'e', inclusiveEnd: false }), ['b', 'd']);
        assert.deepEqual(await idsOf({ endkey: 'a', inclusiveEnd: false }), []);
        assert.deepEqual(await idsOf({ endkey: 'ee', inclusiveEnd: false }), ['a', 'b', 'd', 'e']);
        assert.deepEqual(await idsOf({ startkey: 'b', endkey: 'e', inclusiveEnd: true }), ['b', 'd', 'e']);
        assert.deepEqual(await idsOf({ descending: true, startkey: 'e', endkey: 'b', inclusiveEnd: false }), ['e', 'd']);
        assert.deepEqual(await idsOf({ descending: true, endkey: 'a', inclusiveEnd: false }), ['f', 'e', 'd', 'b']);
        // The start bound stays inclusive.
        assert.deepEqual(await idsOf({ startkey: 'd', endkey: 'd', inclusiveEnd: false }), []);
        assert.deepEqual(await idsOf({ startkey: 'd', endkey: 'd' }), ['d']);
      }));

      it('ids sort by UTF-8 bytes (not by locale, not by UTF-16 units)', withStore(async (s) => {
        const odd = ['a', 'B', 'Z', '_', 'é', 'e\u0301', '\uFFFD', '😀', '10', '9', 'a b', 'ab'];
        await s.commit(odd.map((id) => docWrite(id, 0)));
        const got = (await s.allDocs({})).map((r) => r.id);
        assert.deepEqual(got, [...odd].sort(utf8Compare));
        // '😀' (F0…) sorts after '\uFFFD' (EF…) in bytes, though before it in UTF-16.
        assert.ok(got.indexOf('😀') > got.indexOf('\uFFFD'));
        assert.deepEqual((await s.allDocs({ startkey: '\uFFFD' })).map((r) => r.id), ['\uFFFD', '😀']);
      }));

      it('countDocs counts live docs only and follows deletes, resurrections and purges', withStore(async (s) => {
        await seed(s);
        assert.equal(await s.countDocs(), 5);
        assert.deepEqual(await s.docCounts(), { live: 5, deleted: 1 });
        await put(s, docWrite('c', 7, { rev: '3-c' }));
        assert.equal(await s.countDocs(), 6);
        assert.deepEqual(await s.docCounts(), { live: 6, deleted: 0 });
        await s.purge('a');
        assert.equal(await s.countDocs(), 5);
        await put(s, docWrite('b', 1, { rev: '2-b', deleted: true }));
        assert.deepEqual(await s.docCounts(), { live: 4, deleted: 1 });
        await s.purge('b');
        await s.purge('never-was');
        assert.deepEqual(await s.docCounts(), { live: 4, deleted: 0 });
      }));

      it('docCounts: one batch writing a doc twice, a lost race and a new tombstone count once each', withStore(async (s) => {
        const [x1, x2, t, lost] = await s.commit([
          docWrite('x', 0, { rev: '1-x' }),
          docWrite('x', 1, { rev: '2-x', deleted: true }),
          docWrite('t', 0, { rev: '1-t', deleted: true }),
          docWrite('x', 0, { rev: '1-y' }), // stale expectedSeq: a conflict, counts nothing
        ]);
        assert.deepEqual([x1.ok, x2.ok, t.ok, lost], [true, true, true, CONFLICT]);
        assert.deepEqual(await s.docCounts(), { live: 0, deleted: 2 });
        await put(s, docWrite('x', 2, { rev: '3-x' }));
        assert.deepEqual(await s.docCounts(), { live: 1, deleted: 1 });
        assert.equal(await s.countDocs(), 1);
      }));
    });

    describe('old revision bodies (delta sync sources)', () => {
      const atts: AttachmentMap = { 'a.txt': { digest: 'sha1-x', length: 3, revpos: 1, content_type: 'text/plain' } };

      it('retireBodies moves a body out of the leaves into the old revisions, until its time', withStore(async (s) => {
        const body = '{"v":"é1"}';
        const s1 = await put(s, docWrite('d', 0, { rev: '1-a', addBodies: [{ rev: '1-a', deleted: false, body, attachments: atts, channels: ['c'] }] }));
        await put(s, docWrite('d', s1, { rev: '2-a', retireBodies: [{ rev: '1-a', until: 1000 }] }));
        assert.equal(await s.getRevision('d', '1-a'), undefined, 'no longer a leaf body');
        assert.deepEqual(await s.getOldRevision('d', '1-a', 999), { rev: '1-a', deleted: false, body, attachments: atts, channels: ['c'] });
        assert.equal(await s.getOldRevision('d', '1-a', 1000), undefined, 'expired at its time');
        assert.equal(await s.getOldRevision('d', '2-a', 0), undefined, 'a leaf is not an old revision');
        assert.equal(await s.getOldRevision('other', '1-a', 0), undefined);
        assert.deepEqual(await s.oldRevisionUsage(), { count: 1, bytes: Buffer.byteLength(body) });
        assert.equal(await s.dropOldRevisions(999, 10), 0);
        assert.equal(await s.dropOldRevisions(1000, 10), 1);
        assert.deepEqual(await s.oldRevisionUsage(), { count: 0, bytes: 0 });
        assert.equal(await s.getOldRevision('d', '1-a', 0), undefined);
        assert.equal((await s.getRevision('d', '2-a'))?.body, '{"rev":"2-a"}', 'the leaf is untouched');
      }));

      it('dropOldRevisions takes the oldest first and at most limit', withStore(async (s) => {
        let seq = await put(s, docWrite('d', 0, { rev: '1-a' }));
        for (let g = 2; g <= 5; g++) {
          seq = await put(s, docWrite('d', seq, { rev: `${g}-a`, retireBodies: [{ rev: `${g - 1}-a`, until: 100 * g }] }));
        }
        assert.equal((await s.oldRevisionUsage()).count, 4);
        assert.equal(await s.dropOldRevisions(10_000, 3), 3);
        assert.equal(await s.getOldRevision('d', '4-a', 0) !== undefined, true, 'the newest is kept');
        assert.equal(await s.getOldRevision('d', '1-a', 0), undefined);
      }));

      it('retiring a revision without a leaf body keeps nothing; a conflicting write retires nothing', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-a' }));
        assert.deepEqual(await s.commit([docWrite('d', s1 + 9, { rev: '2-a', retireBodies: [{ rev: '1-a', until: 1000 }] })]), [CONFLICT]);
        assert.equal((await s.getRevision('d', '1-a'))?.body, '{"rev":"1-a"}');
        assert.equal(await s.getOldRevision('d', '1-a', 0), undefined);
        await put(s, docWrite('d', s1, { rev: '2-a', retireBodies: [{ rev: '9-never', until: 1000 }] }));
        assert.deepEqual(await s.oldRevisionUsage(), { count: 0, bytes: 0 });
      }));

      it('a batch that adds a body and then retires it keeps it', withStore(async (s) => {
        const res = await s.commit([
          docWrite('d', 0, { rev: '1-a', body: '{"first":true}' }),
          docWrite('d', 1, { rev: '2-a', retireBodies: [{ rev: '1-a', until: 1000 }] }),
        ]);
        assert.deepEqual(res.map((r) => r.ok), [true, true]);
        assert.equal((await s.getOldRevision('d', '1-a', 0))?.body, '{"first":true}');
        assert.equal(await s.getRevision('d', '1-a'), undefined);
      }));

      it('retiring again refreshes the time; purge removes old revisions too', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0, { rev: '1-a' }));
        const s2 = await put(s, docWrite('d', s1, { rev: '2-a', retireBodies: [{ rev: '1-a', until: 1000 }] }));
        await put(s, docWrite('d', s2, { rev: '1-a', addBodies: [{ rev: '1-a', deleted: false, body: '{"again":1}', attachments: null }] }));
        await put(s, docWrite('d', s2 + 1, { rev: '2-a', retireBodies: [{ rev: '1-a', until: 5000 }] }));
        assert.equal((await s.getOldRevision('d', '1-a', 4000))?.body, '{"again":1}');
        await put(s, docWrite('keep', 0, { rev: '1-k' }));
        const sk = (await s.getDoc('keep'))!.seq;
        await put(s, docWrite('keep', sk, { rev: '2-k', retireBodies: [{ rev: '1-k', until: 5000 }] }));
        assert.equal(await s.purge('d'), true);
        assert.equal(await s.getOldRevision('d', '1-a', 0), undefined);
        assert.equal((await s.oldRevisionUsage()).count, 1, 'another document\'s old revision stays');
      }));
    });

    describe('purge', () => {
      it('removes the doc, its bodies and its index rows; the seq counter does not go back', withStore(async (s) => {
        const s1 = await put(s, docWrite('p', 0, { rev: '1-p', channels: ['c'] }));
        const s2 = await put(s, docWrite('p', s1, {
          rev: '2-p', channels: ['c'], previousChannels: ['c'],
          tree: { revs: ['1-p', '2-p', '2-q'], parents: [-1, 0, 0] },
          addBodies: [{ rev: '2-p', deleted: false, body: '{}', attachments: null }, { rev: '2-q', deleted: false, body: '{}', attachments: null }],
        }));
        await put(s, docWrite('keep', 0, { rev: '1-k', channels: ['c'] }));
        assert.equal(await s.purge('p'), true);
        assert.equal(await s.getDoc('p'), undefined);
        assert.equal((await s.getDocs(['p'])).size, 0);
        for (const rev of ['1-p', '2-p', '2-q']) assert.equal(await s.getRevision('p', rev), undefined);
        assert.deepEqual((await s.allDocs({ includeDeleted: true })).map((r) => r.id), ['keep']);
        assert.deepEqual(brief(await s.changes({ since: 0, channels: ['c'] })), [`${s2 + 1}:keep:1-k`]);
        assert.equal(await s.lastSeq(), s2 + 1);
        assert.equal(await s.purge('p'), false, 'purging twice');
        assert.equal((await s.getRevision('keep', '1-k'))?.body, '{"rev":"1-k"}');
        // The id is free again: a new doc starts from expectedSeq 0 and gets the next seq.
        assert.deepEqual(await s.commit([docWrite('p', s2, { rev: '1-z' })]), [CONFLICT]);
        assert.deepEqual(await s.commit([docWrite('p', 0, { rev: '1-z' })]), [{ ok: true, seq: s2 + 2 }]);
      }));

      it('purges a tombstone', withStore(async (s) => {
        const s1 = await put(s, docWrite('t', 0));
        await put(s, docWrite('t', s1, { rev: '2-t', deleted: true }));
        assert.equal(await s.purge('t'), true);
        assert.deepEqual(await s.allDocs({ includeDeleted: true }), []);
      }));
    });

    describe('attachments', () => {
      it('round-trips binary bytes exactly (all 256 byte values, NULs, a 1 MiB blob, an empty one)', withStore(async (s) => {
        const all = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7 + 3) & 0xff));
        const nuls = Buffer.from([0, 0, 0, 0xff, 0, 0xfe, 0]);
        const big = Buffer.alloc(1 << 20);
        for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
        const empty = Buffer.alloc(0);
        const utf8Invalid = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc]);
        const blobs = [all, nuls, big, empty, utf8Invalid];
        const atts = new Map(blobs.map((b) => [digestOf(b), b]));
        await put(s, docWrite('withatts', 0, { attachments: atts }));
        for (const b of blobs) {
          const got = await s.getAttachment(digestOf(b));
          assert.ok(got, `attachment of ${b.length} bytes is stored`);
          assert.ok(Buffer.isBuffer(got), 'returned as a Buffer');
          assert.equal(got.length, b.length);
          assert.ok(got.equals(b), `bytes of the ${b.length}-byte attachment are identical`);
        }
        assert.deepEqual(await s.hasAttachments([...atts.keys(), 'sha1-missing']), new Set(atts.keys()));
      }));

      it('is content-addressed: writing an existing digest again is a no-op', withStore(async (s) => {
        const data = Buffer.from('hello');
        const d = digestOf(data);
        await put(s, docWrite('a', 0, { attachments: new Map([[d, data]]) }));
        const seq = await put(s, docWrite('b', 0, { attachments: new Map([[d, Buffer.from('different bytes')]]) }));
        assert.equal(seq, 2, 'the write itself still commits');
        assert.ok((await s.getAttachment(d))?.equals(data), 'the first bytes stay');
        // Two docs in one batch with the same digest.
        await s.commit([
          docWrite('c', 0, { attachments: new Map([['sha1-shared', Buffer.from([1, 2])]]) }),
          docWrite('e', 0, { attachments: new Map([['sha1-shared', Buffer.from([1, 2])]]) }),
        ]);
        assert.ok((await s.getAttachment('sha1-shared'))?.equals(Buffer.from([1, 2])));
      }));

      it('a write that conflicts stores none of its attachments', withStore(async (s) => {
        await put(s, docWrite('a', 0));
        const res = await s.commit([docWrite('a', 0, { rev: '1-b', attachments: new Map([['sha1-lost', Buffer.from('x')]]) })]);
        assert.deepEqual(res, [CONFLICT]);
        assert.equal(await s.getAttachment('sha1-lost'), undefined);
        assert.equal((await s.hasAttachments(['sha1-lost'])).size, 0);
      }));

      it('attachments survive the doc being purged (they may be shared)', withStore(async (s) => {
        await put(s, docWrite('a', 0, { attachments: new Map([['sha1-kept', Buffer.from('k')]]) }));
        await s.purge('a');
        // Content-addressed bytes are not tied to one doc; a later write may refer to them again.
        const got = await s.getAttachment('sha1-kept');
        assert.ok(got === undefined || got.equals(Buffer.from('k')));
      }));

      it('hasAttachments with more than 1000 digests, duplicates and missing ones', withStore(async (s) => {
        const blobs = Array.from({ length: 1300 }, (_, i) => Buffer.from(`attachment #${i}`));
        await put(s, docWrite('many', 0, { attachments: new Map(blobs.map((b) => [digestOf(b), b])) }));
        const present = blobs.map(digestOf);
        const ask = [...present, ...present.slice(0, 50), ...Array.from({ length: 200 }, (_, i) => `sha1-missing-${i}`)];
        const got = await s.hasAttachments(ask);
        assert.equal(got.size, 1300);
        assert.deepEqual(got, new Set(present));
        assert.ok((await s.getAttachment(present[1299]))?.equals(blobs[1299]));
      }));

      it('findAttachments finds by either digest (mixed in one call) with both digests and the stored length', withStore(async (s) => {
        const a = Buffer.from('first attachment');
        const b = Buffer.from([0, 1, 2, 0xff]);
        const empty = Buffer.alloc(0);
        await put(s, docWrite('x', 0, { attachments: new Map([a, b, empty].map((d) => [digestOf(d), d])) }));
        const key = (d: Buffer) => ({ digest: digestOf(d), md5: md5Of(d), length: d.length });
        const sorted = (xs: { digest: string }[]) => [...xs].sort((p, q) => (p.digest < q.digest ? -1 : 1));
        assert.deepEqual(await s.findAttachments([digestOf(a)]), [key(a)]);
        assert.deepEqual(await s.findAttachments([md5Of(b)]), [key(b)]);
        assert.deepEqual(sorted(await s.findAttachments([md5Of(a), digestOf(b), md5Of(empty), 'md5-missing', 'sha1-missing', md5Of(a)])),
          sorted([key(a), key(b), key(empty)]));
        // Both digests of one attachment in one call: one row.
        assert.deepEqual(await s.findAttachments([md5Of(a), digestOf(a)]), [key(a)]);
      }));

      it('findAttachments returns every attachment behind an md5 (collisions can be made on purpose)', withStore(async (s) => {
        const one = Buffer.from('one');
        const two = Buffer.from('two');
        await put(s, docWrite('x', 0, {
          attachments: new Map([[digestOf(one), one], [digestOf(two), two]]),
          md5s: new Map([[digestOf(one), 'md5-same'], [digestOf(two), 'md5-same']]),
        }));
        const got = (await s.findAttachments(['md5-same'])).map((k) => k.digest).sort();
        assert.deepEqual(got, [digestOf(one), digestOf(two)].sort());
      }));

      it('findAttachments with more than 1000 digests of both kinds', withStore(async (s) => {
        const blobs = Array.from({ length: 1200 }, (_, i) => Buffer.from(`blob #${i}`));
        await put(s, docWrite('many', 0, { attachments: new Map(blobs.map((b) => [digestOf(b), b])) }));
        const ask = blobs.map((b, i) => (i % 2 ? md5Of(b) : digestOf(b)));
        const got = await s.findAttachments([...ask, ...ask.slice(0, 30), 'md5-missing']);
        assert.equal(got.length, 1200);
        assert.deepEqual(new Set(got.map((k) => k.digest)), new Set(blobs.map(digestOf)));
        const bySha1 = new Map(blobs.map((b) => [digestOf(b), b]));
        for (const k of got) assert.deepEqual(k, { digest: k.digest, md5: md5Of(bySha1.get(k.digest)!), length: bySha1.get(k.digest)!.length });
      }));
    });

    describe('background jobs: tombstones, attachment compaction, job records', () => {
      it('tombstonesBefore lists tombstones made at or before a time; a live or resurrected doc is not one', withStore(async (s) => {
        const before = Math.floor(Date.now() / 1000);
        const a = await put(s, docWrite('a', 0));
        await put(s, docWrite('a', a, { rev: '2-a', deleted: true, channels: [], previousChannels: [] }));
        await put(s, docWrite('live', 0));
        const r = await put(s, docWrite('res', 0, { deleted: true }));
        await put(s, docWrite('res', r, { rev: '2-r' }));
        const now = Math.floor(Date.now() / 1000);
        assert.deepEqual(await s.tombstonesBefore(now + 1, 10), ['a']);
        assert.deepEqual(await s.tombstonesBefore(before - 1, 10), [], 'nothing was deleted before the test began');
        assert.deepEqual(await s.tombstonesBefore(now + 1, 0), []);
        // A later write that leaves the doc deleted keeps its tombstone time: still listed.
        const seq = (await s.getDoc('a'))!.seq;
        await put(s, docWrite('a', seq, { rev: '3-a', deleted: true }));
        assert.deepEqual(await s.tombstonesBefore(now + 1, 10), ['a']);
        await s.purge('a');
        assert.deepEqual(await s.tombstonesBefore(now + 1, 10), []);
      }));

      it('compactAttachments removes exactly the bodies no stored revision references', withStore(async (s) => {
        const kept = Buffer.from('kept');
        const orphan = Buffer.from('orphan');
        const dk = digestOf(kept);
        const dor = digestOf(orphan);
        const meta = (d: string, n: number) => ({ 'f.txt': { digest: d, length: n, revpos: 1 } });
        await put(s, docWrite('k', 0, { bodyAttachments: meta(dk, 4), attachments: new Map([[dk, kept]]) }));
        const o = await put(s, docWrite('o', 0, { bodyAttachments: meta(dor, 6), attachments: new Map([[dor, orphan]]) }));
        // The next revision of `o` drops the attachment, and its old body (the only reference) goes.
        await put(s, docWrite('o', o, { rev: '2-o', dropBodies: ['1-a'] }));
        assert.deepEqual(await s.compactAttachments(true), { referenced: 1, removed: 1 });
        assert.ok(await s.getAttachment(dor), 'a dry run removes nothing');
        assert.deepEqual(await s.compactAttachments(false), { referenced: 1, removed: 1 });
        assert.equal(await s.getAttachment(dor), undefined);
        assert.ok((await s.getAttachment(dk))?.equals(kept));
        assert.deepEqual(await s.compactAttachments(false), { referenced: 1, removed: 0 });
      }));

      it('compactAttachments keeps the bytes a retained old revision still references', withStore(async (s) => {
        const old = Buffer.from('old bytes');
        const d = digestOf(old);
        const o = await put(s, docWrite('o', 0, { bodyAttachments: { 'f.txt': { digest: d, length: 9, revpos: 1 } }, attachments: new Map([[d, old]]) }));
        // 2-o drops the attachment; 1-a's body is retired (kept as an old revision), not dropped.
        await put(s, docWrite('o', o, { rev: '2-o', retireBodies: [{ rev: '1-a', until: 4_000_000_000 }] }));
        assert.deepEqual(await s.compactAttachments(false), { referenced: 1, removed: 0 });
        assert.ok((await s.getAttachment(d))?.equals(old));
        await s.dropOldRevisions(4_000_000_001, 100);
        assert.deepEqual(await s.compactAttachments(false), { referenced: 0, removed: 1 });
      }));

      it('in bulk scan mode (where a store has one) reads and commits behave the same', withStore(async (s) => {
        if (!s.bulkScan) return;
        const a = await put(s, docWrite('a', 0, { channels: ['x'] }));
        await s.bulkScan(true);
        try {
          assert.equal((await s.getDoc('a'))?.seq, a);
          assert.deepEqual((await s.allDocs({ includeDeleted: true })).map((r) => r.id), ['a']);
          const b = await put(s, docWrite('b', 0));
          assert.equal((await s.getRevision('b', '1-a'))?.body, '{"rev":"1-a"}');
          assert.equal(b, a + 1);
        } finally {
          await s.bulkScan(false);
        }
        assert.deepEqual((await s.allDocs({})).map((r) => r.id), ['a', 'b']);
      }));

      it('job records are compare-and-set: only the writer that saw the current value wins', withStore(async (s) => {
        assert.equal(await s.getJobRecord('resync'), undefined);
        assert.equal(await s.putJobRecord('resync', 'x', 'a'), false, 'expected a value that is not there');
        assert.equal(await s.putJobRecord('resync', undefined, 'a'), true);
        assert.equal(await s.putJobRecord('resync', undefined, 'b'), false, 'created once');
        const race = await Promise.all([s.putJobRecord('resync', 'a', 'n1'), s.putJobRecord('resync', 'a', 'n2')]);
        assert.deepEqual(race.filter(Boolean).length, 1);
        assert.ok(['n1', 'n2'].includes((await s.getJobRecord('resync'))!));
        assert.equal(await s.getJobRecord('other'), undefined, 'records are per job');
        assert.ok((await s.uuid()).length > 0, 'job records do not touch the store metadata');
      }));

      it('of many concurrent swaps from one record exactly one wins (a lease); records touch no documents', withStore(async (s) => {
        await s.putJobRecord('lease', undefined, 'v0');
        const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => s.putJobRecord('lease', 'v0', `node${i}`)));
        assert.equal(wins.filter(Boolean).length, 1);
        assert.equal(await s.getJobRecord('lease'), `node${wins.indexOf(true)}`);
        assert.equal(await s.lastSeq(), 0);
        assert.deepEqual(await s.changes({ since: 0 }), []);
      }));
    });

    describe('local docs', () => {
      it('putLocal creates at 1 and counts up; a wrong expectedRev is a conflict', withStore(async (s) => {
        assert.equal(await s.putLocal('cp', 0, '{"n":1}'), 1);
        assert.deepEqual(await s.getLocal('cp'), { rev: 1, body: '{"n":1}' });
        assert.equal(await s.putLocal('cp', 0, '{"n":"again"}'), null, 'already exists');
        assert.equal(await s.putLocal('cp', 2, '{"n":"ahead"}'), null);
        assert.equal(await s.putLocal('cp', 1, '{"n":2}'), 2);
        assert.equal(await s.putLocal('cp', 1, '{"n":"stale"}'), null);
        assert.deepEqual(await s.getLocal('cp'), { rev: 2, body: '{"n":2}' });
        assert.equal(await s.putLocal('other', 5, '{}'), null, 'absent is rev 0');
        assert.equal(await s.getLocal('other'), undefined);
      }));

      it('deleteLocal needs the current rev; afterwards the doc is gone and restarts at 1', withStore(async (s) => {
        await s.putLocal('cp', 0, '{}');
        await s.putLocal('cp', 1, '{"x":1}');
        assert.equal(await s.deleteLocal('cp', 1), false);
        assert.equal(await s.deleteLocal('cp', 0), false);
        assert.equal((await s.getLocal('cp'))?.rev, 2);
        assert.equal(await s.deleteLocal('cp', 2), true);
        assert.equal(await s.getLocal('cp'), undefined);
        assert.equal(await s.deleteLocal('cp', 2), false, 'twice');
        assert.equal(await s.deleteLocal('never', 0), false);
        assert.equal(await s.putLocal('cp', 0, '{"again":true}'), 1);
      }));

      it('local docs are separate from documents: no seq, no feed, no allDocs, no count', withStore(async (s) => {
        await put(s, docWrite('same', 0));
        await s.putLocal('same', 0, '{"local":true}');
        await s.putLocal('only-local', 0, '{}');
        assert.equal(await s.lastSeq(), 1);
        assert.deepEqual((await s.changes({ since: 0 })).map((r) => r.id), ['same']);
        assert.deepEqual((await s.allDocs({ includeDeleted: true })).map((r) => r.id), ['same']);
        assert.equal(await s.countDocs(), 1);
        assert.equal(await s.getDoc('only-local'), undefined);
        await s.purge('same');
        assert.deepEqual(await s.getLocal('same'), { rev: 1, body: '{"local":true}' });
      }));

      it('keeps bodies verbatim, including large and non-ASCII ones', withStore(async (s) => {
        const body = JSON.stringify({ text: 'ünïcödé 😀 \u2028', big: 'x'.repeat(200_000) });
        assert.equal(await s.putLocal('big', 0, body), 1);
        assert.equal((await s.getLocal('big'))?.body, body);
      }));

      it('concurrent putLocal with the same expectedRev: exactly one wins', withStore(async (s) => {
        await s.putLocal('cp', 0, '{}');
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => s.putLocal('cp', 1, `{"w":${i}}`)));
        assert.deepEqual(results.filter((r) => r !== null), [2]);
      }));
    });
  
    describe('principals, grants and sessions', () => {
      it('listPrincipals pages in byte order: prefix, after (exclusive), limit', withStore(async (s) => {
        for (const name of ['b', 'ab', 'a', 'abc', 'ac', 'c', 'B', 'a-b']) {
          await s.putPrincipal({ kind: 'user', name, adminChannels: {}, adminRoles: {}, disabled: false });
        }
        await s.putPrincipal({ kind: 'role', name: 'ab', adminChannels: {}, adminRoles: {}, disabled: false });
        assert.deepEqual(await s.listPrincipals('user'), ['B', 'a', 'a-b', 'ab', 'abc', 'ac', 'b', 'c']);
        assert.deepEqual(await s.listPrincipals('user', { prefix: 'a' }), ['a', 'a-b', 'ab', 'abc', 'ac']);
        assert.deepEqual(await s.listPrincipals('user', { prefix: 'ab' }), ['ab', 'abc']);
        assert.deepEqual(await s.listPrincipals('user', { prefix: 'a', after: 'ab' }), ['abc', 'ac']);
        assert.deepEqual(await s.listPrincipals('user', { prefix: 'a', after: '0' }), ['a', 'a-b', 'ab', 'abc', 'ac'], 'after before the prefix range');
        assert.deepEqual(await s.listPrincipals('user', { prefix: 'a', after: 'az' }), []);
        assert.deepEqual(await s.listPrincipals('user', { after: 'abd', limit: 2 }), ['ac', 'b']);
        assert.deepEqual(await s.listPrincipals('user', { prefix: 'zz' }), []);
        assert.deepEqual(await s.listPrincipals('user', { limit: 3 }), ['B', 'a', 'a-b']);
        assert.deepEqual(await s.listPrincipals('role', { prefix: 'a' }), ['ab'], 'kinds apart');
      }));

      it('principals: put assigns the next sequence, get/list/delete by kind', withStore(async (s) => {
        const s1 = await put(s, docWrite('d', 0));
        const p1 = await s.putPrincipal({ kind: 'user', name: 'alice', adminChannels: { a: 0 }, adminRoles: {}, disabled: false, passwordHash: 'h' });
        assert.equal(p1, s1 + 1);
        assert.equal(await s.lastSeq(), p1);
        const r1 = await s.putPrincipal({ kind: 'role', name: 'alice', adminChannels: { r: 0 }, adminRoles: {}, disabled: false });
        assert.equal(r1, p1 + 1);
        const u = await s.getPrincipal('user', 'alice');
        assert.deepEqual(u, { kind: 'user', name: 'alice', adminChannels: { a: 0 }, adminRoles: {}, disabled: false, passwordHash: 'h', seq: p1 });
        assert.equal((await s.getPrincipal('role', 'alice'))?.seq, r1);
        assert.deepEqual(await s.listPrincipals('user'), ['alice']);
        assert.equal(await s.deletePrincipal('user', 'alice'), true);
        assert.equal(await s.deletePrincipal('user', 'alice'), false);
        assert.equal(await s.getPrincipal('user', 'alice'), undefined);
        assert.deepEqual(await s.listPrincipals('role'), ['alice']);
        // The next document write continues after the principal sequences.
        assert.equal(await put(s, docWrite('e', 0)), r1 + 1);
      }));

      it('grants: replaced per document with each write; changed grantees are stamped; unchanged grants keep their sequence', withStore(async (s) => {
        const w1 = { ...docWrite('g', 0), grants: [{ grantee: 'bob', kind: 'channel' as const, value: 'x' }, { grantee: 'role:r', kind: 'channel' as const, value: 'y' }] };
        const [c1] = await s.commit([w1]);
        assert.ok(c1.ok);
        const seq1 = (c1 as { seq: number }).seq;
        assert.deepEqual(((c1 as { grantees?: string[] }).grantees ?? []).sort(), ['bob', 'role:r']);
        assert.deepEqual((await s.grantsTo(['bob'])).map((g) => [g.docId, g.kind, g.value, g.seq]), [['g', 'channel', 'x', seq1]]);
        // A new revision that keeps bob's grant and drops role:r's.
        const w2 = { ...docWrite('g', seq1, { rev: '2-b' }), grants: [{ grantee: 'bob', kind: 'channel' as const, value: 'x' }, { grantee: 'carol', kind: 'role' as const, value: 'editors' }] };
        const [c2] = await s.commit([w2]);
        assert.equal((c2 as { seq: number }).seq, seq1 + 2);
        const seq2 = (c2 as { seq: number }).seq;
        assert.deepEqual(((c2 as { grantees?: string[] }).grantees ?? []).sort(), ['carol', 'role:r']);
        assert.equal((await s.grantsTo(['bob']))[0].seq, seq1, 'a surviving grant keeps its original sequence');
        assert.deepEqual(await s.grantsTo(['role:r']), []);
        assert.deepEqual((await s.grantsTo(['carol'])).map((g) => [g.kind, g.value]), [['role', 'editors']]);
        const changed = await s.grantsChangedAt(['bob', 'role:r', 'carol', 'nobody']);
        // Grantees are stamped with a sequence of their own, right after the granting write's.
        assert.equal(changed.get('bob'), seq1 + 1);
        assert.equal(changed.get('role:r'), seq2 + 1);
        assert.equal(changed.get('carol'), seq2 + 1);
        assert.equal(await s.lastSeq(), seq2 + 1);
        assert.equal(changed.has('nobody'), false);
        assert.deepEqual((await s.grantsBy('g')).map((g) => [g.grantee, g.kind, g.value]).sort(), [['bob', 'channel', 'x'], ['carol', 'role', 'editors']]);
        assert.deepEqual(await s.grantsBy('no-such-doc'), []);
        // A write without `grants` leaves them alone (the winner did not change).
        const [c3] = await s.commit([docWrite('g', seq2, { rev: '3-c' })]);
        assert.equal((c3 as { seq: number }).seq, seq2 + 2);
        assert.ok(c3.ok);
        assert.equal((await s.grantsTo(['bob'])).length, 1);
        // Purge revokes and stamps the grantees with a new sequence.
        await s.purge('g');
        assert.deepEqual(await s.grantsTo(['bob', 'carol']), []);
        const after = await s.grantsChangedAt(['bob']);
        assert.ok(after.get('bob')! > (c3 as { seq: number }).seq);
      }));

      it('the access version moves on every change to access: principal saves and deletions, grant changes, purges', withStore(async (s) => {
        const version = () => (s.accessVersion ? s.accessVersion() : s.lastSeq());
        const moved = async (what: string, change: () => Promise<unknown>) => {
          const before = await version();
          await change();
          assert.notEqual(await version(), before, `${what} moves the access version`);
        };
        await moved('a user save', () => s.putPrincipal({ kind: 'user', name: 'ann', adminChannels: {}, adminRoles: {}, disabled: false }));
        await moved('a role save', () => s.putPrincipal({ kind: 'role', name: 'r', adminChannels: { c: 0 }, adminRoles: {}, disabled: false }));
        await moved('a new grant', () => s.commit([{ ...docWrite('gr', 0), grants: [{ grantee: 'ann', kind: 'channel' as const, value: 'c' }] }]));
        const seq = (await s.getDoc('gr'))!.seq;
        await moved('a revoked grant', () => s.commit([{ ...docWrite('gr', seq, { rev: '2-b' }), grants: [] }]));
        const seq2 = (await s.getDoc('gr'))!.seq;
        await s.commit([{ ...docWrite('gr', seq2, { rev: '3-c' }), grants: [{ grantee: 'ann', kind: 'role' as const, value: 'r' }] }]);
        await moved('a purge of a granting doc', () => s.purge('gr'));
        await moved('a principal deletion', () => s.deletePrincipal('user', 'ann'));
      }));

      it('sessions: put, get, delete one, delete all of a user', withStore(async (s) => {
        await s.putSession({ id: 's1', user: 'alice', expires: 1000, ttlMs: 500 });
        await s.putSession({ id: 's2', user: 'alice', expires: 2000, ttlMs: 500 });
        await s.putSession({ id: 's3', user: 'bob', expires: 3000, ttlMs: 500 });
        assert.deepEqual(await s.getSession('s1'), { id: 's1', user: 'alice', expires: 1000, ttlMs: 500 });
        await s.putSession({ id: 's1', user: 'alice', expires: 1500, ttlMs: 500 });
        assert.equal((await s.getSession('s1'))?.expires, 1500);
        assert.equal(await s.deleteSession('s3'), true);
        assert.equal(await s.deleteSession('s3'), false);
        assert.equal(await s.deleteUserSessions('alice'), 2);
        assert.equal(await s.getSession('s2'), undefined);
      }));

      it('revisions keep the channels their sync function gave them', withStore(async (s) => {
        const w = docWrite('c', 0, { channels: ['a'], addBodies: [{ rev: '1-a', deleted: false, body: '{}', attachments: null, channels: ['a', 'b'] }] });
        await put(s, w);
        assert.deepEqual((await s.getRevision('c', '1-a'))?.channels, ['a', 'b']);
      }));
    });
});
}

/**
 * Named collections, on every backend: what a collection keeps to itself (documents, revisions, the
 * channel index, local docs, counts, grants by document) and what the database shares (sequences,
 * attachment bytes, grant stamps), beside the default collection that is the store itself.
 *
 *   collectionsContract('sqlite :memory:', () => new SqliteStore({ path: ':memory:' }));
 *
 * `reopen`, when given, closes a store and opens the same database again (a file, a schema).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRow, CollectionStore, CommitResult, DocWrite, Store } from '../../src/storage/store.ts';
import { digestOf, docWrite, type CloseStore, type OpenStore } from './contract.ts';

function seqOf(r: CommitResult | undefined): number {
  assert.ok(r?.ok, `expected the write to commit, got ${JSON.stringify(r)}`);
  return (r as { seq: number }).seq;
}

async function put(s: CollectionStore, w: DocWrite): Promise<number> {
  return seqOf((await s.commit([w]))[0]);
}

const brief = (rows: ChangeRow[]): string[] => rows.map((r) => `${r.id}:${r.rev}${r.deleted ? ':deleted' : ''}${r.removed ? `:removed=${r.removed}` : ''}`);

export function collectionsContract(name: string, open: OpenStore, close: CloseStore = (s) => s.close(),
  reopen?: (s: Store) => Promise<Store>): void {
  const withStore = (fn: (store: Store) => Promise<void>) => async () => {
    const holder = { store: await open() };
    try {
      await fn(holder.store);
    } finally {
      await close(holder.store);
    }
  };

  describe(`Store collections: ${name}`, () => {
    it('the default collection is the store; a named one is made once, cached, listed, and takes no sequence', withStore(async (s) => {
      assert.equal(await s.collection('_default', '_default'), s);
      assert.deepEqual(await s.listCollections(), []);
      const a = await s.collection('inventory', 'hotel');
      assert.notEqual(a, s);
      assert.equal(await s.collection('inventory', 'hotel'), a, 'cached');
      const [b, b2] = await Promise.all([s.collection('inventory', 'airline'), s.collection('inventory', 'airline')]);
      assert.equal(b, b2, 'two callers at once get the one store');
      await s.collection('_default', 'extra');
      assert.deepEqual(await s.listCollections(), [
        { scope: '_default', name: 'extra' }, { scope: 'inventory', name: 'airline' }, { scope: 'inventory', name: 'hotel' },
      ]);
      assert.equal(await s.lastSeq(), 0);
      assert.equal(await a.lastSeq(), 0);
      assert.equal(await a.countDocs(), 0);
      assert.deepEqual(await a.changes({ since: 0 }), []);
      await assert.rejects(s.collection('', 'x'), /non-empty/);
      await assert.rejects(s.collection('x', ''), /non-empty/);
      await assert.rejects(s.collection('a.b', 'c'), /without dots/);
      await assert.rejects(s.collection('a', 'b.c'), /without dots/);
      assert.equal((await s.listCollections()).length, 3, 'a refused name is not registered');
    }));

    it('the same document id and channel in two collections and the default one are independent', withStore(async (s) => {
      const a = await s.collection('inventory', 'airline');
      const b = await s.collection('inventory', 'hotel');
      const sd = await put(s, docWrite('doc', 0, { rev: '1-d', channels: ['red'], body: '{"in":"default"}' }));
      const sa = await put(a, docWrite('doc', 0, { rev: '1-a', channels: ['red'], body: '{"in":"airline"}' }));
      const sb = await put(b, docWrite('doc', 0, { rev: '1-b', channels: ['blue'], body: '{"in":"hotel"}' }));
      assert.deepEqual([sd, sa, sb], [1, 2, 3], 'one sequence space, in commit order');
      assert.equal((await s.getDoc('doc'))?.rev, '1-d');
      assert.equal((await a.getDoc('doc'))?.rev, '1-a');
      assert.equal((await b.getDoc('doc'))?.rev, '1-b');
      assert.equal((await a.getRevision('doc', '1-a'))?.body, '{"in":"airline"}');
      assert.equal(await a.getRevision('doc', '1-d'), undefined);
      assert.equal(await s.getRevision('doc', '1-a'), undefined);
      assert.deepEqual([...(await b.getRevisions([{ id: 'doc', rev: '1-b' }, { id: 'doc', rev: '1-a' }])).values()].map((r) => r.rev), ['1-b']);
      assert.deepEqual([...(await a.getDocs(['doc', 'other'])).values()].map((d) => d.seq), [2]);
      // Feeds: each collection's own documents, with and without channels, by doc id too.
      assert.deepEqual(brief(await s.changes({ since: 0 })), ['doc:1-d']);
      assert.deepEqual(brief(await a.changes({ since: 0 })), ['doc:1-a']);
      assert.deepEqual(brief(await a.changes({ since: 0, channels: ['red'] })), ['doc:1-a']);
      assert.deepEqual(brief(await s.changes({ since: 0, channels: ['red'] })), ['doc:1-d']);
      assert.deepEqual(await b.changes({ since: 0, channels: ['red'] }), []);
      assert.deepEqual(await a.changes({ since: 0, channels: ['blue'] }), []);
      assert.deepEqual((await b.changes({ since: 0, docIds: ['doc'] })).map((r) => r.seq), [3]);
      assert.deepEqual((await a.changes({ since: 0, channels: ['red'], docIds: ['doc'] })).map((r) => r.seq), [2]);
      assert.deepEqual((await a.changes({ since: 2 })), [], 'since is a database-wide sequence');
      assert.deepEqual((await a.changes({ since: 0, until: 1 })), [], 'and so is until');
      assert.deepEqual((await a.allDocs({})).map((r) => [r.id, r.rev]), [['doc', '1-a']]);
      assert.deepEqual((await a.docChannels('doc')).map((r) => r.channel), ['red']);
      assert.deepEqual((await b.docChannels('doc')).map((r) => r.channel), ['blue']);
      assert.deepEqual(brief(await a.channelTail('red', 10)), ['doc:1-a']);
      assert.deepEqual(await b.channelTail('red', 10), []);
      // Leaving a channel in one collection leaves the other collection's index alone.
      await put(a, docWrite('doc', sa, { rev: '2-a', channels: [], previousChannels: ['red'] }));
      assert.deepEqual(brief(await a.changes({ since: 0, channels: ['red'] })), ['doc:2-a:removed=red']);
      assert.deepEqual(brief(await s.changes({ since: 0, channels: ['red'] })), ['doc:1-d']);
      // Counts.
      await put(b, docWrite('gone', 0, { deleted: true }));
      assert.deepEqual(await s.docCounts(), { live: 1, deleted: 0 });
      assert.deepEqual(await a.docCounts(), { live: 1, deleted: 0 });
      assert.deepEqual(await b.docCounts(), { live: 1, deleted: 1 });
      assert.equal(await b.countDocs(), 1);
    }));

    it('local docs, purge, expiry, tombstones and old revisions stay in their collection', withStore(async (s) => {
      const a = await s.collection('inventory', 'airline');
      assert.equal(await a.putLocal('cp', 0, '{"c":"airline"}'), 1);
      assert.equal(await s.getLocal('cp'), undefined);
      assert.equal(await s.putLocal('cp', 0, '{"c":"default"}'), 1, 'the same id is new in the default collection');
      assert.equal(await a.putLocal('cp', 1, '{"c":"airline 2"}'), 2);
      assert.deepEqual(await s.getLocal('cp'), { rev: 1, body: '{"c":"default"}' });
      assert.equal(await s.deleteLocal('cp', 1), true);
      assert.deepEqual(await a.getLocal('cp'), { rev: 2, body: '{"c":"airline 2"}' });

      const now = Math.floor(Date.now() / 1000);
      const d1 = await put(s, { ...docWrite('x', 0, { channels: ['c'] }), expiry: now - 10 });
      const a1 = await put(a, { ...docWrite('x', 0, { channels: ['c'] }), expiry: now - 5 });
      await put(a, { ...docWrite('only-a', 0), expiry: now - 1 });
      assert.deepEqual(await s.expired(now, 10), ['x']);
      assert.deepEqual(await a.expired(now, 10), ['x', 'only-a']);
      // Tombstones and retired bodies of one collection.
      await put(a, docWrite('x', a1, { rev: '2-x', deleted: true, previousChannels: ['c'], retireBodies: [{ rev: '1-a', until: now + 50 }] }));
      assert.deepEqual(await a.tombstonesBefore(now + 10, 10), ['x']);
      assert.deepEqual(await s.tombstonesBefore(now + 10, 10), []);
      assert.equal((await a.getOldRevision('x', '1-a', now))?.body, '{"rev":"1-a"}');
      assert.equal(await s.getOldRevision('x', '1-a', now), undefined);
      assert.equal((await a.oldRevisionUsage()).count, 1);
      assert.equal((await s.oldRevisionUsage()).count, 0);
      await put(s, docWrite('x', d1, { rev: '2-d', retireBodies: [{ rev: '1-a', until: now + 5 }], channels: ['c'], previousChannels: ['c'] }));
      assert.equal(await s.dropOldRevisions(now + 100, 10), 1, 'only the default collection\'s old body, though both ran out');
      assert.equal((await a.getOldRevision('x', '1-a', now))?.body, '{"rev":"1-a"}');
      assert.equal(await a.dropOldRevisions(now + 2000, 10), 1);
      // Purging a document of one collection leaves the same id in the other.
      assert.equal(await a.purge('x'), true);
      assert.equal(await a.getDoc('x'), undefined);
      assert.deepEqual(await a.changes({ since: 0, channels: ['c'] }), []);
      assert.equal((await s.getDoc('x'))?.rev, '2-d');
      assert.equal((await s.getRevision('x', '2-d'))?.body, '{"rev":"2-d"}');
      assert.deepEqual(brief(await s.changes({ since: 0, channels: ['c'] })), ['x:2-d']);
      assert.deepEqual(await a.docCounts(), { live: 1, deleted: 0 });
      assert.deepEqual(await s.docCounts(), { live: 1, deleted: 0 });
      assert.equal(await s.purge('only-a'), false, 'not a document of the default collection');
      assert.equal((await a.getDoc('only-a'))?.rev, '1-a');
    }));

    it('sequences are shared and strictly increasing across collections, batches and principals', withStore(async (s) => {
      const colls = [s, await s.collection('sc', 'one'), await s.collection('sc', 'two')];
      const seen: number[] = [];
      // Writers of all three collections at once, plus principal saves, which also take sequences.
      await Promise.all([
        ...colls.map(async (c, i) => {
          for (let k = 0; k < 10; k++) {
            const res = await c.commit([docWrite(`d${k}`, 0, { channels: ['ch'] }), docWrite(`e${k}`, 0)]);
            for (const r of res) seen.push(seqOf(r));
          }
          return i;
        }),
        (async () => {
          for (let k = 0; k < 5; k++) seen.push(await s.putPrincipal({ kind: 'user', name: `u${k}`, adminChannels: {}, adminRoles: {}, disabled: false }));
        })(),
      ]);
      const sorted = [...seen].sort((x, y) => x - y);
      assert.deepEqual(sorted, Array.from({ length: 65 }, (_, i) => i + 1), 'every sequence once, no gap');
      for (const c of colls) assert.equal(await c.lastSeq(), 65);
      for (const c of colls) {
        const feed = (await c.changes({ since: 0 })).map((r) => r.seq);
        assert.equal(feed.length, 20);
        for (let i = 1; i < feed.length; i++) assert.ok(feed[i] > feed[i - 1], 'a feed is in sequence order');
      }
      const all = colls.map((c) => c.changes({ since: 0 }));
      const union = (await Promise.all(all)).flat().map((r) => r.seq);
      assert.equal(new Set(union).size, 60, 'no two collections share a sequence');
    }));

    it('grants: by document per collection, to a grantee from every collection with its collection named', withStore(async (s) => {
      const a = await s.collection('inventory', 'airline');
      const grant = (value: string) => [{ grantee: 'bob', kind: 'channel' as const, value }];
      const d = await s.commit([{ ...docWrite('g', 0), grants: grant('default-ch') }]);
      const r = await a.commit([{ ...docWrite('g', 0), grants: [...grant('airline-ch'), { grantee: 'bob', kind: 'role' as const, value: 'pilot' }] }]);
      assert.deepEqual((d[0] as { grantees?: string[] }).grantees, ['bob']);
      assert.deepEqual((r[0] as { grantees?: string[] }).grantees, ['bob']);
      assert.deepEqual((await s.grantsBy('g')).map((g) => g.value), ['default-ch']);
      assert.deepEqual((await a.grantsBy('g')).map((g) => g.value).sort(), ['airline-ch', 'pilot']);
      const rows = (await s.grantsTo(['bob'])).map((g) => [g.collection ?? '-', g.docId, g.kind, g.value, g.seq]);
      rows.sort((x, y) => String(x[3]).localeCompare(String(y[3])));
      const ra = seqOf(r[0]);
      assert.deepEqual(rows, [
        ['inventory.airline', 'g', 'channel', 'airline-ch', ra],
        ['-', 'g', 'channel', 'default-ch', seqOf(d[0])],
        ['inventory.airline', 'g', 'role', 'pilot', ra],
      ]);
      assert.equal((await s.grantsTo(['bob'])).find((g) => g.value === 'default-ch')!.collection, undefined, 'absent, not empty, for the default');
      // The grantee's stamp is database-wide: the latest change in any collection.
      assert.equal((await s.grantsChangedAt(['bob'])).get('bob'), ra + 1);
      // A purge in the collection revokes its grants only, and stamps the grantee anew.
      assert.equal(await a.purge('g'), true);
      assert.deepEqual((await s.grantsTo(['bob'])).map((g) => g.value), ['default-ch']);
      assert.ok((await s.grantsChangedAt(['bob'])).get('bob')! > ra + 1);
      assert.equal(await s.lastSeq(), (await s.grantsChangedAt(['bob'])).get('bob'));
    }));

    it('a collection this store has not opened yet still counts for grantsTo and compaction', {
      skip: reopen ? false : 'the database cannot be reopened',
    }, withStore(async (s) => {
      if (!reopen) return;
      const bytes = Buffer.from('only the hotel collection uses these bytes');
      const dg = digestOf(bytes);
      const h = await s.collection('inventory', 'hotel');
      await h.commit([{
        ...docWrite('h', 0, { bodyAttachments: { 'f.bin': { digest: dg, length: bytes.length, revpos: 1 } }, attachments: new Map([[dg, bytes]]) }),
        grants: [{ grantee: 'ann', kind: 'channel', value: 'rooms' }],
      }]);
      const again = await reopen(s);
      // Nothing of the hotel collection has been asked for since the reopen.
      assert.deepEqual((await again.grantsTo(['ann'])).map((g) => [g.collection, g.value]), [['inventory.hotel', 'rooms']]);
      assert.deepEqual(await again.compactAttachments(false), { referenced: 1, removed: 0 });
      assert.deepEqual(await again.listCollections(), [{ scope: 'inventory', name: 'hotel' }]);
      const h2 = await again.collection('inventory', 'hotel');
      assert.ok((await h2.getAttachment(dg))?.equals(bytes));
      assert.equal((await h2.getDoc('h'))?.rev, '1-a');
      assert.equal(await again.getDoc('h'), undefined);
      await close(again);
    }));

    it('attachment bytes are shared; compaction keeps what only a named collection references', withStore(async (s) => {
      const a = await s.collection('inventory', 'airline');
      const mine = Buffer.from('airline bytes');
      const old = Buffer.from('airline bytes of a retired revision');
      const orphan = Buffer.from('nobody uses these');
      const [dm, dold, dor] = [digestOf(mine), digestOf(old), digestOf(orphan)];
      const meta = (d: string, n: number) => ({ 'f.bin': { digest: d, length: n, revpos: 1 } });
      await put(a, docWrite('m', 0, { bodyAttachments: meta(dm, mine.length), attachments: new Map([[dm, mine]]) }));
      const o = await put(a, docWrite('o', 0, { bodyAttachments: meta(dold, old.length), attachments: new Map([[dold, old]]) }));
      await put(a, docWrite('o', o, { rev: '2-o', retireBodies: [{ rev: '1-a', until: 4_000_000_000 }] }));
      await put(s, docWrite('x', 0, { bodyAttachments: null, attachments: new Map([[dor, orphan]]) }));
      // Bytes stored by one collection are found from any other (content-addressed, database-wide).
      assert.ok((await s.getAttachment(dm))?.equals(mine));
      assert.deepEqual([...(await s.hasAttachments([dm, dold, dor]))].sort(), [dm, dold, dor].sort());
      assert.equal((await s.findAttachments([dm])).length, 1);
      assert.deepEqual(await s.compactAttachments(false), { referenced: 2, removed: 1 });
      assert.ok((await a.getAttachment(dm))?.equals(mine), 'referenced by a named collection\'s revision');
      assert.ok((await a.getAttachment(dold))?.equals(old), 'referenced by a named collection\'s old revision');
      assert.equal(await a.getAttachment(dor), undefined);
      await a.dropOldRevisions(4_000_000_001, 10);
      await a.purge('m');
      assert.deepEqual(await s.compactAttachments(false), { referenced: 0, removed: 2 });
    }));
  });
}

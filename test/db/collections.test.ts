/**
 * Named collections in the Database layer (issue 14), on both backends: each collection has its own
 * documents and sync function, sequences stay database-wide, a user's channels in one collection
 * say nothing about another's same-named channel (admin grants through collection_access and
 * access() grants alike), roles are database-wide, and resync covers every collection.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Database } from '../../src/db/database.ts';
import type { Collection } from '../../src/db/collection.ts';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';
import { openPostgresStore } from '../../src/storage/postgres/index.ts';
import type { Store } from '../../src/storage/store.ts';
import { SyncFunction } from '../../src/sync/index.ts';
import { Principals } from '../../src/auth/principals.ts';
import { principalIn, type Principal, type UserPrincipal } from '../../src/auth/principal.ts';
import { HttpError } from '../../src/errors.ts';
import { DB_NAME, startPgCluster, type PgCluster } from '../helpers/postgres.ts';

const AIRLINE = 'function(doc){ channel("x"); if (doc.grant) access(doc.grant, "x"); if (doc.roleFor) role(doc.roleFor, "role:pilots"); }';
const HOTEL = 'function(doc){ channel(doc.chan); }';

async function openDb(store: Store): Promise<Database> {
  const collections = [];
  for (const [name, src] of [['airline', AIRLINE], ['hotel', HOTEL], ['car', undefined]] as const) {
    collections.push({
      scope: 'inventory', name, store: await store.collection('inventory', name),
      sync: new SyncFunction(src ?? `function(doc){channel(${JSON.stringify(name)});}`, `db.inventory.${name}`),
    });
  }
  return new Database({ name: 'db', store, revsLimit: 100, allowConflicts: true, collections });
}

function coll(db: Database, name: string): Collection {
  const c = db.collection('inventory', name);
  assert.ok(c, `collection ${name}`);
  return c;
}

async function sees(c: Collection, id: string, p: Principal): Promise<boolean> {
  try {
    await c.get(id, {}, principalIn(p, c.key));
    return true;
  } catch (err) {
    if (err instanceof HttpError && (err.status === 403 || err.status === 401)) return false;
    throw err;
  }
}

function suite(backend: string, makeStore: () => Promise<Store>): void {
  describe(`named collections in the Database (${backend})`, () => {
    it('serves only the configured collections, in order; the default one is not served when scopes leave it out', async () => {
      const db = await openDb(await makeStore());
      try {
        assert.deepEqual(db.collectionNames(), [
          { scope: 'inventory', name: 'airline' }, { scope: 'inventory', name: 'hotel' }, { scope: 'inventory', name: 'car' },
        ]);
        assert.equal(db.collection('_default', '_default'), undefined);
        assert.equal(db.collection('inventory', 'boat'), undefined);
      } finally { await db.close(); }
    });

    it('keeps documents apart, runs each collection\'s own sync function, and shares one sequence space', async () => {
      const db = await openDb(await makeStore());
      try {
        const airline = coll(db, 'airline'), hotel = coll(db, 'hotel'), car = coll(db, 'car');
        const a = await airline.put({ id: 'same', body: { chan: 'h' }, newEdits: true });
        const h = await hotel.put({ id: 'same', body: { chan: 'h', other: 1 }, newEdits: true });
        const c = await car.put({ id: 'c1', body: {}, newEdits: true });
        assert.notEqual(a.rev, h.rev, 'different bodies, different revisions: the documents are separate');
        assert.deepEqual((await airline.getDocMeta('same'))!.channels, ['x']);
        assert.deepEqual((await hotel.getDocMeta('same'))!.channels, ['h']);
        assert.deepEqual((await car.getDocMeta('c1'))!.channels, ['car'], 'a named collection\'s default sync function: channel("<name>")');
        const seqs = [(await airline.getDocMeta('same'))!.seq, (await hotel.getDocMeta('same'))!.seq, (await car.getDocMeta('c1'))!.seq];
        assert.deepEqual([...seqs].sort((x, y) => x - y), seqs, 'sequences increase across collections');
        assert.equal(new Set(seqs).size, 3);
        assert.equal(await db.store.lastSeq(), seqs[2]);
        assert.equal(await db.store.getDoc('same'), undefined, 'nothing lands in the default collection');
        assert.deepEqual((await hotel.store.changes({ since: 0 })).map((r) => r.id), ['same']);
        assert.deepEqual((await hotel.store.changes({ since: 0, channels: ['x'] })), [], 'hotel has no channel x');
        // Purging one collection's document leaves the other's same id alone.
        assert.equal(await airline.purge('same'), true);
        assert.equal(await airline.getDocMeta('same'), undefined);
        assert.ok(await hotel.getDocMeta('same'));
      } finally { await db.close(); }
    });

    it('a channel granted in one collection says nothing about the same channel of another', async () => {
      const store = await makeStore();
      const db = await openDb(store);
      const principals = new Principals(store, {
        bcryptCost: 4, allowEmptyPassword: true, dbName: 'db',
        collectionKeys: ['inventory.airline', 'inventory.hotel', 'inventory.car'],
      });
      try {
        const airline = coll(db, 'airline'), hotel = coll(db, 'hotel');
        await airline.put({ id: 'a1', body: {}, newEdits: true }); // channel x of airline
        await hotel.put({ id: 'h1', body: { chan: 'x' }, newEdits: true }); // channel x of hotel
        await principals.putUser('alice', { password: 'pass', collection_access: { inventory: { airline: { admin_channels: ['x'] } } } });
        let alice = (await principals.loadUser('alice'))!;
        assert.equal(await sees(airline, 'a1', alice), true);
        assert.equal(await sees(hotel, 'h1', alice), false, 'x of airline is not x of hotel');
        const json = await principals.getUserJson('alice');
        assert.deepEqual(json?.collection_access, { inventory: { airline: { admin_channels: ['x'], all_channels: ['!', 'x'] } } });
        assert.deepEqual(json?.all_channels, ['!'], 'the default collection\'s channels stay apart');

        // access() in airline's sync function grants airline's x, not hotel's.
        await principals.putUser('bob', { password: 'pass' });
        await airline.put({ id: 'grant', body: { grant: 'bob' }, newEdits: true });
        const bob = (await principals.loadUser('bob'))!;
        assert.equal(await sees(airline, 'a1', bob), true);
        assert.equal(await sees(hotel, 'h1', bob), false);

        // Roles are database-wide: a role granted by an airline document gives its hotel channels too.
        await principals.putRole('pilots', { collection_access: { inventory: { hotel: { admin_channels: ['x'] } } } });
        await airline.put({ id: 'role', body: { roleFor: 'dave' }, newEdits: true });
        alice = (await principals.loadUser('alice'))!;
        assert.equal(await sees(hotel, 'h1', alice), false, 'alice holds no role yet');
        await airline.put({ id: 'role-alice', body: { roleFor: 'alice' }, newEdits: true });
        alice = (await principals.loadUser('alice')) as UserPrincipal;
        assert.ok(alice.roles.has('pilots'));
        assert.equal(await sees(hotel, 'h1', alice), true, 'the role\'s hotel channel x');

        // An unknown collection in collection_access is refused and changes nothing.
        await assert.rejects(principals.putUser('alice', { collection_access: { inventory: { boat: { admin_channels: ['y'] } } } }), /keyspace db\.inventory\.boat not found/);
        // A PUT without collection_access keeps it (Sync Gateway updates only the collections named).
        await principals.putUser('alice', { email: 'a@example.com' });
        assert.deepEqual((await principals.getUserJson('alice'))?.collection_access, {
          inventory: { airline: { admin_channels: ['x'], all_channels: ['!', 'x'] }, hotel: { all_channels: ['!', 'x'] } },
        });
        // Emptying one collection's admin channels removes that grant only.
        await principals.putUser('alice', { collection_access: { inventory: { airline: { admin_channels: [] } } } });
        alice = (await principals.loadUser('alice'))!;
        assert.equal(await sees(airline, 'a1', alice), false);
        assert.equal(await sees(hotel, 'h1', alice), true);
      } finally { await db.close(); }
    });

    it('a grant made in one collection wakes the grantee\'s feeds in every collection', async () => {
      const db = await openDb(await makeStore());
      try {
        const hotel = coll(db, 'hotel');
        const woke = hotel.notifier.wait(['_user:carol'], 10_000);
        await coll(db, 'airline').put({ id: 'g', body: { grant: 'carol' }, newEdits: true });
        assert.equal(await woke, true);
      } finally { await db.close(); }
    });
  });
}

suite('SQLite', async () => new SqliteStore({ path: ':memory:' }));

const cluster: PgCluster = await startPgCluster();
after(() => cluster.stop());
let n = 0;
suite('PostgreSQL', () => openPostgresStore({
  spec: { host: '127.0.0.1', port: cluster.port, database: DB_NAME },
  certpath: cluster.certs.clientCert, keypath: cluster.certs.clientKey, cacertpath: cluster.certs.caCert,
  schema: `collections_${++n}`, poolSize: 4,
}));

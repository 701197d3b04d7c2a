/** The ConfigStore contract, run against both backends: versions as compare-and-swap, groups, buckets. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ConfigStore, StoredDbConfig } from '../../src/storage/config-store.ts';
import { openPostgresConfigStore } from '../../src/storage/postgres/config-store.ts';
import { SqliteConfigStore } from '../../src/storage/sqlite/config-store.ts';
import { type PgCluster, startPgCluster } from '../helpers/postgres.ts';

const cfg = (db: string, version: string, extra: Record<string, unknown> = {}): StoredDbConfig => ({
  db, bucket: (extra.bucket as string) ?? db, version, config: { name: db, ...extra }, sgVersion: '0.1.0',
});

function contract(name: string, open: () => Promise<ConfigStore>, close: () => Promise<void>) {
  describe(`ConfigStore contract: ${name}`, () => {
    let s: ConfigStore;
    before(async () => { s = await open(); });
    after(async () => { await s.close(); await close(); });

    test('insert, get, list by group; one name per group; one database per bucket', async () => {
      assert.equal(await s.insert('g1', cfg('a', '1-aa', { revs_limit: 200 })), 'inserted');
      assert.equal(await s.insert('g1', cfg('a', '1-bb')), 'exists');
      assert.deepEqual(await s.insert('g2', cfg('other', '1-cc', { bucket: 'a' })), { bucketUsedBy: 'a (group g1)' });
      assert.deepEqual(await s.insert('g1', cfg('b', '1-dd', { bucket: 'a' })), { bucketUsedBy: 'a' });
      assert.equal(await s.insert('g2', cfg('a2', '1-ee', { bucket: 'a2' })), 'inserted');
      assert.deepEqual(await s.get('g1', 'a'), cfg('a', '1-aa', { revs_limit: 200 }));
      assert.deepEqual((await s.list('g1')).map((c) => c.db), ['a']);
      assert.deepEqual((await s.list('g2')).map((c) => c.db), ['a2']);
      assert.equal(await s.get('g2', 'a'), undefined);
    });

    test('replace is a compare-and-swap on the version; delete removes', async () => {
      assert.equal(await s.replace('g1', cfg('a', '2-ff', { revs_limit: 300 }), '1-xx'), false);
      assert.equal((await s.get('g1', 'a'))!.version, '1-aa');
      assert.equal(await s.replace('g1', cfg('a', '2-ff', { revs_limit: 300 }), '1-aa'), true);
      assert.deepEqual((await s.get('g1', 'a'))!.config, { name: 'a', revs_limit: 300 });
      assert.equal(await s.replace('g1', cfg('a', '3-00'), '1-aa'), false, 'the old version no longer matches');
      assert.equal(await s.replace('g1', cfg('zz', '2-00'), '1-aa'), false, 'no such config');
      assert.equal(await s.delete('g1', 'a'), true);
      assert.equal(await s.delete('g1', 'a'), false);
      assert.equal(await s.get('g1', 'a'), undefined);
      assert.equal(await s.insert('g1', cfg('b', '1-11', { bucket: 'a' })), 'inserted', 'a freed bucket can be taken');
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'syncgate-configstore-'));
contract('SQLite', async () => new SqliteConfigStore(dir), async () => rmSync(dir, { recursive: true, force: true }));

let cluster: PgCluster;
contract('PostgreSQL', async () => {
  cluster = await startPgCluster();
  const c = cluster.certs;
  return openPostgresConfigStore({ spec: { host: cluster.host, port: cluster.port, database: 'syncgate' }, certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert });
}, async () => cluster.stop());

describe('PostgreSQL ConfigStore watch', () => {
  test('a change by one store reaches another store\'s watcher of the same group only', async () => {
    const pg = await startPgCluster();
    try {
      const c = pg.certs;
      const o = { spec: { host: pg.host, port: pg.port, database: 'syncgate' }, certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert };
      const [writer, reader] = [await openPostgresConfigStore(o), await openPostgresConfigStore(o)];
      const seen: string[] = [];
      let heard: () => void = () => {};
      const got = new Promise<void>((resolve) => { heard = resolve; });
      reader.watch('g', (db) => { seen.push(db); heard(); });
      // The LISTEN connection is made in the background: write (to both groups) until it hears one.
      let done = false;
      void got.then(() => { done = true; });
      for (let i = 0; !done && i < 100; i++) {
        await writer.insert('other-group', cfg(`x${i}`, '1-00'));
        await writer.insert('g', cfg(`second${i}`, '1-00'));
        await Promise.race([got, new Promise((r) => setTimeout(r, 200))]);
      }
      await got;
      assert.ok(seen.length > 0 && seen.every((db) => db.startsWith('second')), `only group g's changes: ${seen}`);
      await writer.close();
      await reader.close();
    } finally {
      await pg.stop();
    }
  });
});

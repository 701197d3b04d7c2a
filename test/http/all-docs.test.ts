/**
 * `_all_docs` options as CouchDB combines them (PouchDB's allDocs over http): key, inclusive_end,
 * startkey/endkey with descending, skip and limit, keys with all of those, deleted docs among keys,
 * and total_rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('_all_docs: CouchDB query options', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway({
      databases: { db: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] }, ann: { password: 'ann-pw', admin_channels: ['a'] } } } },
    });
    db = `${gw.publicUrl}/db`;
    const docs = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ _id: id, channels: [id === 'a' || id === 'c' ? 'a' : 'other'] }));
    const r = await req(`${db}/_bulk_docs`, { method: 'POST', json: { docs: [...docs, { _id: 'gone' }] } });
    await req(`${db}/gone?rev=${r.body[5].rev}`, { method: 'DELETE' });
  });
  after(() => gw.stop());

  const ids = async (query: string) => {
    const r = await req(`${db}/_all_docs?${query}`);
    assert.equal(r.status, 200, `${query}: ${r.text}`);
    return r.body.rows.map((x: any) => x.key);
  };
  const enc = (v: unknown) => encodeURIComponent(JSON.stringify(v));

  test('key is a range of one', async () => {
    assert.deepEqual(await ids(`key=${enc('c')}`), ['c']);
    assert.deepEqual(await ids(`key=${enc('cc')}`), []);
    assert.deepEqual(await ids(`key=${enc('gone')}`), [], 'a deleted document is not in the range');
  });

  test('inclusive_end=false leaves out the end key, ascending and descending', async () => {
    assert.deepEqual(await ids(`endkey=${enc('c')}&inclusive_end=false`), ['a', 'b']);
    assert.deepEqual(await ids(`endkey=${enc('c')}&inclusive_end=true`), ['a', 'b', 'c']);
    assert.deepEqual(await ids(`startkey=${enc('b')}&endkey=${enc('d')}&inclusive_end=false`), ['b', 'c']);
    assert.deepEqual(await ids(`descending=true&startkey=${enc('d')}&endkey=${enc('b')}&inclusive_end=false`), ['d', 'c']);
    assert.deepEqual(await ids(`descending=true&endkey=${enc('b')}&inclusive_end=false`), ['e', 'd', 'c']);
    assert.deepEqual(await ids(`key=${enc('c')}&inclusive_end=false`), []);
  });

  test('descending with startkey/endkey, skip and limit', async () => {
    assert.deepEqual(await ids(`descending=true&startkey=${enc('d')}&endkey=${enc('b')}`), ['d', 'c', 'b']);
    assert.deepEqual(await ids('descending=true&skip=1&limit=2'), ['d', 'c']);
    assert.deepEqual(await ids(`startkey=${enc('b')}&skip=1&limit=2`), ['c', 'd']);
    assert.deepEqual(await ids('limit=0'), []);
    assert.equal((await req(`${db}/_all_docs`)).body.offset, 0);
    assert.equal((await req(`${db}/_all_docs?skip=2`)).body.offset, 2);
  });

  test('keys: in the order given (reversed when descending), then skip and limit; a deleted doc is named', async () => {
    const keys = ['d', 'gone', 'nope', 'a'];
    const r = await req(`${db}/_all_docs?include_docs=true`, { method: 'POST', json: { keys } });
    assert.deepEqual(r.body.rows.map((x: any) => x.key), keys);
    assert.deepEqual(r.body.rows[1].value, { rev: r.body.rows[1].value.rev, deleted: true });
    assert.match(r.body.rows[1].value.rev, /^2-/);
    assert.equal(r.body.rows[1].doc, null);
    assert.equal(r.body.rows[1].id, 'gone');
    assert.deepEqual(r.body.rows[2], { key: 'nope', error: 'not_found', status: 404 });
    assert.deepEqual(await ids(`keys=${enc(keys)}&descending=true`), ['a', 'nope', 'gone', 'd']);
    assert.deepEqual(await ids(`keys=${enc(keys)}&skip=1&limit=2`), ['gone', 'nope']);
    assert.deepEqual(await ids(`keys=${enc(['a', 'b', 'a'])}`), ['a', 'b', 'a']);
    assert.deepEqual(await ids(`keys=${enc([])}`), []);
    for (const range of [`startkey=${enc('a')}`, `endkey=${enc('a')}`, `key=${enc('a')}`]) {
      const bad = await req(`${db}/_all_docs?keys=${enc(keys)}&${range}`);
      assert.equal(bad.status, 400, range);
    }
  });

  test('total_rows: every live document for a reader who sees them all; the rows sent for one who does not', async () => {
    const all = await req(`${db}/_all_docs?limit=1`);
    assert.equal(all.body.total_rows, 5);
    assert.equal(all.body.rows.length, 1);
    const ann = { authorization: `Basic ${Buffer.from('ann:ann-pw').toString('base64')}` };
    const mine = await req(`${db}/_all_docs`, { headers: ann });
    assert.deepEqual(mine.body.rows.map((x: any) => x.id), ['a', 'c']);
    assert.equal(mine.body.total_rows, 2, 'Sync Gateway\'s count: nothing about documents ann cannot see');
    const keyed = await req(`${db}/_all_docs?keys=${enc(['gone', 'b'])}`, { headers: ann });
    assert.deepEqual(keyed.body.rows.map((x: any) => x.error), ['not_found', 'forbidden']);
  });
});

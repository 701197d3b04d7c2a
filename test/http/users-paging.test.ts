/**
 * Paging and searching `GET /{db}/_user/` and `/{db}/_role/` on a database of 10,000 users: Sync
 * Gateway's `name_only` and `limit`, Syncgate's `prefix` and `startafter`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('GET /{db}/_user/ and /{db}/_role/ paged, on 10,000 users', { timeout: 300_000 }, () => {
  let gw: TestGateway;
  const admin = (path: string, init: Parameters<typeof req>[1] = {}) => req(`${gw.adminUrl}${path}`, init);
  const N = 10_000;
  const uname = (i: number) => `u${String(i).padStart(5, '0')}`;

  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', users: { GUEST: { disabled: true } } } } });
    // Created through the store: 10,000 users through bcrypt would take minutes.
    const store = gw.gateway.get('db')!.store;
    for (let i = 0; i < N; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, k) => store.putPrincipal({ kind: 'user', name: uname(i + k), adminChannels: {}, adminRoles: {}, disabled: false })));
    }
    assert.equal((await admin('/db/_user/alice', { method: 'PUT', json: { password: 'pw-alice-1', email: 'alice@example.com', admin_channels: ['a'] } })).status, 201);
    assert.equal((await admin('/db/_user/zed', { method: 'PUT', json: { password: 'pw-zed-1', disabled: true } })).status, 201);
    for (const r of ['r1', 'r2', 'r3', 's1']) assert.equal((await admin(`/db/_role/${r}`, { method: 'PUT', json: {} })).status, 201);
  });
  after(async () => { await gw.stop(); });

  test('without parameters: every name, as Sync Gateway answers (GUEST excluded)', async () => {
    const r = await admin('/db/_user/');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, N + 2);
    assert.deepEqual([r.body[0], r.body[1], r.body.at(-1)], ['alice', uname(0), 'zed']);
  });

  test('limit needs name_only=false (Sync Gateway\'s rule); its rows are {name, email, disabled}', async () => {
    const bad = await admin('/db/_user/?limit=10');
    assert.deepEqual([bad.status, bad.body.reason], [400, 'Use of limit only supported when name_only=false']);
    const r = await admin('/db/_user/?name_only=false&limit=3');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, [
      { name: 'alice', email: 'alice@example.com', disabled: false },
      { name: uname(0), disabled: false },
      { name: uname(1), disabled: false },
    ]);
    assert.deepEqual((await admin('/db/_user/?name_only=false&prefix=z')).body, [{ name: 'zed', disabled: true }]);
    assert.equal((await admin('/db/_user/?name_only=false&limit=0&prefix=u0')).body.length, N, 'limit=0 is no limit');
  });

  test('startafter walks the list a page at a time; prefix searches on the server', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 4; page++) {
      const r = await admin(`/db/_user/?name_only=false&limit=50${after ? `&startafter=${after}` : ''}`);
      assert.equal(r.body.length, 50);
      seen.push(...r.body.map((u: { name: string }) => u.name));
      after = r.body.at(-1).name;
    }
    assert.deepEqual(seen, ['alice', ...Array.from({ length: 199 }, (_, i) => uname(i))], 'consecutive pages, nothing skipped or repeated');
    // A prefix search, paged to its end.
    const found: string[][] = [];
    after = undefined;
    for (;;) {
      const r = await admin(`/db/_user/?name_only=false&limit=4&prefix=u0999${after ? `&startafter=${after}` : ''}`);
      if (r.body.length === 0) break;
      found.push(r.body.map((u: { name: string }) => u.name));
      after = r.body.at(-1).name;
    }
    assert.deepEqual(found.map((p) => p.length), [4, 4, 2]);
    assert.deepEqual(found.flat(), Array.from({ length: 10 }, (_, i) => uname(9990 + i)));
    // Names only, with a prefix (no limit needed).
    assert.deepEqual((await admin('/db/_user/?prefix=u0000')).body, Array.from({ length: 10 }, (_, i) => uname(i)));
  });

  test('roles: limit, prefix and startafter (names only)', async () => {
    assert.deepEqual((await admin('/db/_role/')).body, ['r1', 'r2', 'r3', 's1']);
    assert.deepEqual((await admin('/db/_role/?limit=2')).body, ['r1', 'r2']);
    assert.deepEqual((await admin('/db/_role/?limit=2&startafter=r2')).body, ['r3', 's1']);
    assert.deepEqual((await admin('/db/_role/?prefix=r&startafter=r1')).body, ['r2', 'r3']);
    assert.equal((await admin('/db/_role/?limit=-1')).status, 400);
  });
});

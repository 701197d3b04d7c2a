/**
 * Admin `POST /{db}/_sync`, the sync function dry run, through a real gateway: channels, grants,
 * roles and expiry of a revision; rejections with the status a write would get; as the admin, as a
 * declared userCtx, or as a stored user; with the database's function or a pasted one; and nothing
 * stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const SYNC = `function (doc, oldDoc) {
  if (oldDoc && oldDoc.locked) throw({forbidden: 'locked'});
  if (doc.owner) requireUser(doc.owner);
  if (doc.type === 'secret') requireAccess('vault');
  if (doc.type === 'boss-only') requireRole('boss');
  if (doc.bad) throw({forbidden: 'bad documents are refused'});
  channel(doc.channels);
  if (doc.members) access(doc.members, doc.room);
  if (doc.promote) role(doc.promote, 'role:editor');
  if (doc.ttl) expiry(doc.ttl);
}`;

describe('POST /{db}/_sync (sync function dry run)', () => {
  let gw: TestGateway;
  const admin = (path: string, init: Parameters<typeof req>[1] = {}) => req(`${gw.adminUrl}${path}`, init);
  const dry = (json: unknown) => admin('/db/_sync', { method: 'POST', json });

  before(async () => {
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:', sync: SYNC,
          users: { alice: { password: 'pw-alice-1', admin_channels: ['vault'] }, bob: { password: 'pw-bob-1', admin_channels: ['news'] }, GUEST: { disabled: true } },
          roles: { boss: { admin_channels: [] } },
        },
      },
    });
    assert.equal((await admin('/db/room1', { method: 'PUT', json: { channels: ['rooms'], members: ['bob'], room: 'room-1' } })).status, 201);
    assert.equal((await admin('/db/locked1', { method: 'PUT', json: { channels: ['x'], locked: true } })).status, 201);
  });
  after(async () => { await gw.stop(); });

  test('a pasted body as the admin: channels, access, roles and expiry; nothing is stored', async () => {
    const before = (await admin('/db/')).body.update_seq;
    const r = await dry({ doc: { _id: 'new1', channels: ['b', 'a'], members: ['carol', 'role:staff'], room: 'r9', promote: 'dave', ttl: 60 } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.channels, ['a', 'b']);
    assert.deepEqual(r.body.access, { carol: ['r9'], 'role:staff': ['r9'] });
    assert.deepEqual(r.body.roles, { dave: ['editor'] });
    const now = Math.floor(Date.now() / 1000);
    assert.ok(r.body.expiry >= now + 50 && r.body.expiry <= now + 70, `expiry ${r.body.expiry}`);
    assert.equal(r.body.doc_id, 'new1');
    assert.match(r.body.rev, /^1-[0-9a-f]{32}$/);
    assert.equal(r.body.user, null);
    assert.equal(r.body.exception, undefined);
    assert.equal((await admin('/db/new1')).status, 404, 'not written');
    assert.equal((await admin('/db/')).body.update_seq, before, 'no sequence used');
    assert.equal((await admin('/db/_user/carol')).status, 404);
  });

  test('doc_id alone runs the stored current revision; with a body, the stored one is oldDoc', async () => {
    let r = await dry({ doc_id: 'room1' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.channels, ['rooms']);
    assert.deepEqual(r.body.access, { bob: ['room-1'] });
    assert.equal(r.body.rev, (await admin('/db/room1')).body._rev);
    // oldDoc is the stored revision: locked1 refuses any new revision.
    r = await dry({ doc_id: 'locked1', doc: { channels: ['x'] } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.rejection, { status: 403, error: 'Forbidden', reason: 'locked' });
    assert.equal(r.body.exception, '403 locked');
    assert.equal(r.body.channels, undefined);
    assert.match(r.body.rev, /^2-/, 'a child of the stored revision');
    // The same rule with a pasted oldDoc.
    r = await dry({ doc: { channels: ['x'] }, oldDoc: { locked: true } });
    assert.equal(r.body.rejection.reason, 'locked');
    r = await dry({ doc: { channels: ['x'] }, oldDoc: { locked: false } });
    assert.deepEqual(r.body.channels, ['x']);
  });

  test('rejections: throw({forbidden}), requireUser, requireAccess, requireRole, each with a write\'s status', async () => {
    let r = await dry({ doc: { bad: true } });
    assert.deepEqual(r.body.rejection, { status: 403, error: 'Forbidden', reason: 'bad documents are refused' });
    // The admin passes every require*.
    r = await dry({ doc: { owner: 'alice', type: 'secret', channels: ['c'] } });
    assert.deepEqual(r.body.channels, ['c']);
    r = await dry({ doc: { owner: 'alice', channels: ['c'] }, userCtx: { name: 'bob' } });
    assert.deepEqual(r.body.rejection, { status: 403, error: 'Forbidden', reason: 'sg wrong user' });
    assert.equal(r.body.user, 'bob');
    r = await dry({ doc: { owner: 'bob', channels: ['c'] }, userCtx: { name: 'bob' } });
    assert.deepEqual(r.body.channels, ['c']);
    r = await dry({ doc: { type: 'secret' }, userCtx: { name: 'zed', channels: ['elsewhere'] } });
    assert.equal(r.body.rejection.reason, 'sg missing channel access');
    r = await dry({ doc: { type: 'boss-only' }, userCtx: { name: 'zed', roles: ['boss'] } });
    assert.equal(r.body.rejection, undefined, r.text);
    r = await dry({ doc: { type: 'boss-only' }, userCtx: { name: 'zed', roles: ['intern'] } });
    assert.equal(r.body.rejection.reason, 'sg missing role');
  });

  test('user: a stored user with the channels it really has; the real write agrees', async () => {
    let r = await dry({ doc: { type: 'secret', channels: ['s'] }, user: 'alice' });
    assert.deepEqual([r.body.user, r.body.channels], ['alice', ['s']]);
    r = await dry({ doc: { type: 'secret', channels: ['s'] }, user: 'bob' });
    assert.equal(r.body.rejection.status, 403);
    assert.equal(r.body.rejection.reason, 'sg missing channel access');
    // What bob would really get on the public port.
    const bob = { Authorization: `Basic ${Buffer.from('bob:pw-bob-1').toString('base64')}` };
    const real = await req(`${gw.publicUrl}/db/secret1`, { method: 'PUT', json: { type: 'secret', channels: ['s'] }, headers: bob });
    assert.deepEqual([real.status, real.body.reason], [403, 'sg missing channel access']);
    assert.equal((await dry({ doc: {}, user: 'nobody' })).status, 404);
  });

  test('a pasted sync_function runs instead of the database\'s; one that does not compile is 400 naming it', async () => {
    let r = await dry({ sync_function: 'function (doc) { channel("only-" + doc.kind); access("erin", "room-" + doc.kind); }', doc: { kind: 'k', bad: true } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.channels, ['only-k']);
    assert.deepEqual(r.body.access, { erin: ['room-k'] });
    r = await dry({ sync_function: 'function (doc) {\n  channel(doc.x;\n}', doc: {} });
    assert.equal(r.status, 400);
    assert.match(r.body.reason, /does not compile \(line 2\)/);
    r = await dry({ sync_function: 'function (doc) { throw new Error("boom"); }', doc: {} });
    assert.deepEqual(r.body.rejection, { status: 500, error: 'Internal Server Error', reason: 'Exception in JS sync function' });
    // The same time limit as a real write.
    r = await dry({ sync_function: 'function (doc) { while (true) {} }', doc: {} });
    assert.equal(r.body.rejection.status, 500);
    assert.match(r.body.rejection.reason, /timed out/);
    r = await dry({ sync_function: 'function (doc) { channel("a,b"); }', doc: {} });
    assert.deepEqual([r.body.rejection.status, r.body.rejection.reason], [400, 'Illegal channel name "a,b"']);
    // The database's own function is unchanged.
    assert.equal((await dry({ doc: { bad: true } })).body.rejection.reason, 'bad documents are refused');
  });

  test('bad requests are 400 or 404 and the route is admin-only', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{}, 400, /must provide either doc_id or doc/],
      [{ doc_id: 'room1', oldDoc: {} }, 400, /cannot specify doc_id with a provided oldDoc/],
      [{ doc_id: 'nope' }, 404, /missing/],
      [{ doc: { _sync: {} } }, 400, /_sync/],
      [{ doc: { _private: 1 } }, 400, /beginning with '_'/],
      [{ doc: {}, userCtx: {} }, 400, /no user name provided/],
      [{ doc: {}, userCtx: { name: 'a' }, user: 'alice' }, 400, /either user or userCtx/],
      [{ doc: [1] }, 400, /doc must be a JSON object/],
      [[], 400, /expected a JSON object/],
    ];
    for (const [body, status, reason] of cases) {
      const r = await dry(body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.body.reason, reason, JSON.stringify(body));
    }
    assert.equal((await req(`${gw.publicUrl}/db/_sync`, { method: 'POST', json: { doc: {} } })).status, 404);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DbAuth, GRANTED_BY_OWN_SAVE, Principals, Sessions, createDbAuth } from '../../src/auth/index.ts';
import { RequestContext } from '../../src/http/context.ts';
import { authRoutes } from '../../src/http/routes/users-roles.ts';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { type RouteListener, routeListener } from '../helpers/listener.ts';
import { docWrite } from '../storage/contract.ts';

const COST = 4;

function open(allowEmptyPassword = false) {
  const store = new SqliteStore({ path: ':memory:' });
  return { store, principals: new Principals(store, { bcryptCost: COST, allowEmptyPassword }), sessions: new Sessions(store) };
}

async function rejects(p: Promise<unknown>, status: number, reason: string) {
  await assert.rejects(p, (e: { status: number; reason: string }) => {
    assert.equal(e.status, status);
    assert.equal(e.reason, reason);
    return true;
  });
}

describe('Principals against a real store', () => {
  test('create, replace, POST conflict, and names', async () => {
    const { principals } = open();
    assert.equal(await principals.putUser('alice', { password: 'secret', admin_channels: ['a'] }), 'created');
    assert.equal(await principals.putUser('alice', { password: 'secret', admin_channels: ['a', 'b'] }), 'replaced');
    await rejects(principals.putUser('alice', { password: 'secret' }, { creating: true }), 409, 'Already exists');
    await rejects(principals.putUser('a b', { password: 'secret' }), 400, 'Invalid name "a b"');
    await rejects(principals.putRole('x/y', {}), 400, 'Invalid name "x/y"');
    assert.equal(await principals.putUser('o.k+1@x%_-', { password: 'secret' }), 'created');
    assert.deepEqual(await principals.listUsers(), ['alice', 'o.k+1@x%_-']);
  });

  test('password rules and write-only storage', async () => {
    const { store, principals } = open();
    await rejects(principals.putUser('u', {}), 400, 'Empty passwords are not allowed ');
    await rejects(principals.putUser('u', { password: '' }), 400, 'Empty passwords are not allowed ');
    await rejects(principals.putUser('u', { password: 'ab' }), 400, 'Passwords must be at least three 3 characters');
    await rejects(principals.putUser('u', { password: 7 }), 400, 'Bad JSON: password must be a string');
    await principals.putUser('u', { password: 'abc' });
    const rec = await store.getPrincipal('user', 'u');
    assert.match(rec!.passwordHash!, /^\$2[aby]\$/);
    assert.ok(!JSON.stringify(await principals.getUserJson('u')).includes('abc'));
    assert.ok(await principals.verifyPassword('u', 'abc'));
    assert.equal(await principals.verifyPassword('u', 'abd'), undefined);
    // Replacing without a password keeps it.
    await principals.putUser('u', { admin_channels: ['x'] });
    assert.ok(await principals.verifyPassword('u', 'abc'));

    const lax = open(true);
    assert.equal(await lax.principals.putUser('nopw', {}), 'created');
    assert.ok(await lax.principals.verifyPassword('nopw', ''));
    assert.equal(await lax.principals.verifyPassword('nopw', 'x'), undefined);
  });

  test('user JSON: computed all_channels and roles; read-only fields ignored', async () => {
    const { store, principals } = open();
    await principals.putRole('staff', { admin_channels: ['s1'] });
    await principals.putUser('alice', {
      password: 'pw1', admin_channels: ['b', 'a'], admin_roles: ['staff'], email: 'a@example.com',
      all_channels: ['zzz'], roles: ['boss'],
    });
    await store.commit([{ ...docWrite('grantdoc', 0), grants: [
      { grantee: 'alice', kind: 'channel', value: 'g' },
      { grantee: 'alice', kind: 'role', value: 'boss' },
      { grantee: 'role:staff', kind: 'channel', value: 's2' },
    ] }]);
    await principals.putRole('boss', { admin_channels: ['b1'] });
    assert.deepEqual(await principals.getUserJson('alice'), {
      name: 'alice', admin_channels: ['a', 'b'], all_channels: ['!', 'a', 'b', 'b1', 'g', 's1', 's2'],
      email: 'a@example.com', admin_roles: ['staff'], roles: ['boss', 'staff'],
    });
    assert.deepEqual(await principals.getRoleJson('staff'), { name: 'staff', admin_channels: ['s1'], all_channels: ['!', 's1', 's2'] });
    await principals.putUser('bare', { password: 'pw1' });
    assert.deepEqual(await principals.getUserJson('bare'), { name: 'bare', all_channels: ['!'] });
    assert.equal(await principals.getUserJson('nobody'), undefined);
    await rejects(principals.putUser('bad', { password: 'pw1', email: 'not an email' }), 400, 'Invalid email address');
    await rejects(principals.putUser('bad', { password: 'pw1', admin_channels: 'a' }), 400, 'Bad JSON: admin_channels must be an array of strings');
    await rejects(principals.putUser('bad', { password: 'pw1', admin_channels: ['a,b'] }), 400, 'Illegal channel name');
  });

  test('admin channels keep their granted-at sequence; new ones get the save\'s sequence', async () => {
    const { store, principals } = open();
    await principals.putUser('u', { password: 'pw1', admin_channels: ['a'] });
    const s1 = (await store.getPrincipal('user', 'u'))!.seq;
    assert.equal((await store.getPrincipal('user', 'u'))!.adminChannels.a, GRANTED_BY_OWN_SAVE);
    await store.commit([docWrite('filler', 0)]);
    await principals.putUser('u', { admin_channels: ['a', 'b'] });
    const s2 = (await store.getPrincipal('user', 'u'))!.seq;
    assert.ok(s2 > s1 + 1);
    const u = await principals.loadUser('u');
    assert.equal(u!.channels.get('a'), s1);
    assert.equal(u!.channels.get('b'), s2);
    assert.equal(u!.seq, s2);
    // The stored record now holds a's resolved sequence.
    assert.equal((await store.getPrincipal('user', 'u'))!.adminChannels.a, s1);
    // An unchanged PUT saves nothing: no new sequence, no _user entry.
    await principals.putUser('u', { admin_channels: ['b', 'a'] });
    assert.equal((await store.getPrincipal('user', 'u'))!.seq, s2);
    await principals.putUser('u', { admin_channels: ['b'] });
    const u3 = await principals.loadUser('u');
    assert.deepEqual([...u3!.channels.keys()].sort(), ['!', 'b']);
    assert.equal(u3!.channels.get('b'), s2);
  });

  test('a password change ends the user\'s sessions; other changes do not', async () => {
    const { principals, sessions } = open();
    await principals.putUser('u', { password: 'pw1' });
    const s = await sessions.create('u');
    await principals.putUser('u', { admin_channels: ['x'] });
    assert.ok(await sessions.get(s.id));
    await principals.putUser('u', { password: 'pw2', admin_channels: ['x'] });
    assert.equal(await sessions.get(s.id), undefined);
    assert.equal(await principals.verifyPassword('u', 'pw1'), undefined);
    assert.ok(await principals.verifyPassword('u', 'pw2'));
  });

  test('GUEST: disabled by default, enabled by a PUT, never deleted, never a Basic login', async () => {
    const { principals } = open();
    assert.equal(await principals.loadUser('GUEST'), undefined);
    assert.deepEqual(await principals.getUserJson('GUEST'), { name: 'GUEST', all_channels: ['!'], disabled: true });
    assert.equal(await principals.putUser('GUEST', { admin_channels: ['pub'] }), 'replaced');
    const guest = await principals.loadUser('GUEST');
    assert.ok(guest?.isGuest);
    assert.deepEqual([...guest!.channels.keys()].sort(), ['!', 'pub']);
    assert.equal(await principals.verifyPassword('GUEST', ''), undefined);
    await rejects(principals.deleteUser('GUEST'), 405, 'The GUEST user cannot be deleted. Only disabled via an update.');
    await rejects(principals.putUser('GUEST', { password: 'abc' }), 400, 'Anonymous users should not have a password');
    await principals.putUser('GUEST', { disabled: true });
    assert.equal(await principals.loadUser('GUEST'), undefined);
    assert.deepEqual(await principals.listUsers(), []);
  });

  test('disabled users do not load or log in; delete removes user and sessions', async () => {
    const { principals, sessions } = open();
    await principals.putUser('u', { password: 'pw1', disabled: true });
    assert.equal(await principals.loadUser('u'), undefined);
    assert.equal(await principals.verifyPassword('u', 'pw1'), undefined);
    assert.ok(await principals.loadUserAnyState('u'));
    const s = await sessions.create('u');
    await principals.deleteUser('u');
    assert.equal(await sessions.get(s.id), undefined);
    await rejects(principals.deleteUser('u'), 404, 'missing');
    await rejects(principals.deleteRole('nope'), 404, 'missing');
  });

  test('config users and roles: applied every start, unchanged ones not re-saved', async () => {
    const { store, principals, sessions } = open();
    const users = {
      alice: { password: 'pw1', admin_channels: ['a'], admin_roles: ['staff'], disabled: false },
      GUEST: { admin_channels: ['pub'], admin_roles: [], disabled: false },
    };
    const roles = { staff: { admin_channels: ['s'] } };
    await principals.applyConfig(users, roles);
    const seq = await store.lastSeq();
    assert.deepEqual([...(await principals.verifyPassword('alice', 'pw1'))!.channels.keys()].sort(), ['!', 'a', 's']);
    assert.ok(await principals.loadUser('GUEST'));
    const s = await sessions.create('alice');
    await principals.applyConfig(users, roles);
    assert.equal(await store.lastSeq(), seq, 'a restart with the same config saves nothing');
    assert.ok(await sessions.get(s.id), 'and keeps sessions');
    // An admin API edit is reset to the config at the next start.
    await principals.putUser('alice', { admin_channels: ['other'] });
    await principals.applyConfig({ ...users, alice: { ...users.alice, password: 'pw2' } }, roles);
    assert.deepEqual((await principals.getUserJson('alice'))!.admin_channels, ['a']);
    assert.equal(await sessions.get(s.id), undefined, 'a new config password ends sessions');
    assert.ok(await principals.verifyPassword('alice', 'pw2'));
  });

  test('repeated Basic auth does not pay bcrypt each time', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const principals = new Principals(store, { bcryptCost: 12, allowEmptyPassword: false });
    await principals.putUser('u', { password: 'correct horse' });
    let t = performance.now();
    assert.ok(await principals.verifyPassword('u', 'correct horse'));
    const first = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < 20; i++) assert.ok(await principals.verifyPassword('u', 'correct horse'));
    const cached = performance.now() - t;
    assert.ok(cached < first, `20 cached checks (${cached.toFixed(1)} ms) should cost less than one bcrypt (${first.toFixed(1)} ms)`);
    // Failures are never cached as successes, and a new password misses the cache.
    assert.equal(await principals.verifyPassword('u', 'correct horsE'), undefined);
    assert.equal(await principals.verifyPassword('u', 'correct horsE'), undefined);
    await principals.putUser('u', { password: 'battery staple' });
    assert.equal(await principals.verifyPassword('u', 'correct horse'), undefined);
    assert.ok(await principals.verifyPassword('u', 'battery staple'));
  });

  test('the credential cache expires and stays bounded', async () => {
    let now = 1_000_000;
    const store = new SqliteStore({ path: ':memory:' });
    const principals = new Principals(store, { bcryptCost: COST, allowEmptyPassword: false, now: () => now, credentialCacheSize: 2, credentialCacheTtlMs: 1000 });
    for (const n of ['a', 'b', 'c']) await principals.putUser(n, { password: `pw-${n}` });
    for (const n of ['a', 'b', 'c']) assert.ok(await principals.verifyPassword(n, `pw-${n}`));
    const size = (principals as unknown as { verified: { size: number } }).verified.size;
    assert.equal(size, 2);
    now += 2000;
    assert.ok(await principals.verifyPassword('c', 'pw-c'), 'an expired entry re-verifies with bcrypt');
  });
});

// ---- the routes, through a real listener, before the gateway wires them ----

function listener(auth: DbAuth): Promise<RouteListener> {
  return routeListener(authRoutes(), true, (ctx) => {
    (ctx as RequestContext & { auth?: DbAuth }).auth = auth;
  });
}

function userRoleApiTests(base: () => string) {
  test('users: POST, GET, PUT, list, DELETE', async () => {
    const db = base();
    let r = await req(`${db}/_user/`, { method: 'POST', json: { name: 'alice', password: 'pw1', admin_channels: ['a'] } });
    assert.equal(r.status, 201);
    assert.equal(r.text, '');
    r = await req(`${db}/_user/`, { method: 'POST', json: { password: 'pw1' } });
    assert.deepEqual([r.status, r.body.reason], [400, 'Missing name property']);
    r = await req(`${db}/_user/bob`, { method: 'PUT', json: { password: 'pw1' } });
    assert.equal(r.status, 201);
    r = await req(`${db}/_user/bob`, { method: 'PUT', json: { admin_channels: ['b'] } });
    assert.deepEqual([r.status, r.text], [200, '']);
    r = await req(`${db}/_user/bob`, { method: 'PUT', json: { name: 'carol' } });
    assert.deepEqual([r.status, r.body.reason], [400, "Name mismatch (can't change name)"]);
    r = await req(`${db}/_user/b%20b`, { method: 'PUT', json: { password: 'pw1' } });
    assert.deepEqual([r.status, r.body.reason], [400, 'Invalid name "b b"']);
    r = await req(`${db}/_user/`);
    assert.deepEqual(r.body, ['alice', 'bob']);
    r = await req(`${db}/_user/alice`);
    assert.deepEqual(r.body, { name: 'alice', admin_channels: ['a'], all_channels: ['!', 'a'] });
    assert.equal('password' in r.body, false);
    r = await req(`${db}/_user/GUEST`);
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'GUEST');
    r = await req(`${db}/_user/GUEST`, { method: 'DELETE' });
    assert.deepEqual([r.status, r.body.reason], [405, 'The GUEST user cannot be deleted. Only disabled via an update.']);
    r = await req(`${db}/_user/bob`, { method: 'DELETE' });
    assert.deepEqual([r.status, r.text], [200, '']);
    r = await req(`${db}/_user/bob`);
    assert.equal(r.status, 404);
    r = await req(`${db}/_user/bob`, { method: 'DELETE' });
    assert.equal(r.status, 404);
  });

  test('roles: POST, GET, PUT, list, DELETE', async () => {
    const db = base();
    let r = await req(`${db}/_role/`, { method: 'POST', json: { name: 'staff', admin_channels: ['s'] } });
    assert.equal(r.status, 201);
    r = await req(`${db}/_role/staff`, { method: 'PUT', json: { admin_channels: ['s', 't'], all_channels: ['ignored'] } });
    assert.equal(r.status, 200);
    r = await req(`${db}/_role/staff`);
    assert.deepEqual(r.body, { name: 'staff', admin_channels: ['s', 't'], all_channels: ['!', 's', 't'] });
    r = await req(`${db}/_role/`);
    assert.deepEqual(r.body, ['staff']);
    r = await req(`${db}/_role/staff`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    r = await req(`${db}/_role/staff`);
    assert.equal(r.status, 404);
  });

  test('ending a user\'s sessions', async () => {
    const db = base();
    await req(`${db}/_user/sam`, { method: 'PUT', json: { password: 'pw1' } });
    let r = await req(`${db}/_user/sam/_session`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    r = await req(`${db}/_user/nobody/_session`, { method: 'DELETE' });
    assert.equal(r.status, 404);
    r = await req(`${db}/_user/sam/_session/0123456789012345678901234567890123456789`, { method: 'DELETE' });
    assert.equal(r.status, 404);
  });
}

describe('users and roles routes (direct listener)', () => {
  let l: { url: string; close(): Promise<void> };
  let auth: DbAuth;
  before(async () => {
    auth = createDbAuth(new SqliteStore({ path: ':memory:' }), {
      sessionCookieName: 'SyncGatewaySession', sessionCookieHttpOnly: false, sendWwwAuthenticateHeader: true, allowEmptyPassword: false,
    }, { bcryptCost: COST, tls: false });
    l = await listener(auth);
  });
  after(() => l.close());
  userRoleApiTests(() => `${l.url}/db`);

  test('DELETE _session/{sid} only for the session\'s own user', async () => {
    await auth.principals.putUser('p', { password: 'pw1' });
    await auth.principals.putUser('q', { password: 'pw1' });
    const s = await auth.sessions.create('p');
    let r = await req(`${l.url}/db/_user/q/_session/${s.id}`, { method: 'DELETE' });
    assert.equal(r.status, 404);
    r = await req(`${l.url}/db/_user/p/_session/${s.id}`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal(await auth.sessions.get(s.id), undefined);
  });
});

describe('users and roles over the admin API (gateway)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      databases: {
        db: { server: 'memory:' },
        cfg: {
          server: 'memory:',
          users: { carol: { password: 'pw1', admin_channels: ['c'], admin_roles: ['staff'] }, GUEST: { disabled: false, admin_channels: ['pub'] } },
          roles: { staff: { admin_channels: ['s'] } },
        },
      },
    });
  });
  after(() => gw.stop());
  userRoleApiTests(() => `${gw.adminUrl}/db`);

  test('config users and roles are loaded', async () => {
    const r = await req(`${gw.adminUrl}/cfg/_user/carol`);
    assert.deepEqual(r.body, { name: 'carol', admin_channels: ['c'], all_channels: ['!', 'c', 's'], admin_roles: ['staff'], roles: ['staff'] });
    const g = await req(`${gw.adminUrl}/cfg/_user/GUEST`);
    assert.deepEqual(g.body, { name: 'GUEST', admin_channels: ['pub'], all_channels: ['!', 'pub'] });
  });

  test('the user routes are admin only', async () => {
    const r = await req(`${gw.publicUrl}/db/_user/`);
    assert.equal(r.status, 404);
  });
});

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  type DbAuth, Sessions, UnauthorizedError, authenticate, basicCredentials, createDbAuth, expiredSessionCookie,
  readCookie, sessionCookie,
} from '../../src/auth/index.ts';
import { RequestContext } from '../../src/http/context.ts';
import type { Route } from '../../src/http/router.ts';
import { authRoutes } from '../../src/http/routes/session.ts';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { type RouteListener, routeListener } from '../helpers/listener.ts';

const HOUR = 3600_000;
const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

describe('Sessions', () => {
  test('ids, sliding expiry and removal of expired sessions', async () => {
    let now = 1_700_000_000_000;
    const store = new SqliteStore({ path: ':memory:' });
    const sessions = new Sessions(store, { now: () => now });
    const s = await sessions.create('alice');
    assert.match(s.id, /^[0-9a-f]{40}$/);
    assert.notEqual((await sessions.create('alice')).id, s.id);
    assert.equal(s.expires, now + 24 * HOUR);
    now += 2 * HOUR; // under 10% of 24 h
    assert.deepEqual(await sessions.use(s.id), { session: s, refreshed: false });
    now += 1 * HOUR; // 3 h > 2.4 h
    const used = await sessions.use(s.id);
    assert.equal(used?.refreshed, true);
    assert.equal(used?.session.expires, now + 24 * HOUR);
    assert.equal((await sessions.get(s.id))?.expires, now + 24 * HOUR);
    now += 25 * HOUR;
    assert.equal(await sessions.use(s.id), undefined);
    assert.equal(await store.getSession(s.id), undefined, 'an expired session is removed');
    const short = await sessions.create('bob', 1000);
    now += 1001;
    assert.equal(await sessions.get(short.id), undefined);
  });

  test('cookies', () => {
    const at = Date.UTC(2030, 0, 2, 3, 4, 5);
    assert.equal(sessionCookie('SyncGatewaySession', 'abc', at, { path: '/db', secure: false, httpOnly: false }),
      'SyncGatewaySession=abc; Path=/db; Expires=Wed, 02 Jan 2030 03:04:05 GMT');
    assert.equal(sessionCookie('S', 'abc', at, { path: '/db', secure: true, httpOnly: true }),
      'S=abc; Path=/db; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Secure; HttpOnly');
    assert.equal(expiredSessionCookie('S', at, { path: '/db', secure: false, httpOnly: false }), 'S=; Path=/db; Expires=Wed, 02 Jan 2030 03:04:05 GMT');
    assert.equal(readCookie('a=1; SyncGatewaySession=xyz; b=2', 'SyncGatewaySession'), 'xyz');
    assert.equal(readCookie('a=1;b="q"', 'b'), 'q');
    assert.equal(readCookie('a=1', 'b'), undefined);
    assert.equal(readCookie(undefined, 'b'), undefined);
  });

  test('Basic credentials parsing', () => {
    assert.deepEqual(basicCredentials(basic('al', 'p:w').authorization), { name: 'al', password: 'p:w' });
    assert.deepEqual(basicCredentials('basic ' + Buffer.from('al:').toString('base64')), { name: 'al', password: '' });
    assert.equal(basicCredentials('Bearer xyz'), undefined);
    assert.equal(basicCredentials('Basic ' + Buffer.from(':pw').toString('base64')), undefined);
    assert.equal(basicCredentials('Basic !!!'), undefined);
    assert.equal(basicCredentials(undefined), undefined);
  });
});

// ---- authentication and the session routes through a real listener, before gateway wiring ----

const whoami: Route = {
  methods: ['GET', 'PUT'], pattern: '/{db}/whoami',
  handler: async (ctx) => {
    const p = ctx.principal;
    await ctx.sendJson(200, JSON.stringify(p.kind === 'admin' ? { admin: true } : { name: p.name, guest: p.isGuest, channels: Object.fromEntries(p.channels) }));
  },
};

function listener(auth: DbAuth, admin: boolean): Promise<RouteListener> {
  return routeListener([...authRoutes(), whoami], admin, async (ctx, m) => {
    (ctx as RequestContext & { auth?: DbAuth }).auth = auth;
    if (!admin) ctx.principal = await authenticate(ctx, auth, m.route.publicPrivileges === true);
  });
}

function cookieOf(headers: Headers): string {
  const set = headers.get('set-cookie') ?? '';
  return set.split(';')[0];
}

describe('authentication and _session (direct listener)', () => {
  let now = Date.now();
  let auth: DbAuth;
  let pub: { url: string; close(): Promise<void> };
  let adm: { url: string; close(): Promise<void> };
  before(async () => {
    auth = createDbAuth(new SqliteStore({ path: ':memory:' }), {
      sessionCookieName: 'SyncGatewaySession', sessionCookieHttpOnly: true, sendWwwAuthenticateHeader: true, allowEmptyPassword: false,
    }, { bcryptCost: 4, tls: false, now: () => now });
    await auth.principals.applyConfig({
      alice: { password: 'pw-alice', admin_channels: ['a'], admin_roles: [], disabled: false },
      dora: { password: 'pw-dora', admin_channels: [], admin_roles: [], disabled: false },
    }, {});
    pub = await listener(auth, false);
    adm = await listener(auth, true);
  });
  after(async () => { await pub.close(); await adm.close(); });

  test('no credentials and GUEST disabled: 401 Login required, but _session still answers', async () => {
    let r = await req(`${pub.url}/db/whoami`);
    assert.deepEqual([r.status, r.body.reason], [401, 'Login required']);
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="Couchbase Sync Gateway"');
    r = await req(`${pub.url}/db/_session`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { authentication_handlers: ['default', 'cookie'], ok: true, userCtx: { channels: { '!': 1 }, name: null } });
  });

  test('Basic auth', async () => {
    let r = await req(`${pub.url}/db/whoami`, { headers: basic('alice', 'pw-alice') });
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'alice');
    assert.deepEqual(Object.keys(r.body.channels).sort(), ['!', 'a']);
    r = await req(`${pub.url}/db/whoami`, { headers: basic('alice', 'nope') });
    assert.deepEqual([r.status, r.body.reason], [401, 'Invalid login']);
    r = await req(`${pub.url}/db/whoami`, { headers: basic('nobody', 'pw-alice') });
    assert.deepEqual([r.status, r.body.reason], [401, 'Invalid login']);
    r = await req(`${pub.url}/db/_session`, { headers: basic('alice', 'pw-alice') });
    assert.equal(r.body.userCtx.name, 'alice');
  });

  test('cookie login, use, sliding refresh, logout', async () => {
    let r = await req(`${pub.url}/db/_session`, { method: 'POST', json: { name: 'alice', password: 'pw-alice' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.userCtx.name, 'alice');
    const set = r.headers.get('set-cookie')!;
    assert.match(set, /^SyncGatewaySession=[0-9a-f]{40}; Path=\/db; Expires=[^;]+ GMT; HttpOnly$/);
    const cookie = cookieOf(r.headers);
    r = await req(`${pub.url}/db/whoami`, { headers: { cookie } });
    assert.deepEqual([r.status, r.body.name], [200, 'alice']);
    assert.equal(r.headers.get('set-cookie'), null, 'no refresh this early');
    now += 3 * HOUR;
    r = await req(`${pub.url}/db/whoami`, { headers: { cookie } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('set-cookie') ?? '', new RegExp(`^${cookie}; Path=/db; Expires=`));
    r = await req(`${pub.url}/db/_session`, { method: 'DELETE', headers: { cookie } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('set-cookie') ?? '', /^SyncGatewaySession=; Path=\/db; Expires=/);
    r = await req(`${pub.url}/db/whoami`, { headers: { cookie } });
    assert.deepEqual([r.status, r.body.reason], [401, 'Session Invalid']);
    r = await req(`${pub.url}/db/_session`, { headers: { cookie } });
    assert.deepEqual([r.status, r.body.userCtx.name], [200, null], 'a bad cookie is ignored on _session');
    r = await req(`${pub.url}/db/_session`, { method: 'DELETE' });
    assert.deepEqual([r.status, r.body.reason], [404, 'no session']);
  });

  test('POST _session: bad password, or login with the Basic credentials', async () => {
    let r = await req(`${pub.url}/db/_session`, { method: 'POST', json: { name: 'alice', password: 'wrong' } });
    assert.deepEqual([r.status, r.body.reason], [401, 'Invalid login']);
    assert.equal(r.headers.get('set-cookie'), null);
    r = await req(`${pub.url}/db/_session`, { method: 'POST', headers: basic('alice', 'pw-alice') });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('set-cookie') ?? '', /^SyncGatewaySession=[0-9a-f]{40};/);
    r = await req(`${pub.url}/db/_session`, { method: 'POST' });
    assert.deepEqual([r.status, r.body.reason], [401, 'Invalid login']);
  });

  test('a disabled user\'s session falls back to GUEST; a password change ends sessions', async () => {
    const s = await auth.sessions.create('dora');
    const cookie = `SyncGatewaySession=${s.id}`;
    assert.equal((await req(`${pub.url}/db/whoami`, { headers: { cookie } })).body.name, 'dora');
    await auth.principals.putUser('dora', { disabled: true });
    let r = await req(`${pub.url}/db/whoami`, { headers: { cookie } });
    assert.deepEqual([r.status, r.body.reason], [401, 'Login required']);
    await auth.principals.putUser('dora', { password: 'pw-dora2' });
    r = await req(`${pub.url}/db/whoami`, { headers: { cookie } });
    assert.deepEqual([r.status, r.body.reason], [401, 'Session Invalid']);
  });

  test('GUEST enabled', async () => {
    await auth.principals.putUser('GUEST', { admin_channels: ['pub'] });
    let r = await req(`${pub.url}/db/whoami`);
    assert.deepEqual(r.body, { name: 'GUEST', guest: true, channels: { '!': 1, pub: r.body.channels.pub } });
    r = await req(`${pub.url}/db/_session`);
    assert.equal(r.body.userCtx.name, null);
    assert.ok('pub' in r.body.userCtx.channels);
    await auth.principals.putUser('GUEST', { disabled: true });
  });

  test('admin: create, read and delete a session for a user', async () => {
    let r = await req(`${adm.url}/db/_session`, { method: 'POST', json: { name: 'alice', ttl: 60 } });
    assert.equal(r.status, 200);
    assert.match(r.body.session_id, /^[0-9a-f]{40}$/);
    assert.equal(r.body.cookie_name, 'SyncGatewaySession');
    assert.equal(Date.parse(r.body.expires), now + 60_000);
    const sid = r.body.session_id;
    r = await req(`${pub.url}/db/whoami`, { headers: { cookie: `SyncGatewaySession=${sid}` } });
    assert.equal(r.body.name, 'alice');
    r = await req(`${adm.url}/db/_session/${sid}`);
    assert.deepEqual([r.status, r.body.userCtx.name], [200, 'alice']);
    r = await req(`${adm.url}/db/_session/${sid}`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    r = await req(`${adm.url}/db/_session/${sid}`);
    assert.equal(r.status, 404);
    for (const [body, status, reason] of [
      [{ name: 'GUEST' }, 400, 'Invalid or missing user name'],
      [{}, 400, 'Invalid or missing user name'],
      [{ name: 'zed' }, 404, 'No such user "zed"'],
      [{ name: 'alice', ttl: 0 }, 400, 'Invalid or missing ttl'],
      [{ name: 'alice', ttl: 'x' }, 400, 'Invalid or missing ttl'],
    ] as const) {
      r = await req(`${adm.url}/db/_session`, { method: 'POST', json: body });
      assert.deepEqual([r.status, r.body.reason], [status, reason], JSON.stringify(body));
    }
    r = await req(`${adm.url}/db/_session`);
    assert.deepEqual(r.body.userCtx, { channels: {}, name: null });
    r = await req(`${adm.url}/db/_session`, { method: 'DELETE' });
    assert.equal(r.status, 405);
  });

  test('send_www_authenticate_header: false marks the 401s', async () => {
    const quiet = { ...auth, sendWwwAuthenticate: false };
    const server = http.createServer((rq, rs) => {
      const ctx = new RequestContext(rq, rs, false, { maxBodyBytes: 1024, compressResponses: false, pretty: false });
      ctx.params = { db: 'db' };
      authenticate(ctx, quiet, false).then(
        () => ctx.sendJson(200, '{}'),
        (e: unknown) => ctx.sendJson(200, JSON.stringify({ unauthorized: e instanceof UnauthorizedError, quiet: (e as UnauthorizedError).noWwwAuthenticate })),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/db/x`;
    assert.deepEqual((await req(url)).body, { unauthorized: true, quiet: true });
    assert.deepEqual((await req(url, { headers: basic('alice', 'bad') })).body, { unauthorized: true, quiet: true });
    await new Promise<void>((r) => server.close(() => r()));
  });
});

describe('authentication and _session (gateway)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      databases: {
        db: { server: 'memory:', users: { alice: { password: 'pw-alice', admin_channels: ['a'] } } },
        quiet: { server: 'memory:', send_www_authenticate_header: false, session_cookie_name: 'Quiet', session_cookie_http_only: true },
        open: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
      },
      openGuest: false,
    });
  });
  after(() => gw.stop());

  test('401s and WWW-Authenticate', async () => {
    let r = await req(`${gw.publicUrl}/db/`);
    assert.deepEqual([r.status, r.body.reason], [401, 'Login required']);
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="Couchbase Sync Gateway"');
    r = await req(`${gw.publicUrl}/db/`, { headers: basic('alice', 'bad') });
    assert.deepEqual([r.status, r.body.reason], [401, 'Invalid login']);
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="Couchbase Sync Gateway"');
    r = await req(`${gw.publicUrl}/quiet/`);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), null);
    r = await req(`${gw.publicUrl}/db/`, { headers: basic('alice', 'pw-alice') });
    assert.equal(r.status, 200);
    r = await req(`${gw.publicUrl}/open/`);
    assert.equal(r.status, 200);
    r = await req(`${gw.adminUrl}/db/`);
    assert.equal(r.status, 200);
  });

  test('login with a cookie, then log out', async () => {
    let r = await req(`${gw.publicUrl}/db/_session`, { method: 'POST', json: { name: 'alice', password: 'pw-alice' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.userCtx.name, 'alice');
    assert.equal(r.body.userCtx.channels.a > 0, true);
    const cookie = cookieOf(r.headers);
    r = await req(`${gw.publicUrl}/db/`, { headers: { cookie } });
    assert.equal(r.status, 200);
    r = await req(`${gw.publicUrl}/db/_session`, { method: 'DELETE', headers: { cookie } });
    assert.equal(r.status, 200);
    r = await req(`${gw.publicUrl}/db/`, { headers: { cookie } });
    assert.deepEqual([r.status, r.body.reason], [401, 'Session Invalid']);
    r = await req(`${gw.publicUrl}/db/_session`, { method: 'POST', json: { name: 'alice', password: 'nope' } });
    assert.deepEqual([r.status, r.body.reason], [401, 'Invalid login']);
  });

  test('admin-made sessions and the configured cookie', async () => {
    await req(`${gw.adminUrl}/quiet/_user/q`, { method: 'PUT', json: { password: 'pw-q' } });
    let r = await req(`${gw.adminUrl}/quiet/_session`, { method: 'POST', json: { name: 'q' } });
    assert.equal(r.body.cookie_name, 'Quiet');
    r = await req(`${gw.publicUrl}/quiet/`, { headers: { cookie: `Quiet=${r.body.session_id}` } });
    assert.equal(r.status, 200);
    r = await req(`${gw.publicUrl}/quiet/_session`, { method: 'POST', json: { name: 'q', password: 'pw-q' } });
    assert.match(r.headers.get('set-cookie') ?? '', /^Quiet=[0-9a-f]{40}; Path=\/quiet; Expires=.*; HttpOnly$/);
  });
});

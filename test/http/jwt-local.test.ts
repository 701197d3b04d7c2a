/**
 * `local_jwt` providers (spec §3.1, §3.3-§3.6): Bearer ID tokens on public routes and on the
 * `_blipsync` upgrade, claims to `jwt_roles`/`jwt_channels` (kept apart from admin grants, replaced at
 * each login), and every bad token of the issue's "Bad input" refused with 401 and no user written.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/index.ts';
import { startGateway, req, type TestGateway } from '../helpers/gateway.ts';
import { hmacWithPublicKey, makeKey, privateJwk, signToken, unsignedToken, type TestKey } from '../helpers/jwt.ts';
import { BlipClient, BlipHttpError, LocalDb, openBlipSocket } from '../helpers/blip-client.ts';
import { startPgCluster } from '../helpers/postgres.ts';

/** Document ids of a changes feed (the user's own `_user/` entries left out). */
const docIds = (body: any): string[] => body.results.map((r: any) => r.id).filter((id: string) => !id.startsWith('_user/'));

const ISSUER = 'https://issuer.example/tenant';
const PREFIX = 'issuer.example%2Ftenant'; // the default user_prefix: escaped host+path of the issuer

function dbConfig(rsa: TestKey, ec: TestKey, extra: Record<string, unknown> = {}) {
  return {
    server: 'memory:',
    users: { admin_made: { password: 'pw-admin', admin_channels: ['adminch'] } },
    local_jwt: {
      main: {
        issuer: ISSUER, client_id: 'syncgate', algorithms: ['RS256', 'ES256'], keys: [rsa.publicJwk, ec.publicJwk],
        register: true, roles_claim: 'groups', channels_claim: 'chans', ...extra,
      },
      byname: {
        issuer: 'https://other.example', client_id: '', algorithms: ['ES256'], keys: [ec.publicJwk],
        register: false, username_claim: 'name',
      },
    },
  };
}

describe('local_jwt Bearer tokens', () => {
  let gw: TestGateway;
  let rsa: TestKey;
  let ec: TestKey;
  let stranger: TestKey;
  let pub: string;
  let admin: string;
  const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });
  const users = async () => (await req(`${admin}/_user/`)).body as string[];

  before(async () => {
    rsa = await makeKey('RS256', 'rsa-1');
    ec = await makeKey('ES256', 'ec-1');
    stranger = await makeKey('RS256', 'rsa-1'); // same kid, other key
    // The lockout is off here: this suite sends dozens of bad tokens from one address on purpose
    // (the lockout has its own test below).
    gw = await startGateway({ databases: { db: dbConfig(rsa, ec) }, openGuest: false, config: { limits: { login_max_failures: 0 } } });
    pub = `${gw.publicUrl}/db`;
    admin = `${gw.adminUrl}/db`;
    for (const [id, ch] of [['doc-a', 'a'], ['doc-b', 'b'], ['doc-admin', 'adminch'], ['doc-role', 'rolech']]) {
      assert.equal((await req(`${admin}/${id}`, { method: 'PUT', json: { channels: [ch] } })).status, 201);
    }
    assert.equal((await req(`${admin}/_role/editors`, { method: 'PUT', json: { admin_channels: ['rolech'] } })).status, 201);
  });
  after(async () => { await gw?.stop(); });

  test('a valid RS256 token registers the user; its claims become jwt_roles / jwt_channels, shown read-only', async () => {
    const token = await signToken(rsa, { iss: ISSUER, aud: ['syncgate', 'other'], sub: 'alice', email: 'alice@example.com', groups: ['editors'], chans: ['a'] });
    const res = await req(`${pub}/_changes`, bearer(token));
    assert.equal(res.status, 200, res.text);
    const ids = docIds(res.body).sort();
    assert.deepEqual(ids, ['doc-a', 'doc-role']);
    const u = await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_alice`)}`);
    assert.equal(u.status, 200);
    assert.equal(u.body.jwt_issuer, ISSUER);
    assert.deepEqual(u.body.jwt_roles, ['editors']);
    assert.deepEqual(u.body.jwt_channels, ['a']);
    assert.equal(u.body.email, 'alice@example.com');
    assert.ok(!Number.isNaN(Date.parse(u.body.jwt_last_updated)));
    assert.equal(u.body.admin_channels, undefined);
    assert.deepEqual(u.body.roles, ['editors']);
    // Read-only: echoing the fields back is fine, changing them is a 400.
    const echo = await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_alice`)}`, { method: 'PUT', json: { ...u.body, admin_channels: ['b'] } });
    assert.equal(echo.status, 200, echo.text);
    const change = await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_alice`)}`, { method: 'PUT', json: { jwt_channels: ['a', 'b'] } });
    assert.equal(change.status, 400);
    const after = await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_alice`)}`);
    assert.deepEqual(after.body.jwt_channels, ['a'], 'an admin save keeps the JWT grants');
    assert.deepEqual(after.body.admin_channels, ['b']);
    assert.deepEqual(after.body.all_channels, ['!', 'a', 'b', 'rolech']);
    assert.equal((await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_alice`)}`, { method: 'PUT', json: { admin_channels: [] } })).status, 200);
  });

  test('each login replaces the JWT grants: a feed backfills a new channel and loses a dropped one; admin grants stay apart', async () => {
    // A config user signs in with a provider whose username_claim names it directly.
    const first = await signToken(ec, { iss: 'https://other.example', sub: 'x', name: 'admin_made', aud: 'anything', chans: ['ignored'] });
    const r1 = await req(`${pub}/_changes`, bearer(first));
    assert.equal(r1.status, 200, r1.text);
    assert.deepEqual(docIds(r1.body), ['doc-admin'], 'no channels_claim on this provider: only admin channels');

    const t1 = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'bob', chans: ['a'] });
    const seen1 = await req(`${pub}/_changes`, bearer(t1));
    assert.deepEqual(docIds(seen1.body), ['doc-a']);
    const since = seen1.body.last_seq;
    const before = await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_bob`)}`);
    // Same claims again: nothing changes, not even jwt_last_updated.
    await req(`${pub}/`, bearer(t1));
    assert.equal((await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_bob`)}`)).body.jwt_last_updated, before.body.jwt_last_updated);

    const t2 = await signToken(ec, { iss: ISSUER, aud: 'syncgate', sub: 'bob', chans: 'b' });
    const seen2 = await req(`${pub}/_changes?since=${since}`, bearer(t2));
    assert.equal(seen2.status, 200, seen2.text);
    assert.deepEqual(docIds(seen2.body), ['doc-b'], 'the newly granted channel is backfilled');
    const all = await req(`${pub}/_changes`, bearer(t2));
    assert.deepEqual(docIds(all.body), ['doc-b'], 'the lost channel is gone');
    assert.equal((await req(`${pub}/doc-a`, bearer(t2))).status, 403);
    const u = await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_bob`)}`);
    assert.deepEqual(u.body.jwt_channels, ['b']);
    // An absent claim is an empty set: everything from JWT is revoked.
    const t3 = await signToken(ec, { iss: ISSUER, aud: 'syncgate', sub: 'bob' });
    assert.deepEqual(docIds((await req(`${pub}/_changes`, bearer(t3))).body), []);
    assert.equal((await req(`${admin}/_user/${encodeURIComponent(`${PREFIX}_bob`)}`)).body.jwt_channels, undefined);
  });

  test('every bad token is a 401 "Invalid login" and creates or changes no user', async () => {
    const good = { iss: ISSUER, aud: 'syncgate', sub: 'mallory', chans: ['a'] };
    const now = Math.floor(Date.now() / 1000);
    const valid = await signToken(rsa, good);
    const [h, p, s] = valid.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...good, chans: ['b'] })).toString('base64url')}.${s}`;
    const cases: Record<string, string> = {
      expired: await signToken(rsa, { ...good, exp: now - 3600, iat: now - 7200 }),
      'not yet valid': await signToken(rsa, { ...good, nbf: now + 3600 }),
      'no exp': await signToken(rsa, { ...good, exp: undefined }),
      'wrong audience': await signToken(rsa, { ...good, aud: 'someone-else' }),
      'wrong issuer': await signToken(rsa, { ...good, iss: 'https://evil.example' }),
      'no issuer': await signToken(rsa, { ...good, iss: undefined }),
      unsigned: unsignedToken(good),
      'HS256 with the public key as secret': hmacWithPublicKey(rsa.publicJwk, good),
      tampered,
      truncated: valid.slice(0, valid.length - 10),
      'two parts': `${h}.${p}`,
      oversized: await signToken(rsa, { ...good, pad: 'x'.repeat(7_000) }),
      'signed by an unknown key with a known kid': await signToken(stranger, good),
      'kid naming no key': await signToken(rsa, good, { kid: 'nope' }),
      'roles claim of the wrong type': await signToken(rsa, { ...good, groups: 5 }),
      'channels claim with a non-string': await signToken(rsa, { ...good, chans: ['a', 7] }),
      'aud of the wrong type': await signToken(rsa, { ...good, aud: 42 as never }),
      'exp of the wrong type': await signToken(rsa, { ...good, exp: 'tomorrow' as never }),
      'empty sub': await signToken(rsa, { ...good, sub: '' }),
      'username_claim missing (provider byname)': await signToken(ec, { iss: 'https://other.example', sub: 'x' }),
      'register off (provider byname)': await signToken(ec, { iss: 'https://other.example', sub: 'x', name: 'nobody' }),
      garbage: 'not-a-token',
    };
    // Bad tokens naming an existing user change nothing about it either.
    const aliceUrl = `${admin}/_user/${encodeURIComponent(`${PREFIX}_alice`)}`;
    const alice = (await req(aliceUrl)).body;
    cases['expired, for an existing user'] = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'alice', chans: ['b'], exp: now - 3600, iat: now - 7200 });
    cases['wrong key, for an existing user'] = await signToken(stranger, { iss: ISSUER, aud: 'syncgate', sub: 'alice', chans: ['b'] });
    const before = await users();
    for (const [what, token] of Object.entries(cases)) {
      const res = await req(`${pub}/_all_docs`, bearer(token));
      assert.equal(res.status, 401, `${what}: ${res.text}`);
      assert.deepEqual(res.body, { error: 'Unauthorized', reason: 'Invalid login' }, what);
    }
    // `Bearer` with no token is no Bearer login: GUEST, disabled here.
    assert.equal((await req(`${pub}/_all_docs`, bearer(''))).status, 401);
    // Past Node's header limit the request itself is refused (400) before any authentication.
    const huge = await req(`${pub}/_all_docs`, bearer(await signToken(rsa, { ...good, pad: 'x'.repeat(20_000) })));
    assert.ok(huge.status === 400 || huge.status === 431, String(huge.status));
    assert.deepEqual(await users(), before, 'no user was created');
    assert.deepEqual((await req(aliceUrl)).body, alice, 'no user was changed');
    assert.ok(!gw.logs.some((l) => l.includes(valid.split('.')[2])), 'no token in the log');
    assert.ok(gw.logs.some((l) => l.includes('JWT login refused') && l.includes('expired')));
    // The valid token still works (the failures did not poison anything).
    assert.equal((await req(`${pub}/`, bearer(valid))).status, 200);
  });

  test('a key with no kid in the token is used only when it is the only key', async () => {
    const noKid = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'carol' }, { kid: null });
    assert.equal((await req(`${pub}/`, bearer(noKid))).status, 401, 'two keys configured: a token without kid is refused');
  });

  test('BLIP: the _blipsync upgrade authenticates with a Bearer token; a bad one gets a plain 401', async () => {
    const token = await signToken(ec, { iss: ISSUER, aud: 'syncgate', sub: 'dave', chans: ['b'] });
    const c = await BlipClient.connect(pub, { bearer: token });
    const local = new LocalDb();
    await c.pull(local);
    assert.deepEqual([...local.docs.keys()].sort(), ['doc-b']);
    await c.close();
    const bad = await signToken(stranger, { iss: ISSUER, aud: 'syncgate', sub: 'dave' });
    await assert.rejects(openBlipSocket(pub, { bearer: bad }), (e: unknown) => e instanceof BlipHttpError && e.status === 401);
  });
});

describe('local_jwt config', () => {
  test('private keys, HS algorithms and missing fields are refused at load, each naming its key path', async () => {
    const rsa = await makeKey('RS256', 'k1');
    const load = (lj: unknown) => () => parseConfigText(JSON.stringify({ databases: { db: { server: 'memory:', local_jwt: lj } } }), 'test');
    assert.throws(load({ p: { issuer: 'i', client_id: 'c', algorithms: ['RS256'], keys: [await privateJwk(rsa)] } }), /local_jwt\.p\.keys\[0\]: key "k1" is not a public key/);
    assert.throws(load({ p: { issuer: 'i', client_id: 'c', algorithms: ['HS256'], keys: [rsa.publicJwk] } }), /algorithms: "HS256" is not accepted/);
    assert.throws(load({ p: { issuer: 'i', client_id: 'c', algorithms: ['RS256'] } }), /one of keys or jwks_uri is required/);
    assert.throws(load({ p: { issuer: 'i', algorithms: ['RS256'], keys: [rsa.publicJwk] } }), /client_id: required/);
    assert.throws(load({ p: { issuer: 'i', client_id: 'c', algorithms: ['RS256'], keys: [rsa.publicJwk], jwks_uri: 'https://x' } }), /mutually exclusive/);
    const { kid: _k, ...noKid } = rsa.publicJwk;
    assert.throws(load({ p: { issuer: 'i', client_id: 'c', algorithms: ['RS256'], keys: [noKid, rsa.publicJwk] } }), /kid is required/);
    assert.throws(load({ p: { issuer: 'i', client_id: 'c', algorithms: ['RS256'], keys: [{ ...rsa.publicJwk, k: 'secret', kty: 'oct' }] } }), /not a public key/);
    const ok = parseConfigText(JSON.stringify({ databases: { db: { server: 'memory:', local_jwt: { p: { issuer: 'i', client_id: '', algorithms: ['RS256'], keys: [rsa.publicJwk] } } } } }), 'test');
    assert.equal(ok.databases.db.localJwt?.p.clientId, '');
  });

  test('a user whose issuer is no longer configured loses its JWT grants on its next request (Basic auth)', async () => {
    const rsa = await makeKey('RS256', 'k1');
    const ec = await makeKey('ES256', 'e1');
    // One SQLite file shared by two gateway runs: with the provider, then without it.
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'jwt-revoke-'));
    const server = `sqlite:${join(dir, 'db.sqlite')}`;
    const gw1 = await startGateway({ openGuest: false, databases: { db: { ...dbConfig(rsa, ec), server } } });
    const token = await signToken(ec, { iss: 'https://other.example', sub: 's', name: 'admin_made', aud: 'x' });
    assert.equal((await req(`${gw1.publicUrl}/db/`, bearer(token))).status, 200);
    const withMain = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'erin', chans: ['a'] });
    assert.equal((await req(`${gw1.publicUrl}/db/`, bearer(withMain))).status, 200);
    await gw1.stop();
    const { local_jwt: _lj, ...withoutJwt } = dbConfig(rsa, ec);
    const gw2 = await startGateway({ openGuest: false, databases: { db: { ...withoutJwt, server } } });
    try {
      const basic = { headers: { Authorization: 'Basic ' + Buffer.from('admin_made:pw-admin').toString('base64') } };
      assert.equal((await req(`${gw2.adminUrl}/db/_user/admin_made`)).body.jwt_issuer, 'https://other.example');
      assert.equal((await req(`${gw2.publicUrl}/db/`, basic)).status, 200);
      const u = await req(`${gw2.adminUrl}/db/_user/admin_made`);
      assert.equal(u.body.jwt_issuer, undefined, 'the stale issuer is cleared');
      assert.deepEqual(u.body.admin_channels, ['adminch'], 'admin grants are untouched');
      // A Bearer token where no provider is configured is not a JWT login (it falls through to GUEST: disabled here).
      assert.equal((await req(`${gw2.publicUrl}/db/`, bearer(withMain))).status, 401);
    } finally {
      await gw2.stop();
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
    }
  });

  function bearer(t: string) { return { headers: { Authorization: `Bearer ${t}` } }; }
});

describe('local_jwt: lockout and metrics', () => {
  test('failed Bearer logins count toward the login lockout; logins are counted by provider and outcome', async () => {
    const rsa = await makeKey('RS256', 'rsa-1');
    const ec = await makeKey('ES256', 'ec-1');
    const gw = await startGateway({
      openGuest: false, databases: { db: dbConfig(rsa, ec) },
      config: { limits: { login_max_failures: 3, login_failure_window_secs: 300, login_lockout_secs: 600 } },
    });
    try {
      const pub = `${gw.publicUrl}/db`;
      const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });
      const good = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'frank' });
      assert.equal((await req(`${pub}/`, bearer(good))).status, 200);
      const expired = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'frank', exp: 1000, iat: 900 });
      for (let i = 0; i < 3; i++) assert.equal((await req(`${pub}/`, bearer(expired))).status, 401);
      assert.ok(gw.logs.some((l) => l.includes('3 failed logins') && l.includes('(bearer token)')), 'the lock is logged');
      const locked = await req(`${pub}/`, bearer(good));
      assert.equal(locked.status, 401, 'this address is locked out of Bearer logins');
      assert.deepEqual(locked.body, { error: 'Unauthorized', reason: 'Invalid login' });
      // Password logins of real users are their own pairs: not locked by bad tokens.
      const basic = { headers: { Authorization: 'Basic ' + Buffer.from('admin_made:pw-admin').toString('base64') } };
      assert.equal((await req(`${pub}/`, basic)).status, 200);

      const metrics = await (await fetch(`${gw.metricsUrl}/_metrics`)).text();
      assert.match(metrics, /syncgate_jwt_logins_total\{database="db",provider="main",outcome="success"\} 1\b/);
      assert.match(metrics, /syncgate_jwt_logins_total\{database="db",provider="main",outcome="failure"\} 3\b/);
      assert.match(metrics, /syncgate_auth_failures_total\{database="db",kind="bearer"\} 4\b/);
    } finally {
      await gw.stop();
    }
  });
});

describe('local_jwt on PostgreSQL', () => {
  test('JWT grants are stored, replaced and shown on the shared backend, and survive a gateway restart', async () => {
    const cluster = await startPgCluster();
    const rsa = await makeKey('RS256', 'rsa-1');
    const ec = await makeKey('ES256', 'ec-1');
    const c = cluster.certs;
    const db = { ...dbConfig(rsa, ec), server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert };
    const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });
    const name = encodeURIComponent(`${PREFIX}_pat`);
    let gw = await startGateway({ openGuest: false, databases: { db } });
    try {
      for (const [id, ch] of [['doc-a', 'a'], ['doc-b', 'b']]) await req(`${gw.adminUrl}/db/${id}`, { method: 'PUT', json: { channels: [ch] } });
      const t1 = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'pat', chans: ['a'], groups: ['g'] });
      assert.deepEqual(docIds((await req(`${gw.publicUrl}/db/_changes`, bearer(t1))).body), ['doc-a']);
      const t2 = await signToken(rsa, { iss: ISSUER, aud: 'syncgate', sub: 'pat', chans: ['b'] });
      assert.deepEqual(docIds((await req(`${gw.publicUrl}/db/_changes`, bearer(t2))).body), ['doc-b']);
      await gw.stop();
      gw = await startGateway({ openGuest: false, databases: { db } });
      const u = await req(`${gw.adminUrl}/db/_user/${name}`);
      assert.equal(u.status, 200);
      assert.deepEqual(u.body.jwt_channels, ['b']);
      assert.equal(u.body.jwt_roles, undefined);
      assert.equal(u.body.jwt_issuer, ISSUER);
      // A session made from the token sees the stored grants without a new token.
      const s = await req(`${gw.publicUrl}/db/_session`, { method: 'POST', headers: { Authorization: `Bearer ${t2}` } });
      const cookie = s.headers.getSetCookie().find((x) => x.startsWith('SyncGatewaySession='))!.split(';')[0];
      assert.deepEqual(docIds((await req(`${gw.publicUrl}/db/_changes`, { headers: { cookie } })).body), ['doc-b']);
    } finally {
      await gw.stop();
      await cluster.stop();
    }
  });
});

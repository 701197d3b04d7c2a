/**
 * `oidc` providers, implicit flow (spec §3.2, §3.4): ID tokens issued by a real OpenID Provider
 * (`oidc-provider`, through its own login form) as Bearer tokens; discovery and the JWKS fetched
 * from it; key rotation without a restart; a provider that is down at start-up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, req, type TestGateway } from '../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';
import { makeKey, signToken } from '../helpers/jwt.ts';
import { readFileSync, rmSync } from 'node:fs';
import { makeCerts } from '../helpers/certs.ts';

const docIds = (body: any): string[] => body.results.map((r: any) => r.id).filter((id: string) => !id.startsWith('_user/')).sort();
const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });

/** Waits (up to a generous bound) until `check` holds. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('oidc providers: Bearer ID tokens from a real OpenID Provider', () => {
  let op: TestOidcProvider;
  let gw: TestGateway;
  let pub: string;
  let admin: string;
  let prefix: string;

  before(async () => {
    op = await startOidcProvider();
    gw = await startGateway({
      openGuest: false, jwt: { jwksCooldownMs: 0 },
      databases: {
        db: {
          server: 'memory:',
          oidc: { providers: { op: { issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true, roles_claim: 'groups', channels_claim: 'chans' } } },
        },
      },
    });
    pub = `${gw.publicUrl}/db`;
    admin = `${gw.adminUrl}/db`;
    prefix = encodeURIComponent(new URL(op.issuer).host); // the default user_prefix, query-escaped
    for (const [id, ch] of [['doc-a', 'a'], ['doc-b', 'b']]) await req(`${admin}/${id}`, { method: 'PUT', json: { channels: [ch] } });
  });
  after(async () => { await gw?.stop(); await op?.stop(); });

  test('an ID token from the provider signs the user in (registered) with the channels of its claims', async () => {
    op.accounts.set('alice', { chans: ['a'], groups: ['readers'] });
    const token = await op.idToken('alice');
    const res = await req(`${pub}/_changes`, bearer(token));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(docIds(res.body), ['doc-a']);
    const name = `${prefix}_alice`;
    const u = await req(`${admin}/_user/${encodeURIComponent(name)}`);
    assert.equal(u.status, 200, `user ${name}`);
    assert.equal(u.body.jwt_issuer, op.issuer);
    assert.deepEqual(u.body.jwt_roles, ['readers']);
    assert.deepEqual(u.body.jwt_channels, ['a']);
    assert.equal(u.body.email, 'alice@example.com');
    // The next login with other claims replaces them.
    op.accounts.set('alice', { chans: ['b'] });
    const again = await req(`${pub}/_changes`, bearer(await op.idToken('alice')));
    assert.deepEqual(docIds(again.body), ['doc-b']);
    assert.equal((await req(`${admin}/_user/${encodeURIComponent(name)}`)).body.jwt_roles, undefined);
  });

  test('a token with the provider issuer and kid but signed by another key is refused', async () => {
    const other = await makeKey('RS256', 'key-1');
    const now = Math.floor(Date.now() / 1000);
    const forged = await signToken(other, { iss: op.issuer, aud: op.clientId, sub: 'alice', exp: now + 600 });
    assert.equal((await req(`${pub}/`, bearer(forged))).status, 401);
  });

  test('key rotation: tokens signed by the new key work without a restart, those of the removed key fail', async () => {
    op.accounts.set('rot', { chans: ['a'] });
    const old = await op.idToken('rot');
    assert.equal((await req(`${pub}/`, bearer(old))).status, 200);
    await op.rotateKey();
    const fresh = await op.idToken('rot');
    assert.notEqual(JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url').toString()).kid, JSON.parse(Buffer.from(old.split('.')[0], 'base64url').toString()).kid);
    assert.equal((await req(`${pub}/`, bearer(fresh))).status, 200, 'the unknown kid made the gateway fetch the JWKS again');
    const res = await req(`${pub}/`, bearer(old));
    assert.equal(res.status, 401, 'the removed key no longer verifies anything');
    assert.ok(gw.logs.some((l) => l.includes('JWT login refused')));
  });
});

describe('oidc providers: a provider that is down', () => {
  test('is reported in one log line at start-up, does not stop the other databases, and is retried', async () => {
    const op = await startOidcProvider();
    const port = Number(new URL(op.issuer).port);
    await op.down();
    const gw = await startGateway({
      openGuest: false, jwt: { discoveryRetryMs: 0, jwksCooldownMs: 0 },
      databases: {
        idp: { server: 'memory:', oidc: { providers: { op: { issuer: op.issuer, client_id: op.clientId, register: true } } } },
        plain: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
      },
    });
    try {
      await eventually(async () => gw.logs.some((l) => l.includes('OIDC provider "op" is not reachable yet')), 'the start-up log line');
      assert.equal(gw.logs.filter((l) => l.includes('is not reachable yet')).length, 1);
      assert.equal((await req(`${gw.publicUrl}/plain/`)).status, 200, 'the other database serves');
      await op.up();
      assert.equal(Number(new URL(op.issuer).port), port);
      op.accounts.set('late', { });
      const token = await op.idToken('late');
      assert.equal((await req(`${gw.publicUrl}/idp/`, bearer(token))).status, 200, 'discovery is retried once the provider is back');
    } finally {
      await gw.stop();
      await op.stop();
    }
  });
});

describe('oidc providers over HTTPS with a test CA', () => {
  test('discovery, keys and the code exchange go over TLS to a provider the gateway is told to trust; one that is not trusted signs no one in', async () => {
    const certs = makeCerts();
    const ca = readFileSync(certs.caCert);
    const op = await startOidcProvider({ tls: { key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert), ca } });
    assert.ok(op.issuer.startsWith('https://'));
    const provider = { issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true, channels_claim: 'chans', scope: ['openid', 'sg'] };
    const trusting = await startGateway({ openGuest: false, jwt: { ca }, databases: { db: { server: 'memory:', oidc: { providers: { op: provider } } } } });
    const untrusting = await startGateway({ openGuest: false, databases: { db: { server: 'memory:', oidc: { providers: { op: provider } } } } });
    try {
      op.accounts.set('tess', { chans: ['a'] });
      const token = await op.idToken('tess');
      assert.equal((await req(`${trusting.publicUrl}/db/`, bearer(token))).status, 200);
      assert.equal((await req(`${untrusting.publicUrl}/db/`, bearer(token))).status, 401);
      assert.ok(untrusting.logs.some((l) => l.includes('is not reachable yet') || l.includes('discovery')), 'the untrusted provider is reported');

      // The authorization-code flow: the code is exchanged over TLS with the client secret.
      await op.allowRedirect(`${trusting.publicUrl}/db/_oidc_callback`);
      const start = await fetch(`${trusting.publicUrl}/db/_oidc`, { redirect: 'manual' });
      const state = start.headers.getSetCookie().find((c) => c.startsWith('sg-oidc-state='))!.split(';')[0];
      const back = await op.signIn(start.headers.get('location')!, 'tess');
      const res = await req(back, { headers: { cookie: state } });
      assert.equal(res.status, 200, res.text);
      assert.equal(typeof res.body.session_id, 'string');
    } finally {
      await trusting.stop();
      await untrusting.stop();
      await op.stop();
      rmSync(certs.dir, { recursive: true, force: true });
    }
  });
});

/**
 * Remote key sets over HTTPS with a test CA (spec §3.5 `jwks_uri`): fetched once and cached by
 * their cache headers (never per request), fetched again when a token names a new key (rotation),
 * and refused when the provider's certificate is not trusted. Also the `oidc` config checks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { parseConfigText } from '../../src/config/index.ts';
import { makeCerts, type TestCerts } from '../helpers/certs.ts';
import { startGateway, req, type TestGateway } from '../helpers/gateway.ts';
import { makeKey, signToken, type TestKey } from '../helpers/jwt.ts';

const ISSUER = 'https://keys.example';
const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });

describe('local_jwt with jwks_uri over HTTPS', () => {
  let certs: TestCerts;
  let server: https.Server;
  let jwks: { keys: JWK[] };
  let fetches = 0;
  let uri: string;
  let k1: TestKey;
  let k2: TestKey;
  let gw: TestGateway;
  let untrusting: TestGateway;

  const db = () => ({
    server: 'memory:',
    local_jwt: { remote: { issuer: ISSUER, client_id: 'app', algorithms: ['RS256', 'ES256'], jwks_uri: uri, register: true, channels_claim: 'chans' } },
  });

  before(async () => {
    certs = makeCerts();
    k1 = await makeKey('RS256', 'k1');
    k2 = await makeKey('ES256', 'k2');
    jwks = { keys: [k1.publicJwk] };
    server = https.createServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) }, (rq, rs) => {
      fetches++;
      rs.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' });
      rs.end(JSON.stringify(jwks));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    uri = `https://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    gw = await startGateway({ openGuest: false, jwt: { ca: readFileSync(certs.caCert), jwksCooldownMs: 0 }, databases: { db: db() } });
    untrusting = await startGateway({ openGuest: false, databases: { db: db() } });
  });
  after(async () => {
    await gw?.stop();
    await untrusting?.stop();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  test('the key set is fetched once and cached, not per request; a rotated key is picked up; a removed one fails', async () => {
    const before = fetches;
    for (let i = 0; i < 20; i++) {
      const t = await signToken(k1, { iss: ISSUER, aud: 'app', sub: `u${i % 3}`, chans: ['a'] });
      assert.equal((await req(`${gw.publicUrl}/db/`, bearer(t))).status, 200);
    }
    assert.equal(fetches - before, 1, 'one fetch for twenty tokens');
    jwks = { keys: [k2.publicJwk] };
    const fresh = await signToken(k2, { iss: ISSUER, aud: 'app', sub: 'u1' });
    assert.equal((await req(`${gw.publicUrl}/db/`, bearer(fresh))).status, 200, 'an unknown kid fetches the set again');
    assert.equal(fetches - before, 2);
    const old = await signToken(k1, { iss: ISSUER, aud: 'app', sub: 'u1' });
    assert.equal((await req(`${gw.publicUrl}/db/`, bearer(old))).status, 401, 'the removed key verifies nothing');
  });

  test('a provider whose certificate is not trusted gives no keys: 401, and the log says why', async () => {
    const t = await signToken(k1, { iss: ISSUER, aud: 'app', sub: 'u1' });
    jwks = { keys: [k1.publicJwk] };
    assert.equal((await req(`${untrusting.publicUrl}/db/`, bearer(t))).status, 401);
    assert.ok(untrusting.logs.some((l) => l.includes('JWT login refused') && l.includes('could not be fetched')), untrusting.logs.filter((l) => l.includes('JWT')).join('\n'));
  });
});

describe('oidc config', () => {
  const load = (oidc: unknown) => parseConfigText(JSON.stringify({ databases: { db: { server: 'memory:', oidc } } }), 'test');
  test('names with "_" are refused, providers without issuer or client_id are skipped with a warning, at least one must remain', () => {
    assert.throws(() => load({ providers: { my_idp: { issuer: 'https://i', client_id: 'c' } } }), /cannot contain underscore/);
    assert.throws(() => load({ providers: { a: { issuer: 'https://i' } } }), /no valid providers/);
    const ok = load({ providers: { a: { issuer: 'https://i' }, b: { issuer: 'https://j', client_id: 'c', validation_key: 's' } } });
    assert.deepEqual(Object.keys(ok.databases.db.oidc!.providers), ['b']);
    assert.equal(ok.databases.db.oidc!.defaultProvider, 'b', 'the only provider is the default');
    assert.deepEqual(ok.databases.db.oidc!.providers.b.scope, ['openid', 'email']);
    assert.ok(ok.warnings.some((w) => w.includes('providers.a') && w.includes('skipped')));
    assert.throws(() => load({ default_provider: 'x', providers: { b: { issuer: 'https://j', client_id: 'c' } } }), /default_provider/);
    assert.throws(() => load({ providers: { b: { issuer: 'https://j', client_id: 'c', nonsense: 1 } } }), /unknown key "nonsense"/);
  });
});

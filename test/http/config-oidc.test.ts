/**
 * `oidc` and `local_jwt` providers in database configs made over REST (spec sg3-admin §1.4, §1.5,
 * §3.2) on a persistent-mode gateway: the static rules (names without `_`, at least one valid
 * provider, the default provider), each OIDC provider's discovery fetched during validation unless
 * `?disable_oidc_validation=true` (a failure stores nothing and the running database keeps its
 * config), then Bearer tokens from a real OpenID Provider and from a local key on a database created
 * over REST, and a config change that removes an issuer revoking its users' JWT grants.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';
import { makeKey, signToken, type TestKey } from '../helpers/jwt.ts';

const docIds = (body: any): string[] => body.results.map((r: any) => r.id).filter((id: string) => !id.startsWith('_user/')).sort();
const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });
const LOCAL_ISSUER = 'https://local.example/app';

/** A loopback port nothing listens on (a provider that is down). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('oidc / local_jwt in database configs over REST (persistent mode)', () => {
  let op: TestOidcProvider;
  let gw: TestGateway;
  let key: TestKey;
  let dead: string;
  let provider: Record<string, unknown>;
  let localJwt: Record<string, unknown>;

  before(async () => {
    op = await startOidcProvider();
    key = await makeKey('RS256', 'local-1');
    dead = `http://127.0.0.1:${await deadPort()}`;
    provider = { issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true, channels_claim: 'chans' };
    localJwt = { app: { issuer: LOCAL_ISSUER, client_id: 'syncgate', algorithms: ['RS256'], keys: [key.publicJwk], register: true, channels_claim: 'chans' } };
    gw = await startGateway({ bootstrap: { logging: { console: { log_level: 'info' } } }, jwt: { jwksCooldownMs: 0, timeoutMs: 5_000 } });
  });
  after(async () => { await gw?.stop(); await op?.stop(); });

  const snapshot = async (db: string) => {
    const r = await req(`${gw.adminUrl}/${db}/_config`);
    return { status: r.status, etag: r.headers.get('etag'), body: r.body };
  };

  test('PUT /{db}/: the static oidc rules are 400s and create nothing', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ oidc: { providers: { my_op: provider } } }, /provider names cannot contain underscore: my_op/],
      [{ oidc: { providers: { op: { issuer: op.issuer } } } }, /no valid providers specified/],
      [{ oidc: { providers: {} } }, /no valid providers specified/],
      [{ oidc: { default_provider: 'other', providers: { op: provider } } }, /default_provider: "other" is not one of the providers/],
    ];
    for (const [body, reason] of cases) {
      const r = await req(`${gw.adminUrl}/bad/`, { method: 'PUT', json: body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.error, 'Bad Request');
      assert.match(r.body.reason, reason);
      assert.equal((await req(`${gw.adminUrl}/bad/`)).status, 404, 'no database');
      assert.equal((await snapshot('bad')).status, 404, 'no stored config');
    }
  });

  test('PUT /{db}/: a provider whose discovery fails is a 400 naming it, unless ?disable_oidc_validation=true', async () => {
    const down = { oidc: { providers: { op: provider, gone: { issuer: dead, client_id: 'c' } } , default_provider: 'op' } };
    const r = await req(`${gw.adminUrl}/downdb/`, { method: 'PUT', json: down });
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.reason, /^failed to validate OIDC configuration for gone: /);
    assert.doesNotMatch(r.body.reason, /for op\b/, 'the reachable provider passes');
    assert.equal((await req(`${gw.adminUrl}/downdb/`)).status, 404);
    assert.equal((await snapshot('downdb')).status, 404);

    // A discovery document whose issuer is not the configured one fails validation...
    const elsewhere = { issuer: 'https://elsewhere.example', client_id: op.clientId, discovery_url: `${op.issuer}/.well-known/openid-configuration` };
    const mismatch = await req(`${gw.adminUrl}/elsewhere/`, { method: 'PUT', json: { oidc: { providers: { op: elsewhere } } } });
    assert.equal(mismatch.status, 400, mismatch.text);
    assert.match(mismatch.body.reason, /^failed to validate OIDC configuration for op: .*issuer "http:\/\/127\.0\.0\.1:\d+" is not the configured "https:\/\/elsewhere\.example"/);
    // ...unless the provider turns the metadata checks off (the document is still fetched).
    const lax = await req(`${gw.adminUrl}/elsewhere/`, { method: 'PUT', json: { oidc: { providers: { op: { ...elsewhere, disable_cfg_validation: true } } } } });
    assert.equal(lax.status, 201, lax.text);
    const laxDown = await req(`${gw.adminUrl}/elsewhere2/`, { method: 'PUT', json: { oidc: { providers: { op: { issuer: dead, client_id: 'c', disable_cfg_validation: true } } } } });
    assert.equal(laxDown.status, 400, 'disable_cfg_validation does not skip the fetch');

    const skipped = await req(`${gw.adminUrl}/downdb/?disable_oidc_validation=true`, { method: 'PUT', json: down });
    assert.equal(skipped.status, 201, skipped.text);
    assert.equal((await req(`${gw.adminUrl}/downdb/`)).body.state, 'Online');
    assert.deepEqual(Object.keys((await snapshot('downdb')).body.oidc.providers).sort(), ['gone', 'op']);
  });

  test('PUT|POST /{db}/_config: a failing provider is refused, nothing stored, the running database keeps its providers', async () => {
    const created = await req(`${gw.adminUrl}/keep/`, { method: 'PUT', json: { oidc: { providers: { op: provider } } } });
    assert.equal(created.status, 201, created.text);
    const before = await snapshot('keep');
    const token = await op.idToken('kim');
    assert.equal((await req(`${gw.publicUrl}/keep/`, bearer(token))).status, 200);

    const badProvider = { oidc: { providers: { op: { ...provider, issuer: dead } } } };
    for (const [method, body] of [['PUT', badProvider], ['POST', badProvider], ['POST', { oidc: { providers: { more: { issuer: dead, client_id: 'c' } }, default_provider: 'op' } }]] as const) {
      const r = await req(`${gw.adminUrl}/keep/_config`, { method, json: body });
      assert.equal(r.status, 400, `${method} ${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.body.reason, /^failed to validate OIDC configuration for (op|more): /);
      assert.deepEqual(await snapshot('keep'), before, 'stored config and version unchanged');
      assert.equal((await req(`${gw.publicUrl}/keep/`, bearer(token))).status, 200, 'the running database still trusts its provider');
    }
    const underscore = await req(`${gw.adminUrl}/keep/_config`, { method: 'POST', json: { oidc: { providers: { bad_name: provider } } } });
    assert.equal(underscore.status, 400);
    assert.match(underscore.body.reason, /underscore: bad_name/);
    assert.deepEqual(await snapshot('keep'), before);

    const skipped = await req(`${gw.adminUrl}/keep/_config?disable_oidc_validation=true`, { method: 'PUT', json: badProvider });
    assert.equal(skipped.status, 201, skipped.text);
    assert.notEqual((await snapshot('keep')).etag, before.etag);
    assert.equal((await req(`${gw.publicUrl}/keep/`, bearer(token))).status, 401, 'the new config is running: its issuer is not the token\'s');
  });

  test('a database created over REST accepts Bearer tokens from local_jwt and from a real OpenID Provider; removing an issuer revokes its grants', async () => {
    const created = await req(`${gw.adminUrl}/both/`, { method: 'PUT', json: { oidc: { providers: { op: provider } }, local_jwt: localJwt } });
    assert.equal(created.status, 201, created.text);
    for (const [id, ch] of [['doc-a', 'a'], ['doc-b', 'b'], ['doc-c', 'c']]) {
      assert.equal((await req(`${gw.adminUrl}/both/${id}`, { method: 'PUT', json: { channels: [ch] } })).status, 201);
    }
    op.accounts.set('olga', { chans: ['a'] });
    const oidcToken = await op.idToken('olga');
    const localToken = await signToken(key, { iss: LOCAL_ISSUER, aud: 'syncgate', sub: 'lars', chans: ['b'] });
    const olgaFeed = await req(`${gw.publicUrl}/both/_changes`, bearer(oidcToken));
    assert.equal(olgaFeed.status, 200, olgaFeed.text);
    assert.deepEqual(docIds(olgaFeed.body), ['doc-a']);
    assert.deepEqual(docIds((await req(`${gw.publicUrl}/both/_changes`, bearer(localToken))).body), ['doc-b']);

    const olga = `${encodeURIComponent(new URL(op.issuer).host)}_olga`;
    const lars = `${encodeURIComponent('local.example/app')}_lars`;
    assert.equal((await req(`${gw.adminUrl}/both/_user/${encodeURIComponent(olga)}`)).body.jwt_issuer, op.issuer);
    assert.equal((await req(`${gw.adminUrl}/both/_user/${encodeURIComponent(lars)}`)).body.jwt_issuer, LOCAL_ISSUER);

    // Both users keep a session cookie made from their token.
    const cookieOf = async (token: string) => {
      const s = await req(`${gw.publicUrl}/both/_session`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      assert.equal(s.status, 200, s.text);
      return s.headers.getSetCookie().find((x) => x.startsWith('SyncGatewaySession='))!.split(';')[0];
    };
    const olgaCookie = await cookieOf(oidcToken);
    const larsCookie = await cookieOf(localToken);

    // The oidc provider is removed over REST: the same store, the sessions survive.
    const change = await req(`${gw.adminUrl}/both/_config`, { method: 'PUT', json: { local_jwt: localJwt } });
    assert.equal(change.status, 201, change.text);
    assert.equal((await req(`${gw.adminUrl}/both/_user/${encodeURIComponent(olga)}`)).body.jwt_issuer, op.issuer, 'nothing changes before the user comes back');
    const after = await req(`${gw.publicUrl}/both/_changes`, { headers: { cookie: olgaCookie } });
    assert.equal(after.status, 200, after.text);
    assert.deepEqual(docIds(after.body), [], 'channel a came from the removed issuer');
    const u = (await req(`${gw.adminUrl}/both/_user/${encodeURIComponent(olga)}`)).body;
    assert.equal(u.jwt_issuer, undefined);
    assert.ok(!u.jwt_channels || u.jwt_channels.length === 0, JSON.stringify(u));
    assert.equal((await req(`${gw.publicUrl}/both/`, bearer(oidcToken))).status, 401, 'its tokens are no longer accepted');
    // The local_jwt user's issuer is still configured: its grants stay.
    assert.deepEqual(docIds((await req(`${gw.publicUrl}/both/_changes`, { headers: { cookie: larsCookie } })).body), ['doc-b']);
    assert.equal((await req(`${gw.adminUrl}/both/_user/${encodeURIComponent(lars)}`)).body.jwt_issuer, LOCAL_ISSUER);

    // Put back over REST, the provider works again and a new login grants from the token again.
    op.accounts.set('olga', { chans: ['c'] });
    const back = await req(`${gw.adminUrl}/both/_config`, { method: 'POST', json: { oidc: { providers: { op: provider } } } });
    assert.equal(back.status, 201, back.text);
    assert.deepEqual(docIds((await req(`${gw.publicUrl}/both/_changes`, bearer(await op.idToken('olga')))).body), ['doc-c']);
  });
});

describe('oidc validation over REST in non-persistent mode (2.x file)', () => {
  test('PUT /{db}/_config with a provider that does not answer is refused and the running config kept', async () => {
    const op = await startOidcProvider();
    const provider = { issuer: op.issuer, client_id: op.clientId, register: true };
    const gw = await startGateway({ openGuest: false, databases: { db: { server: 'memory:', oidc: { providers: { op: provider } } } } });
    try {
      const dead = `http://127.0.0.1:${await deadPort()}`;
      const token = await op.idToken('nina');
      assert.equal((await req(`${gw.publicUrl}/db/`, bearer(token))).status, 200);
      const bad = { server: 'memory:', oidc: { providers: { op: { ...provider, issuer: dead } } } };
      const r = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: bad });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.reason, /^failed to validate OIDC configuration for op: OpenID Connect discovery at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration failed/);
      assert.equal((await req(`${gw.adminUrl}/db/_config`)).body.oidc.providers.op.issuer, op.issuer);
      assert.equal((await req(`${gw.publicUrl}/db/`, bearer(token))).status, 200, 'the running database keeps its provider');
      const skipped = await req(`${gw.adminUrl}/db/_config?disable_oidc_validation=true`, { method: 'PUT', json: bad });
      assert.equal(skipped.status, 201, skipped.text);
      assert.equal((await req(`${gw.adminUrl}/db/_config`)).body.oidc.providers.op.issuer, dead);
    } finally {
      await gw.stop();
      await op.stop();
    }
  });
});

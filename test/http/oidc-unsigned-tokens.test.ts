/**
 * `allow_unsigned_provider_tokens` (spec §3.2; SG `auth/auth.go` `AuthenticateTrustedJWT`): for an
 * ID token received straight from the provider's token endpoint over the back channel (the code
 * exchange of `_oidc_callback`, and `_oidc_refresh`), only the claims are checked (iss, aud, exp,
 * nbf), not the signature. A Bearer token from a client is untrusted and always has its signature
 * checked (RS/ES/PS only), with or without the option: `alg: none` and HS256 tokens stay 401 there.
 *
 * The real `oidc-provider` is set to sign its ID tokens with HS256 and the client secret, which no
 * relying party can check against the provider's JWKS: exactly the case the option exists for.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeProtectedHeader } from 'jose';
import { startGateway, req, type TestGateway } from '../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';
import { unsignedToken } from '../helpers/jwt.ts';

const docIds = (body: any): string[] => body.results.map((r: any) => r.id).filter((id: string) => !id.startsWith('_user/')).sort();

describe('allow_unsigned_provider_tokens', () => {
  let op: TestOidcProvider;
  let gw: TestGateway;
  let pub: string;
  let admin: string;

  before(async () => {
    op = await startOidcProvider({ idTokenAlg: 'HS256' });
    const common = {
      issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true,
      channels_claim: 'chans', scope: ['openid', 'email', 'sg', 'offline_access'],
    };
    gw = await startGateway({
      openGuest: false, jwt: { jwksCooldownMs: 0 }, config: { limits: { login_max_failures: 0 } },
      databases: {
        db: {
          server: 'memory:',
          oidc: { default_provider: 'lax', providers: { lax: { ...common, allow_unsigned_provider_tokens: true }, strict: common } },
        },
      },
    });
    pub = `${gw.publicUrl}/db`;
    admin = `${gw.adminUrl}/db`;
    await op.allowRedirect(`${pub}/_oidc_callback`);
    await op.allowRedirect(`${pub}/_oidc_callback?provider=strict`);
    for (const [id, ch] of [['doc-a', 'a'], ['doc-b', 'b']]) await req(`${admin}/${id}`, { method: 'PUT', json: { channels: [ch] } });
  });
  after(async () => { await gw?.stop(); await op?.stop(); });

  async function signIn(login: string, query: string) {
    const start = await fetch(`${pub}/_oidc${query}`, { redirect: 'manual' });
    assert.equal(start.status, 302);
    const state = start.headers.getSetCookie().find((c) => c.startsWith('sg-oidc-state='))!;
    const callback = await op.signIn(start.headers.get('location')!, login);
    return req(callback, { headers: { cookie: state.split(';')[0] } });
  }
  const users = async () => ((await req(`${admin}/_user/`)).body as string[]).sort();

  test('the code flow accepts the provider\'s HS256 ID token by its claims only when the option is on', async () => {
    op.accounts.set('una', { chans: ['a'] });
    const res = await signIn('una', '?offline=true');
    assert.equal(res.status, 200, res.text);
    assert.equal(decodeProtectedHeader(res.body.id_token).alg, 'HS256', 'the provider really signs with the client secret');
    const session = res.headers.getSetCookie().find((c) => c.startsWith('SyncGatewaySession='))!.split(';')[0];
    assert.deepEqual(docIds((await req(`${pub}/_changes`, { headers: { cookie: session } })).body), ['doc-a']);

    // _oidc_refresh is the same back channel: new claims come in with the refreshed HS256 token.
    op.accounts.set('una', { chans: ['b'] });
    const refreshed = await req(`${pub}/_oidc_refresh?refresh_token=${encodeURIComponent(res.body.refresh_token)}`);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(decodeProtectedHeader(refreshed.body.id_token).alg, 'HS256');
    const s2 = refreshed.headers.getSetCookie().find((c) => c.startsWith('SyncGatewaySession='))!.split(';')[0];
    assert.deepEqual(docIds((await req(`${pub}/_changes`, { headers: { cookie: s2 } })).body), ['doc-b']);

    // Without the option the same provider's token fails the signature check: no one signed in.
    const before = await users();
    op.accounts.set('vic', { chans: ['a'] });
    const strict = await signIn('vic', '?provider=strict');
    assert.equal(strict.status, 401, strict.text);
    assert.deepEqual(strict.body, { error: 'Unauthorized', reason: 'Invalid login' });
    assert.equal(strict.headers.getSetCookie().some((c) => c.startsWith('SyncGatewaySession=')), false);
    assert.deepEqual(await users(), before, 'no user registered');
  });

  test('Bearer tokens from clients are always signature-checked: the same HS256 token and alg:none are 401', async () => {
    op.accounts.set('walt', { chans: ['a'] });
    const { id_token } = await op.tokens('walt');
    assert.equal(decodeProtectedHeader(id_token).alg, 'HS256');
    const before = await users();
    const now = Math.floor(Date.now() / 1000);
    const none = unsignedToken({ iss: op.issuer, aud: op.clientId, sub: 'walt', chans: ['a', 'b'], iat: now, exp: now + 600 });
    for (const token of [id_token, none]) {
      for (const path of ['/', '/_changes']) {
        const r = await req(`${pub}${path}`, { headers: { Authorization: `Bearer ${token}` } });
        assert.equal(r.status, 401, `${decodeProtectedHeader(token).alg} on ${path}: ${r.text}`);
        assert.deepEqual(r.body, { error: 'Unauthorized', reason: 'Invalid login' });
      }
      const s = await req(`${pub}/_session`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      assert.equal(s.status, 401, s.text);
    }
    assert.deepEqual(await users(), before, 'no user registered');
    assert.ok(!gw.logs.some((l) => l.includes(id_token)), 'tokens are never logged');
  });
});

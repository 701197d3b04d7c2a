/**
 * The authorization-code flow endpoints (spec §3.7) and `POST /{db}/_session` with a Bearer token
 * (spec §3.8), against a real OpenID Provider (`oidc-provider`), its login form played over HTTP.
 * (test/e2e/oidc-browser.test.ts drives the same flow in headless Chromium.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, req, type TestGateway } from '../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';

const docIds = (body: any): string[] => body.results.map((r: any) => r.id).filter((id: string) => !id.startsWith('_user/')).sort();

describe('OIDC authorization-code flow', () => {
  let op: TestOidcProvider;
  let gw: TestGateway;
  let pub: string;
  let admin: string;

  before(async () => {
    op = await startOidcProvider();
    gw = await startGateway({
      openGuest: false, jwt: { jwksCooldownMs: 0 },
      databases: {
        db: {
          server: 'memory:',
          oidc: {
            default_provider: 'op',
            providers: {
              op: {
                issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true,
                channels_claim: 'chans', scope: ['openid', 'email', 'sg', 'offline_access'], include_access: true,
              },
              second: { issuer: op.issuer, client_id: op.clientId, validation_key: 'wrong-secret', register: true, disable_session: true },
              quiet: {
                issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true, channels_claim: 'chans',
                scope: ['openid', 'sg'], disable_session: true, disable_callback_state: true,
              },
            },
          },
        },
      },
    });
    pub = `${gw.publicUrl}/db`;
    admin = `${gw.adminUrl}/db`;
    await op.allowRedirect(`${pub}/_oidc_callback`);
    await op.allowRedirect(`${pub}/_oidc_callback?provider=second`);
    await op.allowRedirect(`${pub}/_oidc_callback?provider=quiet`);
    for (const [id, ch] of [['doc-a', 'a'], ['doc-b', 'b']]) await req(`${admin}/${id}`, { method: 'PUT', json: { channels: [ch] } });
  });
  after(async () => { await gw?.stop(); await op?.stop(); });

  /** `_oidc` → the provider's login → back to `_oidc_callback` with the state cookie. */
  async function signIn(login: string, query = '') {
    const start = await fetch(`${pub}/_oidc${query}`, { redirect: 'manual' });
    assert.equal(start.status, 302);
    const state = start.headers.getSetCookie().find((c) => c.startsWith('sg-oidc-state='))!;
    const callback = await op.signIn(start.headers.get('location')!, login);
    assert.ok(callback.startsWith(`${pub}/_oidc_callback?`), callback);
    return req(callback, { headers: { cookie: state.split(';')[0] } });
  }

  test('_oidc redirects to the provider with a state cookie; _oidc_challenge answers 401 with WWW-Authenticate', async () => {
    const res = await fetch(`${pub}/_oidc`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const loc = new URL(res.headers.get('location')!);
    assert.equal(loc.origin, op.issuer);
    assert.equal(loc.searchParams.get('client_id'), op.clientId);
    assert.equal(loc.searchParams.get('redirect_uri'), `${pub}/_oidc_callback`);
    assert.equal(loc.searchParams.get('response_type'), 'code');
    assert.equal(loc.searchParams.get('scope'), 'openid email sg offline_access');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('sg-oidc-state='))!;
    assert.equal(cookie.split(';')[0], `sg-oidc-state=${loc.searchParams.get('state')}`);
    assert.match(cookie, /Path=\/db/);
    assert.match(cookie, /Max-Age=300/);
    assert.match(cookie, /HttpOnly/);
    const second = new URL((await fetch(`${pub}/_oidc?provider=second&offline=true`, { redirect: 'manual' })).headers.get('location')!);
    assert.equal(second.searchParams.get('redirect_uri'), `${pub}/_oidc_callback?provider=second`);
    assert.equal(second.searchParams.get('access_type'), 'offline');
    assert.equal(second.searchParams.get('prompt'), 'consent');
    const ch = await req(`${pub}/_oidc_challenge`);
    assert.equal(ch.status, 401);
    assert.deepEqual(ch.body, { error: 'Unauthorized', reason: 'Login required' });
    assert.match(ch.headers.get('www-authenticate')!, new RegExp(`^OIDC login="${op.issuer}/auth\\?`));
    assert.equal((await req(`${pub}/_oidc?provider=nope`)).status, 400);
  });

  test('callback: error, missing code, missing or wrong state are refused and sign no one in', async () => {
    const before = (await req(`${admin}/_user/`)).body;
    const e = await req(`${pub}/_oidc_callback?error=access_denied&error_description=nope`);
    assert.equal(e.status, 401);
    assert.equal(e.body.reason, 'oidc callback received an error: nope');
    assert.equal((await req(`${pub}/_oidc_callback?state=x`)).status, 400);
    const noCookie = await req(`${pub}/_oidc_callback?code=abc&state=x`);
    assert.equal(noCookie.status, 400);
    assert.match(noCookie.body.reason, /No state cookie/);
    const mismatch = await req(`${pub}/_oidc_callback?code=abc&state=x`, { headers: { cookie: 'sg-oidc-state=y' } });
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.reason, 'State mismatch');
    const badCode = await req(`${pub}/_oidc_callback?code=abc&state=x`, { headers: { cookie: 'sg-oidc-state=x' } });
    assert.equal(badCode.status, 500);
    assert.match(badCode.body.reason, /^Failed to exchange token/);
    assert.deepEqual((await req(`${admin}/_user/`)).body, before);
  });

  test('a full sign-in: the callback answers tokens and a session cookie, and the session sees the claimed channels', async () => {
    op.accounts.set('walter', { chans: ['b'] });
    const res = await signIn('walter', '?offline=true');
    assert.equal(res.status, 200, res.text);
    const prefix = encodeURIComponent(new URL(op.issuer).host);
    assert.equal(res.body.name, `${prefix}_walter`);
    assert.equal(typeof res.body.id_token, 'string');
    assert.equal(typeof res.body.session_id, 'string');
    assert.equal(typeof res.body.refresh_token, 'string', 'offline=true gives a refresh token');
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(typeof res.body.access_token, 'string');
    assert.equal(typeof res.body.expires_in, 'number');
    const cookies = res.headers.getSetCookie();
    assert.ok(cookies.some((c) => /^sg-oidc-state=;.*Max-Age=0/.test(c)), 'the state cookie is cleared');
    const session = cookies.find((c) => c.startsWith('SyncGatewaySession='))!;
    assert.equal(session.split(';')[0], `SyncGatewaySession=${res.body.session_id}`);
    // The session lives as long as the ID token (1 hour at this provider), not 24 hours.
    const expires = Date.parse(/Expires=([^;]+)/.exec(session)![1]);
    assert.ok(expires < Date.now() + 2 * 3600_000 && expires > Date.now() + 30 * 60_000, new Date(expires).toISOString());
    const changes = await req(`${pub}/_changes`, { headers: { cookie: session.split(';')[0] } });
    assert.equal(changes.status, 200);
    assert.deepEqual(docIds(changes.body), ['doc-b']);

    // _oidc_refresh: new claims come in with the refreshed ID token.
    op.accounts.set('walter', { chans: ['a'] });
    const refreshed = await req(`${pub}/_oidc_refresh?refresh_token=${encodeURIComponent(res.body.refresh_token)}`);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(refreshed.body.refresh_token, undefined);
    assert.equal(refreshed.body.name, `${prefix}_walter`);
    const s2 = refreshed.headers.getSetCookie().find((c) => c.startsWith('SyncGatewaySession='))!;
    assert.deepEqual(docIds((await req(`${pub}/_changes`, { headers: { cookie: s2.split(';')[0] } })).body), ['doc-a']);
    assert.equal((await req(`${pub}/_oidc_refresh?refresh_token=not-a-token`)).status, 500);
    assert.equal((await req(`${pub}/_oidc_refresh`)).status, 400);
  });

  test('disable_session and disable_callback_state: tokens but no cookie; a wrong validation_key fails the exchange with 500', async () => {
    op.accounts.set('yuri', { chans: ['a'] });
    const start = await fetch(`${pub}/_oidc?provider=quiet`, { redirect: 'manual' });
    assert.equal(start.headers.getSetCookie().length, 0, 'no state cookie');
    assert.equal(new URL(start.headers.get('location')!).searchParams.get('state'), null);
    const back = await op.signIn(start.headers.get('location')!, 'yuri');
    const res = await req(back);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.session_id, undefined);
    assert.equal(res.body.access_token, undefined, 'include_access is off');
    assert.equal(res.headers.getSetCookie().length, 0);
    assert.deepEqual((await req(`${admin}/_user/${encodeURIComponent(res.body.name)}`)).body.jwt_channels, ['a']);

    const failing = await signIn('yuri', '?provider=second');
    assert.equal(failing.status, 500);
    assert.match(failing.body.reason, /^Failed to exchange token/);
    assert.ok(!gw.logs.some((l) => l.includes(op.clientSecret)), 'no secret in the log');
  });

  test('POST /_session with a Bearer ID token makes a 24-hour session for its user', async () => {
    op.accounts.set('xena', { chans: ['a'] });
    const token = await op.idToken('xena');
    const res = await req(`${pub}/_session`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.userCtx.name, `${encodeURIComponent(new URL(op.issuer).host)}_xena`);
    assert.deepEqual(Object.keys(res.body.userCtx.channels).sort(), ['!', 'a']);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('SyncGatewaySession='))!;
    const expires = Date.parse(/Expires=([^;]+)/.exec(cookie)![1]);
    assert.ok(expires > Date.now() + 23 * 3600_000, 'the token lifetime is not used on this path');
    const me = await req(`${pub}/_session`, { headers: { cookie: cookie.split(';')[0] } });
    assert.equal(me.body.userCtx.name, res.body.userCtx.name);
    const bad = await req(`${pub}/_session`, { method: 'POST', headers: { Authorization: `Bearer ${token.slice(0, -4)}` } });
    assert.equal(bad.status, 401);
  });
});

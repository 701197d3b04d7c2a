/**
 * The OpenID Connect authorization-code flow end to end in headless Chromium (issue 16): the page
 * opens `/{db}/_oidc`, lands on the provider's own login page (`oidc-provider`, a certified OP),
 * signs in there, is redirected to `/{db}/_oidc_callback`, and holds Syncgate's session cookie; a
 * PouchDB (the `pouchdb-browser` build, in that page) then pulls exactly the channels of the claims.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function pouchdbBundle(): Promise<string> {
  const result = await build({
    stdin: { contents: "import PouchDB from 'pouchdb-browser'; globalThis.PouchDB = PouchDB;", resolveDir: ROOT, loader: 'js' },
    bundle: true, platform: 'browser', format: 'iife', target: 'es2020', write: false, logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

describe('browser: sign in with an OpenID Provider, then pull with PouchDB', { timeout: 180_000 }, () => {
  let op: TestOidcProvider;
  let gw: TestGateway;
  let browser: Browser;
  const pageLog: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    op = await startOidcProvider();
    gw = await startGateway({
      openGuest: false,
      databases: {
        db: {
          server: 'memory:', send_www_authenticate_header: false,
          oidc: { providers: { op: { issuer: op.issuer, client_id: op.clientId, validation_key: op.clientSecret, register: true, channels_claim: 'chans', roles_claim: 'groups', scope: ['openid', 'email', 'sg'] } } },
        },
      },
    });
    await op.allowRedirect(`${gw.publicUrl}/db/_oidc_callback`);
    for (const [id, ch] of [['red-1', 'red'], ['red-2', 'red'], ['blue-1', 'blue'], ['team-1', 'team']]) {
      assert.equal((await req(`${gw.adminUrl}/db/${id}`, { method: 'PUT', json: { channels: [ch] } })).status, 201);
    }
    assert.equal((await req(`${gw.adminUrl}/db/_role/team`, { method: 'PUT', json: { admin_channels: ['team'] } })).status, 201);
    op.accounts.set('ruby', { chans: ['red'], groups: ['team'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    await op?.stop();
  });

  test('the provider login page, the callback, the session cookie, then a PouchDB pull of exactly the claimed channels', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
    await page.goto(`${gw.publicUrl}/db/_oidc`);
    // The provider's own login form.
    assert.ok(page.url().startsWith(`${op.issuer}/interaction/`), page.url());
    await page.fill('input[name=login]', 'ruby');
    await page.fill('input[name=password]', 'any password');
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(`${gw.publicUrl}/db/_oidc_callback`), { timeout: 60_000 }),
      page.click('button[type=submit]'),
    ]);
    const answer = JSON.parse(await page.innerText('body'));
    const prefix = encodeURIComponent(new URL(op.issuer).host);
    assert.equal(answer.name, `${prefix}_ruby`);
    assert.equal(typeof answer.session_id, 'string');
    const cookies = await context.cookies(gw.publicUrl + '/db');
    assert.equal(cookies.find((c) => c.name === 'SyncGatewaySession')?.value, answer.session_id);
    assert.equal(cookies.find((c) => c.name === 'sg-oidc-state'), undefined, 'the state cookie was cleared');

    await page.addScriptTag({ content: await pouchdbBundle() });
    const pulled = await page.evaluate(async (db) => {
      const PouchDB = (globalThis as any).PouchDB;
      const local = new PouchDB(`pull-${Date.now()}`);
      const res = await local.replicate.from(new PouchDB(db, { skip_setup: true }));
      const me = await (await fetch(`${db}/_session`)).json();
      return { ok: res.ok, errors: res.errors.length, ids: (await local.allDocs()).rows.map((r: { id: string }) => r.id), me: me.userCtx.name };
    }, `${gw.publicUrl}/db`).catch((err: Error) => { throw new Error(`${err.message}\n${pageLog.join('\n')}`); });
    assert.equal(pulled.ok, true);
    assert.equal(pulled.errors, 0);
    assert.equal(pulled.me, `${prefix}_ruby`);
    assert.deepEqual(pulled.ids.sort(), ['red-1', 'red-2', 'team-1'], 'the channels claim (red) and the role claim (team), nothing else');
    await context.close();
  });
});

/**
 * Browsers (issue 4 item 6, spec §0 CORS): headless Chromium (Debian's `chromium`, driven by
 * playwright-core) loads a page from another origin, where PouchDB (the `pouchdb-browser` build,
 * bundled by esbuild at test time, storing in IndexedDB) logs in through `POST /db/_session` and
 * syncs both ways through Syncgate. A page from an origin not in `CORS.Origin` cannot read anything,
 * even with the user's session cookie in the browser, and the admin port never answers a page.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const USER = { name: 'alice', password: 'wonderland' };

/** PouchDB for the browser as one script defining `window.PouchDB` (IndexedDB local storage, http remote). */
async function pouchdbBundle(): Promise<string> {
  const result = await build({
    stdin: { contents: "import PouchDB from 'pouchdb-browser'; globalThis.PouchDB = PouchDB;", resolveDir: ROOT, loader: 'js' },
    bundle: true, platform: 'browser', format: 'iife', target: 'es2020', write: false, logLevel: 'silent',
  }).catch((err: Error) => {
    throw new Error(`cannot bundle pouchdb-browser (devDependencies pouchdb-browser and events installed?): ${err.message}`);
  });
  return result.outputFiles[0].text;
}

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>notes</title><script src="/pouchdb.js"></script></head><body>notes</body></html>';

/** A static site on its own loopback port, i.e. its own origin `http://127.0.0.1:<port>`. */
async function site(script: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((rq, rs) => {
    const path = (rq.url ?? '/').split('?')[0];
    if (path === '/') { rs.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }); rs.end(PAGE); return; }
    if (path === '/pouchdb.js') { rs.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }); rs.end(script); return; }
    rs.writeHead(404); rs.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function corsHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => { if (k.startsWith('access-control-')) out[k] = v; });
  return out;
}

describe('browser: PouchDB in headless Chromium on another origin', { timeout: 180_000 }, () => {
  let gw: TestGateway;
  let app: Awaited<ReturnType<typeof site>>;
  let foreign: Awaited<ReturnType<typeof site>>;
  let browser: Browser;
  let context: BrowserContext;
  const pageLog: string[] = [];

  async function open(origin: string): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => pageLog.push(`${origin} console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`${origin} pageerror: ${e.message}`));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => typeof (globalThis as { PouchDB?: unknown }).PouchDB === 'function');
    return page;
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    const script = await pouchdbBundle();
    app = await site(script);
    foreign = await site(script);
    gw = await startGateway({
      // A browser app's config: with the default WWW-Authenticate on 401, a browser answers the
      // first unauthenticated request with its Basic-auth prompt (headless Chromium just stalls).
      databases: { db: { server: 'memory:', send_www_authenticate_header: false, users: { [USER.name]: { password: USER.password, admin_channels: ['notes'] } } } },
      config: { CORS: { Origin: [app.origin], LoginOrigin: [app.origin], Headers: ['Content-Type', 'Authorization'], MaxAge: 300 } },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await gw?.stop();
    await app?.close();
    await foreign?.close();
  });

  test('logs in with _session and syncs both ways', async () => {
    const made = await req(`${gw.adminUrl}/db/from-server`, { method: 'PUT', json: { channels: ['notes'], text: 'written on the server' } });
    assert.equal(made.status, 201, made.text);

    const page = await open(app.origin);
    const out = await page.evaluate(async ({ gw, user }) => {
      const PouchDB = (globalThis as any).PouchDB;
      // skip_setup: the remote must not be probed (or created) before the user has logged in.
      const remote = new PouchDB(`${gw}/db`, { skip_setup: true });
      // Before logging in: a 401 the page can read (the CORS headers survive the error).
      const before = (await fetch(`${gw}/db/`, { credentials: 'include' })).status;
      // PouchDB's own http adapter makes the login request (credentials: 'include'), so the session
      // cookie lands in the browser for Syncgate's origin.
      const login = await remote.fetch('/db/_session', {
        method: 'POST', headers: new Headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(user),
      });
      const loginBody = await login.json();
      const session = await (await fetch(`${gw}/db/_session`, { credentials: 'include' })).json();

      const local = new PouchDB(`notes-${Date.now()}`);
      await local.put({ _id: 'from-browser', channels: ['notes'], text: 'written in the page' });
      const sync = await local.sync(remote);
      const pulled = await local.get('from-server');
      return {
        before, loginStatus: login.status, loginName: loginBody.userCtx?.name, sessionName: session.userCtx?.name,
        push: { ok: sync.push.ok, written: sync.push.docs_written, errors: sync.push.errors.length },
        pull: { ok: sync.pull.ok, written: sync.pull.docs_written, errors: sync.pull.errors.length },
        pulled: { text: pulled.text, rev: pulled._rev },
        localIds: (await local.allDocs()).rows.map((r: { id: string }) => r.id),
      };
    }, { gw: gw.publicUrl, user: USER }).catch((err: Error) => { throw new Error(`${err.message}\n${pageLog.join('\n')}`); });

    assert.equal(out.before, 401, 'without the session the remote is closed (GUEST is disabled)');
    assert.equal(out.loginStatus, 200);
    assert.equal(out.loginName, USER.name);
    assert.equal(out.sessionName, USER.name, 'the cookie set by the login is sent back on the next cross-origin request');
    assert.deepEqual(out.push, { ok: true, written: 1, errors: 0 }, pageLog.join('\n'));
    assert.deepEqual(out.pull, { ok: true, written: 1, errors: 0 }, pageLog.join('\n'));
    assert.equal(out.pulled.text, 'written on the server');
    assert.equal(out.pulled.rev, made.body.rev);
    assert.deepEqual(out.localIds, ['from-browser', 'from-server']);

    // Server side: the page's document arrived, and is the user's.
    const pushed = await req(`${gw.adminUrl}/db/from-browser`);
    assert.equal(pushed.status, 200);
    assert.equal(pushed.body.text, 'written in the page');
    const asUser = await req(`${gw.publicUrl}/db/from-browser`, { headers: { Authorization: `Basic ${Buffer.from(`${USER.name}:${USER.password}`).toString('base64')}` } });
    assert.equal(asUser.status, 200);
    // The browser preflighted its JSON requests.
    assert.ok(gw.logs.some((l) => /OPTIONS \/db\/_session\b/.test(l)), 'a preflight for the login');
    await page.close();
  });

  test('a page from an origin not in the list reads nothing, even with the session cookie in the browser', async () => {
    const page = await open(foreign.origin);
    const out = await page.evaluate(async ({ gw, user }) => {
      const PouchDB = (globalThis as any).PouchDB;
      // (No named helper functions in here: the test runner's transform would rename them with a
      // helper that does not exist in the page.)
      const [login, read, anonymous] = await Promise.all([
        fetch(`${gw}/db/_session`, {
          method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(user),
        }),
        fetch(`${gw}/db/from-server`, { credentials: 'include' }),
        fetch(`${gw}/db/`),
      ].map((p) => p.then((r) => `status ${r.status}`, (e: Error) => e.name)));
      const local = new PouchDB(`evil-${Date.now()}`);
      await local.put({ _id: 'from-foreign-page', channels: ['notes'] });
      const remote = new PouchDB(`${gw}/db`, { skip_setup: true });
      const push = await local.replicate.to(remote).then(
        (r: { ok: boolean; docs_written: number }) => `ok=${r.ok} written=${r.docs_written}`, (e: Error) => `error ${e.name}`,
      );
      const pull = await local.replicate.from(remote).then(
        (r: { ok: boolean; docs_written: number }) => `ok=${r.ok} written=${r.docs_written}`, (e: Error) => `error ${e.name}`,
      );
      return { login, read, anonymous, push, pull, localIds: (await local.allDocs()).rows.map((r: { id: string }) => r.id) };
    }, { gw: gw.publicUrl, user: USER });

    // fetch() rejects with a TypeError when the browser refuses a cross-origin response.
    assert.deepEqual([out.login, out.read, out.anonymous], ['TypeError', 'TypeError', 'TypeError'], JSON.stringify(out));
    assert.ok(out.push.startsWith('error') || out.push.includes('written=0'), out.push);
    assert.ok(out.pull.startsWith('error') || out.pull.includes('written=0'), out.pull);
    assert.deepEqual(out.localIds, ['from-foreign-page'], 'nothing was pulled');
    assert.equal((await req(`${gw.adminUrl}/db/from-foreign-page`)).status, 404, 'nothing was pushed');
    await page.close();
  });

  test('the listed page cannot reach the admin port either', async () => {
    const page = await open(app.origin);
    const out = await page.evaluate(async (admin) => fetch(`${admin}/db/`).then((r) => `status ${r.status}`, (e: Error) => e.name), gw.adminUrl);
    assert.equal(out, 'TypeError');
    await page.close();
  });

  test('over plain HTTP: headers on the public port, none on the admin port, No CORS for a foreign login', async () => {
    const pub = await fetch(`${gw.publicUrl}/db/_session`, { headers: { Origin: app.origin } });
    assert.deepEqual(corsHeaders(pub.headers), {
      'access-control-allow-origin': app.origin, 'access-control-allow-credentials': 'true', 'access-control-allow-headers': 'Content-Type, Authorization',
    });
    const pre = await fetch(`${gw.publicUrl}/db/_bulk_docs`, { method: 'OPTIONS', headers: { Origin: app.origin, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-max-age'), '300');
    assert.equal(pre.headers.get('access-control-allow-methods'), pre.headers.get('allow'));
    assert.equal(corsHeaders((await fetch(`${gw.publicUrl}/db/`, { headers: { Origin: foreign.origin } })).headers)['access-control-allow-origin'], undefined);

    const refused = await req(`${gw.publicUrl}/db/_session`, { method: 'POST', headers: { Origin: foreign.origin }, json: USER });
    assert.deepEqual([refused.status, refused.body.reason], [400, 'No CORS']);
    assert.equal(refused.headers.get('set-cookie'), null);
    const noOrigin = await req(`${gw.publicUrl}/db/_session`, { method: 'POST', json: USER });
    assert.equal(noOrigin.status, 200, 'apps and curl send no Origin');

    for (const [path, method, headers] of [
      ['/db/', 'GET', { Origin: app.origin }], ['/db/nope', 'GET', { Origin: app.origin }],
      ['/db/_bulk_docs', 'OPTIONS', { Origin: app.origin, 'Access-Control-Request-Method': 'POST' }],
    ] as const) {
      for (const base of [gw.adminUrl, gw.metricsUrl]) {
        const r = await fetch(`${base}${path}`, { method, headers });
        await r.arrayBuffer();
        assert.deepEqual(corsHeaders(r.headers), {}, `${method} ${base}${path}`);
      }
    }
    const adminSession = await req(`${gw.adminUrl}/db/_session`, { method: 'POST', headers: { Origin: foreign.origin }, json: { name: USER.name } });
    assert.equal(adminSession.status, 200, 'the admin port does not check LoginOrigin');
  });
});

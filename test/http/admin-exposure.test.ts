/**
 * The admin API is never reachable through the public port (issue 8, item 6), whatever the path
 * looks like: percent-encoded underscores, doubled slashes, `..` and `.` segments, case changes,
 * encoded slashes, absolute-form targets, and a WebSocket upgrade. Requests go over raw sockets
 * because fetch (WHATWG URL) would normalize `..` and `%2e` before sending.
 *
 * Every answer to a reserved path (`/db/_...`, `/_...`) must be a 4xx; a trick that turns the path
 * into an ordinary document route may succeed as a document write (GUEST can write here) but never
 * yields admin output; and nothing on the admin side changes: users, roles, logging settings and
 * databases, read through the admin port afterwards, are as before. (`/{db}/_session` is public by
 * design and not a target; the admin-only `/{db}/_session/{id}` is.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { WebSocket } from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest, sendRaw } from '../helpers/raw-http.ts';

/** Spellings of an admin path segment (`_user`, `_role`, ...), from the plain one to tricks. */
function spellings(seg: string): string[] {
  const rest = seg.slice(1);
  return [
    seg, `%5F${rest}`, `%5f${rest}`, `%255F${rest}`, seg.toUpperCase(), `_${rest[0].toUpperCase()}${rest.slice(1)}`,
    `${seg}%00`, `${seg}%20`, ` ${seg}`.replace(' ', '%20'), `${seg};x`, `${seg}.`, `${seg}%2F`,
  ];
}

/** Ways to write `/{db}/{rest}` that a path normalizer might fold into it. */
function dbPrefixes(db: string): string[] {
  return [
    `/${db}/`, `//${db}/`, `/${db}//`, `/./${db}/`, `/${db}/./`, `/${db}/../${db}/`, `/x/../${db}/`, `/${db}/%2E/`,
    `/${db}/%2e%2e/${db}/`, `/${db.toUpperCase()}/`, `/${db}%2F`, `/${encodeURIComponent(db)}/`, `/%64${db.slice(1)}/`,
    `http://127.0.0.1/${db}/`, `/${db}/x/../`,
  ];
}

/**
 * True when the router must treat the path as reserved: it is `/db/<segment>` or deeper with the
 * second segment decoding to `_...` (an admin or special endpoint). Anything else that a trick
 * produces (`/db/%255Fuser/x` is the document "%5Fuser", `/db/../db/_user/x` the attachment
 * "db/_user/x" of the document "..") is an ordinary document route, which GUEST may use here.
 */
function reserved(path: string): boolean {
  const segs = path.split('?')[0].split('/');
  if (segs[0] !== '' || segs[1] !== 'db' || segs.length < 3) return false;
  try { return decodeURIComponent(segs[2]).startsWith('_'); } catch { return true; }
}

/** A success on the public port must be a document, attachment, write result or session answer. */
function ordinaryAnswer(contentType: string | undefined, body: Buffer): boolean {
  if (!/json/.test(contentType ?? '')) return true; // attachment bytes
  const v = JSON.parse(body.toString()) as Record<string, unknown>;
  const id = typeof v.id === 'string' ? v.id : typeof v._id === 'string' ? v._id : undefined;
  if (id !== undefined) return !id.startsWith('_') && !('all_channels' in v) && !('admin_channels' in v && 'name' in v && !('_rev' in v));
  return 'userCtx' in v;
}

describe('the admin API is not reachable through the public port', () => {
  let gw: TestGateway;
  let port: number;
  const snapshot = async () => {
    const get = async (path: string) => (await req(`${gw.adminUrl}${path}`)).text;
    return {
      users: await get('/db/_user/'), roles: await get('/db/_role/'), alice: await get('/db/_user/alice'),
      logging: await get('/_logging'), dbs: await get('/_all_dbs'),
    };
  };

  before(async () => {
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:',
          users: { alice: { password: 'pw-alice', admin_channels: ['a'] }, GUEST: { disabled: false, admin_channels: ['*'] } },
          roles: { staff: { admin_channels: ['s'] } },
        },
      },
    });
    port = Number(new URL(gw.publicUrl).port);
    await req(`${gw.adminUrl}/db/doc1`, { method: 'PUT', json: { channels: ['a'] } });
  });
  after(() => gw.stop());

  test('admin routes under every path trick: 4xx and no effect, as GUEST and as a user', async () => {
    const before = await snapshot();
    const body = JSON.stringify({ name: 'mallory', password: 'pw-mallory', admin_channels: ['*'], admin_roles: ['staff'] });
    const targets: { method: string; path: string }[] = [];
    for (const prefix of dbPrefixes('db')) {
      for (const seg of ['_user', '_role', '_config', '_purge', '_resync', '_compact', '_offline', '_online', '_raw', '_dumpchannel', '_flush', '_replicate']) {
        // Every spelling under the plain prefix; the plain and the %5F spelling under every prefix.
        for (const s of prefix === '/db/' ? spellings(seg) : spellings(seg).slice(0, 2)) {
          targets.push({ method: 'GET', path: `${prefix}${s}/` });
          targets.push({ method: 'PUT', path: `${prefix}${s}/mallory` });
          targets.push({ method: 'POST', path: `${prefix}${s}/` });
        }
      }
      targets.push({ method: 'DELETE', path: `${prefix}_user/alice` });
      targets.push({ method: 'DELETE', path: `${prefix}%5Fuser/alice/_session` });
      targets.push({ method: 'GET', path: `${prefix}_session/abc` });
      targets.push({ method: 'DELETE', path: prefix });
      targets.push({ method: 'PUT', path: `${prefix.replace(/db\/$/, 'newdb/')}` });
    }
    for (const top of ['_all_dbs', '%5Fall_dbs', '_ALL_DBS', '_logging', '%5Flogging', '_config', '%5Fconfig', '_expvar', '_metrics', '_debug/pprof/goroutine', '_stats', '_status', '_cluster_info', '_sgcollect_info', '_post_upgrade']) {
      for (const pre of ['/', '//', '/./', '/x/../', '/%2E/']) {
        targets.push({ method: 'GET', path: `${pre}${top}` });
        targets.push({ method: 'PUT', path: `${pre}${top}` });
        targets.push({ method: 'POST', path: `${pre}${top}` });
      }
    }
    const failures: string[] = [];
    const auths: Record<string, string>[] = [{}, { Authorization: `Basic ${Buffer.from('alice:pw-alice').toString('base64')}` }];
    for (let i = 0; i < targets.length; i += 16) {
      await Promise.all(targets.slice(i, i + 16).flatMap(({ method, path }) => auths.map(async (auth) => {
        const headers = { ...auth, 'Content-Type': 'application/json', 'X-Forwarded-For': '127.0.0.1', 'X-Forwarded-Host': 'localhost:4985' };
        const res = await sendRaw(port, rawRequest(method, path, headers, method === 'GET' || method === 'DELETE' ? undefined : body));
        // A 4xx from our router/handlers, or (for targets Node's parser refuses) a bare 400 or a close.
        if (res === null || (res.status >= 400 && res.status < 500)) return;
        const who = Object.keys(auth).length ? 'as alice' : 'as GUEST';
        if (res.status >= 300 || reserved(path)) failures.push(`${method} ${path} ${who}: ${res.status} ${res.body.subarray(0, 120)}`);
        else if (!ordinaryAnswer(res.headers['content-type'], res.body)) failures.push(`${method} ${path} ${who}: not a document answer: ${res.body.subarray(0, 120)}`);
      })));
    }
    assert.ok(targets.length > 1000, `${targets.length} targets`);
    assert.deepEqual(failures, []);
    assert.deepEqual(await snapshot(), before, 'nothing changed on the admin side');
    assert.equal((await req(`${gw.adminUrl}/db/_user/mallory`)).status, 404);
  });

  test('a WebSocket upgrade to an admin path is refused', async () => {
    for (const path of ['/db/_user/', '/db/%5Fuser/', '//db/_user/', '/_all_dbs', '/db/../db/_user/']) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
        ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
        ws.on('open', () => { resolve(101); ws.close(); });
        ws.on('error', () => resolve(-1));
      });
      assert.ok(status >= 400 && status < 500, `${path}: ${status}`);
    }
  });

  test('the same admin paths do work on the admin port (the tests above are not vacuous)', async () => {
    assert.equal((await req(`${gw.adminUrl}/db/_user/alice`)).status, 200);
    assert.equal((await req(`${gw.adminUrl}/db/%5Fuser/alice`)).status, 200, 'the admin router decodes %5F too');
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`)).status, 200);
    assert.equal((await req(`${gw.publicUrl}/db/_user/alice`)).status, 404);
  });
});

describe('the operator console (/_admin/) is admin-port only and behind operator credentials', () => {
  let gw: TestGateway;
  const ops = { Authorization: `Basic ${Buffer.from('ops:ops-pw').toString('base64')}` };
  const wrong = { Authorization: `Basic ${Buffer.from('ops:wrong-pw').toString('base64')}` };
  const alice = { Authorization: `Basic ${Buffer.from('alice:pw-alice').toString('base64')}` };

  before(async () => {
    gw = await startGateway({
      config: { admin_users: { ops: { password_hash: bcrypt.hashSync('ops-pw', 4) } } },
      databases: { db: { server: 'memory:', users: { alice: { password: 'pw-alice', admin_channels: ['a'] }, GUEST: { disabled: false, admin_channels: ['*'] } } } },
    });
  });
  after(() => gw.stop());

  test('the admin port serves the console to an operator, with content types and a strict CSP', async () => {
    const page = await req(`${gw.adminUrl}/_admin/`, { headers: ops });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    assert.match(page.text, /<script type="module" src="app\.js"><\/script>/);
    const csp = page.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const js = await req(`${gw.adminUrl}/_admin/app.js`, { headers: ops });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    const css = await req(`${gw.adminUrl}/_admin/app.css`, { headers: ops });
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type')!, /^text\/css/);
    assert.match(css.text, /\.uplot/, 'uPlot CSS is bundled, not fetched from a CDN');
    const bare = await fetch(`${gw.adminUrl}/_admin`, { headers: ops, redirect: 'manual' });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/_admin/');
    // `/_expvar` (Sync Gateway serves it on the admin port too) feeds the console's charts.
    assert.equal((await req(`${gw.adminUrl}/_expvar`, { headers: ops })).status, 200);
  });

  test('without or with wrong operator credentials: 401, whatever the path', async () => {
    for (const path of ['/_admin/', '/_admin', '/_admin/app.js', '/_admin/app.css', '/_admin/missing.js', '/_admin/../_admin/app.js', '/%5Fadmin/', '/_expvar']) {
      for (const headers of [{}, wrong, alice]) {
        const res = await sendRaw(Number(new URL(gw.adminUrl).port), rawRequest('GET', path, headers));
        assert.equal(res?.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.doesNotMatch(res!.body.toString(), /<script|uplot/i, path);
      }
    }
  });

  test('the public port answers 404 for the console under every spelling, with any credentials', async () => {
    const port = Number(new URL(gw.publicUrl).port);
    const paths = ['/_admin/', '/_admin', '/_admin/app.js', '/_admin/app.css', '/_admin/index.html', '/%5Fadmin/', '/%5fadmin/app.js',
      '//_admin/', '/./_admin/', '/x/../_admin/app.js', '/_ADMIN/', '/_admin/%2e%2e/_admin/app.js', '/_expvar'];
    for (const path of paths) {
      for (const headers of [{}, ops, alice]) {
        const res = await sendRaw(port, rawRequest('GET', path, headers));
        assert.ok(res === null || (res.status >= 400 && res.status < 500), `${path}: ${res?.status}`);
        assert.doesNotMatch(res?.body.toString() ?? '', /<script|uplot/i, path);
      }
    }
    assert.equal((await req(`${gw.publicUrl}/_admin/`)).status, 404);
    assert.equal((await req(`${gw.publicUrl}/_admin/app.js`, { headers: ops })).status, 404);
  });

  test('no file outside the bundle is served, however the path climbs', async () => {
    const port = Number(new URL(gw.adminUrl).port);
    for (const path of ['/_admin/../package.json', '/_admin/%2e%2e/package.json', '/_admin/%2e%2e%2fpackage.json', '/_admin/..%2f..%2fpackage.json',
      '/_admin/%2e%2e%2f%2e%2e%2fsrc%2fcli.ts', '/_admin/..%5c..%5cpackage.json', '/_admin/./index.html', '/_admin//index.html',
      '/_admin/app.js%00.html', '/_admin/%2fetc%2fpasswd', '/_admin/build.ts', '/_admin/main.tsx']) {
      const res = await sendRaw(port, rawRequest('GET', path, ops));
      assert.ok(res !== null && res.status >= 400 && res.status < 500 || res?.status === 301, `${path}: ${res?.status}`);
      assert.doesNotMatch(res?.body.toString() ?? '', /"name": "syncgate"|root:|import /, path);
    }
  });
});

describe('the admin port refuses what a browser sends for another site (Sec-Fetch-Site)', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.stop());

  test('cross-site and same-site requests and WebSocket upgrades: 403 and no effect; same-origin, none and non-browser clients pass', async () => {
    const port = Number(new URL(gw.adminUrl).port);
    for (const site of ['cross-site', 'same-site', 'bogus']) {
      const res = await sendRaw(port, rawRequest('POST', '/db/_offline', { 'Sec-Fetch-Site': site }));
      assert.equal(res?.status, 403, site);
      assert.equal(JSON.parse(res!.body.toString()).reason, 'Cross-site requests to the admin port are refused');
      const ws = await new Promise<number>((resolve) => {
        const sock = new WebSocket(`ws://127.0.0.1:${port}/db/_changes`, { headers: { 'Sec-Fetch-Site': site } });
        sock.on('unexpected-response', (_req, r) => { resolve(r.statusCode ?? 0); sock.terminate(); });
        sock.on('open', () => { resolve(101); sock.close(); });
        sock.on('error', () => resolve(-1));
      });
      assert.equal(ws, 403, `WebSocket ${site}`);
    }
    const wsStatus = (headers: Record<string, string>) => new Promise<number>((resolve) => {
      const sock = new WebSocket(`ws://127.0.0.1:${port}/db/_changes`, { headers });
      sock.on('unexpected-response', (_req, r) => { resolve(r.statusCode ?? 0); sock.terminate(); });
      sock.on('open', () => { resolve(101); sock.close(); });
      sock.on('error', () => resolve(-1));
    });
    // Chromium sends no Sec-Fetch-Site on a WebSocket handshake, but always Origin.
    assert.equal(await wsStatus({ Origin: 'http://elsewhere.example' }), 403);
    assert.equal(await wsStatus({ Origin: `http://localhost:${port}` }), 403, 'another host name is another origin');
    assert.equal(await wsStatus({ Origin: `http://127.0.0.1:${port}` }), 101, 'the console itself');
    assert.equal(await wsStatus({}), 101, 'a non-browser client');
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.state, 'Online', 'the refused requests changed nothing');
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: { 'Sec-Fetch-Site': 'same-origin' } })).status, 200);
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: { 'Sec-Fetch-Site': 'none' } })).status, 200, 'typed into the address bar');
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: { Origin: 'http://elsewhere.example' } })).status, 200, 'Origin alone is not checked');
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`)).status, 200);
    assert.equal((await req(`${gw.publicUrl}/db/`, { headers: { 'Sec-Fetch-Site': 'cross-site' } })).status, 200, 'the public port is for browsers on any site (CORS governs it)');
  });
});

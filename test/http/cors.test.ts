/**
 * CORS (spec §0) over real HTTP, on a listener wired the way src/http/server.ts wires it: headers
 * before routing, preflight headers where the router answers OPTIONS, the LoginOrigin check just
 * before the handler, and errors going through ctx.sendError. The routes are stand-ins with the
 * real patterns, so no database is needed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CorsConfig } from '../../src/config/index.ts';
import { parseConfigText } from '../../src/config/index.ts';
import { HttpError } from '../../src/errors.ts';
import { RequestContext, SERVER_HEADER } from '../../src/http/context.ts';
import { addCorsHeaders, addPreflightHeaders, checkLoginOrigin, matchOrigin } from '../../src/http/cors.ts';
import { type Route, Router } from '../../src/http/router.ts';

const APP = 'https://app.example.com';
const LOGIN = 'https://login.example.com';
const EVIL = 'https://evil.example';
const CORS: CorsConfig = { origin: [APP, LOGIN], loginOrigin: [LOGIN, APP], headers: ['Content-Type', 'Authorization'], maxAge: 600 };

const ok = (body: unknown) => async (ctx: RequestContext) => { await ctx.sendJson(200, JSON.stringify(body)); };
const ROUTES: Route[] = [
  { methods: ['GET'], pattern: '/{db}/', handler: ok({ db_name: 'db' }) },
  { methods: ['GET', 'POST', 'DELETE'], pattern: '/{db}/_session', handler: ok({ ok: true }), publicPrivileges: true },
  {
    methods: ['GET', 'PUT', 'DELETE'], pattern: '/{db}/{doc}',
    handler: async (ctx) => {
      if (ctx.params.doc === 'missing') throw new HttpError(404, 'missing');
      if (ctx.params.doc === 'secret') throw new HttpError(401, 'Login required');
      await ctx.sendJson(200, JSON.stringify({ _id: ctx.params.doc }));
    },
  },
];

interface Listener { url: string; close(): Promise<void> }

/** The wiring of createListener's handle(), with the three CORS calls where server.ts makes them. */
function listener(cors: CorsConfig | undefined, admin: boolean): Promise<Listener> {
  const router = new Router(ROUTES, admin);
  const server = http.createServer((rq, rs) => {
    const ctx = new RequestContext(rq, rs, admin, { maxBodyBytes: 1 << 20, compressResponses: false, pretty: false });
    rs.setHeader('Server', SERVER_HEADER);
    addCorsHeaders(ctx, cors);
    (async () => {
      const match = router.resolve(ctx.method, ctx.path);
      if ('allow' in match) {
        rs.statusCode = 204;
        rs.setHeader('Allow', match.allow.join(', '));
        addPreflightHeaders(ctx, cors, match.allow);
        rs.end();
        return;
      }
      ctx.params = match.params;
      checkLoginOrigin(ctx, cors, match.route);
      await match.route.handler(ctx);
    })().catch((e) => ctx.sendError(e));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  })));
}

async function call(url: string, method = 'GET', headers: Record<string, string> = {}) {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  const cors: Record<string, string> = {};
  res.headers.forEach((v, k) => { if (k.startsWith('access-control-')) cors[k] = v; });
  return { status: res.status, text, cors, allow: res.headers.get('allow') };
}

const preflight = (origin: string, method = 'PUT') => ({ Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'content-type' });

describe('matchOrigin', () => {
  test('exact match, then *, else nothing', () => {
    assert.equal(matchOrigin([APP], APP), APP);
    assert.equal(matchOrigin([APP], EVIL), undefined);
    assert.equal(matchOrigin([], APP), undefined);
    assert.equal(matchOrigin(['*'], EVIL), '*');
    assert.equal(matchOrigin(['*', APP], APP), APP, 'an exact match is sent as itself, which browsers accept with credentials');
    assert.equal(matchOrigin([APP], APP + '/'), undefined, 'no normalisation: browsers send the exact origin');
  });
});

describe('CORS on the public port', () => {
  let pub: Listener;
  before(async () => { pub = await listener(CORS, false); });
  after(() => pub.close());

  test('a request with an allowed Origin gets the origin back, credentials and the allowed headers', async () => {
    const r = await call(`${pub.url}/db/doc1`, 'GET', { Origin: APP });
    assert.equal(r.status, 200);
    assert.deepEqual(r.cors, {
      'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-allow-headers': 'Content-Type, Authorization',
    });
    assert.equal((await call(`${pub.url}/db/`, 'GET', { Origin: LOGIN })).cors['access-control-allow-origin'], LOGIN);
  });

  test('a request without Origin (an app, curl) gets no CORS headers', async () => {
    const r = await call(`${pub.url}/db/doc1`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.cors, {});
  });

  test('an Origin not in the list gets no Access-Control-Allow-Origin, so the browser refuses the response', async () => {
    for (const origin of [EVIL, 'null', APP.toUpperCase(), `${APP}:443`]) {
      const r = await call(`${pub.url}/db/doc1`, 'GET', { Origin: origin });
      assert.equal(r.cors['access-control-allow-origin'], undefined, origin);
    }
  });

  test('error responses keep the CORS headers, so a page can read them', async () => {
    for (const [doc, status] of [['missing', 404], ['secret', 401]] as const) {
      const r = await call(`${pub.url}/db/${doc}`, 'GET', { Origin: APP });
      assert.equal(r.status, status);
      assert.equal(r.cors['access-control-allow-origin'], APP);
      assert.equal(r.cors['access-control-allow-credentials'], 'true');
    }
    const unknown = await call(`${pub.url}/_nope`, 'GET', { Origin: APP });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.cors['access-control-allow-origin'], APP);
  });

  test('a preflight gets Max-Age and the path\'s methods as well', async () => {
    const r = await call(`${pub.url}/db/doc1`, 'OPTIONS', preflight(APP));
    assert.equal(r.status, 204);
    assert.equal(r.allow, 'GET, PUT, DELETE, HEAD');
    assert.deepEqual(r.cors, {
      'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-allow-headers': 'Content-Type, Authorization',
      'access-control-max-age': '600', 'access-control-allow-methods': 'GET, PUT, DELETE, HEAD',
    });
    const s = await call(`${pub.url}/db/_session`, 'OPTIONS', preflight(APP, 'POST'));
    assert.equal(s.cors['access-control-allow-methods'], 'GET, POST, DELETE, HEAD');
  });

  test('a preflight from an origin not in the list has no Access-Control-Allow-Origin', async () => {
    const r = await call(`${pub.url}/db/doc1`, 'OPTIONS', preflight(EVIL));
    assert.equal(r.status, 204);
    assert.equal(r.cors['access-control-allow-origin'], undefined);
  });

  test('OPTIONS without Origin is a plain Allow answer', async () => {
    const r = await call(`${pub.url}/db/doc1`, 'OPTIONS');
    assert.equal(r.status, 204);
    assert.equal(r.allow, 'GET, PUT, DELETE, HEAD');
    assert.deepEqual(r.cors, {});
  });

  test('POST and DELETE /{db}/_session need an Origin in LoginOrigin; without Origin they go through', async () => {
    for (const method of ['POST', 'DELETE']) {
      const refused = await call(`${pub.url}/db/_session`, method, { Origin: EVIL });
      assert.equal(refused.status, 400, method);
      assert.deepEqual(JSON.parse(refused.text), { error: 'Bad Request', reason: 'No CORS' });
      assert.equal((await call(`${pub.url}/db/_session`, method, { Origin: LOGIN })).status, 200, method);
      assert.equal((await call(`${pub.url}/db/_session`, method)).status, 200, method);
    }
    // GET (who am I) is not a login.
    assert.equal((await call(`${pub.url}/db/_session`, 'GET', { Origin: EVIL })).status, 200);
  });

  test('LoginOrigin is its own list', async () => {
    const l = await listener({ ...CORS, loginOrigin: [LOGIN] }, false);
    try {
      const r = await call(`${l.url}/db/_session`, 'POST', { Origin: APP });
      assert.deepEqual([r.status, JSON.parse(r.text).reason], [400, 'No CORS']);
      assert.equal(r.cors['access-control-allow-origin'], APP, 'the page may read the refusal');
      assert.equal((await call(`${l.url}/db/_session`, 'POST', { Origin: LOGIN })).status, 200);
    } finally { await l.close(); }
  });
});

describe('CORS with "*"', () => {
  let pub: Listener;
  before(async () => { pub = await listener({ origin: ['*'], loginOrigin: ['*'], headers: [], maxAge: 0 }, false); });
  after(() => pub.close());

  test('any origin gets the literal "*" (which browsers refuse for requests with credentials), and may log in', async () => {
    const r = await call(`${pub.url}/db/doc1`, 'GET', { Origin: EVIL });
    assert.deepEqual(r.cors, { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'access-control-allow-headers': '' });
    const p = await call(`${pub.url}/db/doc1`, 'OPTIONS', preflight(EVIL));
    assert.equal(p.cors['access-control-max-age'], '0');
    assert.equal((await call(`${pub.url}/db/_session`, 'POST', { Origin: EVIL })).status, 200);
  });
});

describe('CORS not configured', () => {
  let pub: Listener;
  before(async () => { pub = await listener(undefined, false); });
  after(() => pub.close());

  test('no CORS headers at all, and a login carrying an Origin is refused', async () => {
    assert.deepEqual((await call(`${pub.url}/db/doc1`, 'GET', { Origin: APP })).cors, {});
    assert.deepEqual((await call(`${pub.url}/db/doc1`, 'OPTIONS', preflight(APP))).cors, {});
    const r = await call(`${pub.url}/db/_session`, 'POST', { Origin: APP });
    assert.deepEqual([r.status, JSON.parse(r.text).reason], [400, 'No CORS']);
    assert.equal((await call(`${pub.url}/db/_session`, 'POST')).status, 200);
  });
});

describe('CORS on the admin port', () => {
  let admin: Listener;
  before(async () => { admin = await listener(CORS, true); });
  after(() => admin.close());

  test('never emits CORS headers, never refuses a session request for its Origin', async () => {
    for (const [path, method, headers] of [
      ['/db/doc1', 'GET', { Origin: APP }], ['/db/missing', 'GET', { Origin: APP }], ['/db/doc1', 'OPTIONS', preflight(APP)],
      ['/db/_session', 'OPTIONS', preflight(APP, 'POST')], ['/db/_session', 'POST', { Origin: EVIL }], ['/_nope', 'GET', { Origin: APP }],
    ] as const) {
      const r = await call(`${admin.url}${path}`, method, headers);
      assert.deepEqual(r.cors, {}, `${method} ${path}`);
      assert.notEqual(r.status, 400, `${method} ${path}`);
    }
  });
});

describe('CORS config reaches GatewayConfig', () => {
  test('parsed from the config file keys', () => {
    const c = parseConfigText(JSON.stringify({ CORS: { Origin: [APP], LoginOrigin: [LOGIN], Headers: ['Content-Type'], MaxAge: 60 } }), 't.json');
    assert.deepEqual(c.cors, { origin: [APP], loginOrigin: [LOGIN], headers: ['Content-Type'], maxAge: 60 });
  });
});

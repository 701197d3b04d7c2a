/**
 * Isolation (issue 8, item 6):
 *  - each database's sync function runs in its own context: one database's function cannot see or
 *    change another's globals, built-ins or prototypes, nor the host's;
 *  - a user cannot read a document, an old or conflicting revision of it, or an attachment outside
 *    their channels through any public endpoint: a table over every read route (and the write routes
 *    that echo data), each answer checked for the secret body and attachment bytes.
 *
 * (The admin API on the public port is covered by admin-exposure.test.ts.) `_local` documents are
 * not channel-scoped, as in Sync Gateway and CouchDB: they hold replication checkpoints, are never
 * replicated, and any user of the database can read one whose id they know; the table checks only
 * that `_local/` paths cannot reach ordinary documents.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest, sendRaw } from '../helpers/raw-http.ts';

describe('each database\'s sync function runs in its own context', () => {
  let gw: TestGateway;
  // Each function tries to leave state for the other: globals, built-in prototypes, JSON, helpers.
  const SYNC_ONE = `function(doc) {
    globalThis.shared = (globalThis.shared || 0) + 1;
    leaked = 'from-one';
    Object.prototype.polluted = 'one';
    Array.prototype.includes = function () { return true; };
    JSON.stringify = function () { return '{"outcome":{"ok":true},"channels":["hijacked"],"access":{"mallory":["*"]},"roles":{}}'; };
    try { channel = function () {}; } catch (e) {}
    if (typeof process !== 'undefined' || typeof require !== 'undefined') throw({forbidden: 'host leaked'});
    channel('one-' + shared);
  }`;
  const SYNC_TWO = `function(doc) {
    if (typeof shared !== 'undefined') channel('saw-shared');
    if (typeof leaked !== 'undefined') channel('saw-leaked');
    if (({}).polluted !== undefined) channel('saw-polluted');
    if ([].includes(1)) channel('saw-array-patch');
    if (typeof globalThis.one !== 'undefined') channel('saw-global');
    if (typeof process !== 'undefined' || typeof require !== 'undefined') channel('saw-host');
    globalThis.two = true;
    channel(doc.channels);
  }`;

  before(async () => {
    gw = await startGateway({
      databases: {
        one: { server: 'memory:', sync: SYNC_ONE },
        two: { server: 'memory:', sync: SYNC_TWO },
      },
    });
  });
  after(() => gw.stop());

  const channelsOf = async (db: string, id: string) =>
    (await req(`${gw.adminUrl}/${db}/_all_docs?channels=true&keys=${encodeURIComponent(JSON.stringify([id]))}`)).body.rows[0].value.channels as string[];

  test('globals, prototypes and built-ins changed by one database\'s function are invisible to the other', async () => {
    for (let i = 0; i < 3; i++) {
      // Interleave the two databases' writes.
      assert.equal((await req(`${gw.adminUrl}/one/d${i}`, { method: 'PUT', json: { i } })).status, 201);
      assert.equal((await req(`${gw.adminUrl}/two/d${i}`, { method: 'PUT', json: { i, channels: ['c'] } })).status, 201);
    }
    // Database two's function saw none of one's state.
    for (let i = 0; i < 3; i++) assert.deepEqual(await channelsOf('two', `d${i}`), ['c']);
    // Database one's function keeps its own state between its own calls (its counter grew), and its
    // patched JSON.stringify did not fool the host: results still come from its real helpers. (Its
    // "channels" are what channel() collected, not the forged string, and mallory got no grant.)
    assert.deepEqual(await channelsOf('one', 'd0'), ['one-1']);
    assert.deepEqual(await channelsOf('one', 'd2'), ['one-3']);
    assert.equal((await req(`${gw.adminUrl}/one/_user/mallory`)).status, 404);
    // Nor did anything reach the host realm running the gateway.
    assert.equal((({}) as Record<string, unknown>).polluted, undefined);
    assert.equal([].includes(1 as never), false);
    assert.equal(typeof (globalThis as Record<string, unknown>).shared, 'undefined');
    assert.equal(typeof (globalThis as Record<string, unknown>).leaked, 'undefined');
  });
});

// ---------------------------------------------------------------------------------------------

const SECRET_BODY = 'SECRET-BODY-7d1f';
const SECRET_OLD = 'SECRET-OLD-REV-39ac';
const SECRET_CONFLICT = 'SECRET-CONFLICT-b2e0';
const SECRET_ATT = Buffer.from('SECRET-ATTACHMENT-5c9e '.repeat(20)); // > 200 bytes: a multipart "follows" part
const SECRET_ATT_SMALL = Buffer.from('SECRET-SMALL-ATT-61aa'); // ≤ 200 bytes: inlined as base64

/** Every form the secrets could take in a response. */
const SECRETS = [
  SECRET_BODY, SECRET_OLD, SECRET_CONFLICT, SECRET_ATT.toString(), SECRET_ATT.toString('base64'),
  SECRET_ATT_SMALL.toString(), SECRET_ATT_SMALL.toString('base64'),
];

describe('a user cannot read documents or attachments outside their channels, through any route', () => {
  let gw: TestGateway;
  let pub: string;
  let port: number;
  const revs: Record<string, string> = {};
  const alice = { Authorization: `Basic ${Buffer.from('alice:pw-alice').toString('base64')}` };

  before(async () => {
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:',
          users: { alice: { password: 'pw-alice', admin_channels: ['a'] } }, // GUEST disabled
        },
      },
    });
    pub = `${gw.publicUrl}/db`;
    port = Number(new URL(gw.publicUrl).port);
    const admin = `${gw.adminUrl}/db`;
    const put = async (id: string, body: unknown, query = '') => {
      const r = await req(`${admin}/${id}${query}`, { method: 'PUT', json: body });
      assert.ok(r.status < 300, r.text);
      return r.body.rev as string;
    };
    // secret: channel b, with a large and a small attachment.
    revs.secret = await put('secret', {
      channels: ['b'], text: SECRET_BODY,
      _attachments: {
        'big.txt': { content_type: 'text/plain', data: SECRET_ATT.toString('base64') },
        'small.txt': { content_type: 'text/plain', data: SECRET_ATT_SMALL.toString('base64') },
      },
    });
    // moved: rev 1 was alice's (channel a), rev 2 moved it to b with a secret.
    revs.moved1 = await put('moved', { channels: ['a'], text: 'public once' });
    revs.moved2 = await put('moved', { _rev: revs.moved1, channels: ['b'], text: SECRET_OLD });
    // conflicted: the winner is alice's; a losing leaf (channel b) holds a secret and an attachment.
    revs.conflictA = await put('conflicted', { _rev: '2-aaaa', _revisions: { start: 2, ids: ['aaaa', 'root'] }, channels: ['b'], text: SECRET_CONFLICT,
      _attachments: { 'c.txt': { content_type: 'text/plain', data: SECRET_ATT.toString('base64') } } }, '?new_edits=false');
    revs.conflictB = await put('conflicted', { _rev: '2-ffff', _revisions: { start: 2, ids: ['ffff', 'root'] }, channels: ['a'], text: 'winner' }, '?new_edits=false');
    // visible: alice's own, so feeds and listings have something to return.
    revs.visible = await put('visible', { channels: ['a'], text: 'hello alice' });
    revs.visibleAtt = await put('visible', { _rev: revs.visible, channels: ['a'], text: 'hello alice',
      _attachments: { 'ok.txt': { content_type: 'text/plain', data: Buffer.from('fine').toString('base64') } } });
  });
  after(() => gw.stop());

  /** One row of the table: a request and what the status may be. */
  interface Row { name: string; run: () => Promise<{ status: number; text: string }>; status?: number[] }

  const get = (path: string, headers: Record<string, string> = {}) => async () => {
    const r = await fetch(`${pub}${path}`, { headers: { ...alice, ...headers } });
    return { status: r.status, text: Buffer.from(await r.arrayBuffer()).toString('latin1') };
  };
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) => async () => {
    const r = await fetch(`${pub}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { ...alice, 'Content-Type': 'application/json', ...headers } });
    return { status: r.status, text: Buffer.from(await r.arrayBuffer()).toString('latin1') };
  };
  const write = (method: string, path: string, body?: string, headers: Record<string, string> = {}) => async () => {
    const r = await fetch(`${pub}${path}`, { method, body, headers: { ...alice, ...headers } });
    return { status: r.status, text: await r.text() };
  };
  const raw = (method: string, path: string) => async () => {
    const r = await sendRaw(port, rawRequest(method, path, alice));
    return { status: r?.status ?? 0, text: r?.body.toString('latin1') ?? '' };
  };
  const ws = (options: unknown) => async () => {
    const url = `${pub.replace('http', 'ws')}/_changes?feed=websocket`;
    const sock = new WebSocket(url, { headers: alice });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      sock.on('open', () => sock.send(JSON.stringify(options)));
      sock.on('message', (m) => messages.push(m.toString()));
      sock.on('error', reject);
      sock.on('close', () => resolve());
      setTimeout(() => sock.close(), 700);
    });
    return { status: 200, text: messages.join('\n') };
  };

  const J = { Accept: 'application/json' };
  const MP = { Accept: 'multipart/related, multipart/mixed, application/json' };
  const q = (v: unknown) => encodeURIComponent(JSON.stringify(v));
  const rows = (): Row[] => [
    // Single-document reads
    { name: 'GET doc', run: get('/secret'), status: [403] },
    { name: 'GET doc ?rev=current', run: get(`/secret?rev=${revs.secret}`) },
    { name: 'GET doc ?rev=&attachments=true', run: get(`/secret?rev=${revs.secret}&attachments=true`) },
    { name: 'GET doc ?rev=&attachments=true multipart', run: get(`/secret?rev=${revs.secret}&attachments=true`, MP) },
    { name: 'GET doc ?revs=true', run: get('/secret?revs=true'), status: [403] },
    { name: 'GET doc ?attachments=true', run: get('/secret?attachments=true'), status: [403] },
    { name: 'GET doc ?open_revs=all (JSON)', run: get('/secret?open_revs=all&revs=true&attachments=true', J) },
    { name: 'GET doc ?open_revs=all (multipart)', run: get('/secret?open_revs=all&attachments=true', MP) },
    { name: 'GET doc ?open_revs=[rev]', run: get(`/secret?open_revs=${q([revs.secret])}&attachments=true`, J) },
    { name: 'GET moved (now in b)', run: get('/moved'), status: [403] },
    { name: 'GET moved ?rev=new', run: get(`/moved?rev=${revs.moved2}&attachments=true`) },
    { name: 'GET moved ?rev=old', run: get(`/moved?rev=${revs.moved1}`) },
    { name: 'GET moved ?open_revs=all', run: get('/moved?open_revs=all', J) },
    { name: 'GET conflicted (winner is alice\'s)', run: get('/conflicted?revs=true&attachments=true'), status: [200] },
    { name: 'GET conflicted ?rev=losing', run: get(`/conflicted?rev=${revs.conflictA}&attachments=true`) },
    { name: 'GET conflicted ?open_revs=all (JSON)', run: get('/conflicted?open_revs=all&attachments=true&revs=true', J) },
    { name: 'GET conflicted ?open_revs=all (multipart)', run: get('/conflicted?open_revs=all&attachments=true', MP) },
    // Attachments
    { name: 'GET attachment', run: get('/secret/big.txt'), status: [403] },
    { name: 'GET small attachment', run: get('/secret/small.txt'), status: [403] },
    { name: 'GET attachment ?rev=', run: get(`/secret/big.txt?rev=${revs.secret}`), status: [403] },
    { name: 'GET attachment with Range', run: get('/secret/big.txt', { Range: 'bytes=0-10' }), status: [403] },
    { name: 'GET losing-leaf attachment ?rev=', run: get(`/conflicted/c.txt?rev=${revs.conflictA}`), status: [403] },
    { name: 'GET attachment of the winner by the loser\'s name', run: get('/conflicted/c.txt'), status: [404] },
    // Listings
    { name: '_all_docs', run: get('/_all_docs?include_docs=true&channels=true') },
    { name: '_all_docs ?keys=', run: get(`/_all_docs?include_docs=true&keys=${q(['secret', 'moved', 'conflicted'])}`) },
    { name: '_all_docs ?startkey=secret', run: get('/_all_docs?include_docs=true&startkey=%22secret%22') },
    { name: 'POST _all_docs keys', run: post('/_all_docs?include_docs=true', { keys: ['secret', 'moved', 'conflicted'] }) },
    // Bulk reads
    { name: '_bulk_get (JSON)', run: post('/_bulk_get?revs=true&attachments=true', { docs: [{ id: 'secret' }, { id: 'secret', rev: revs.secret }, { id: 'moved', rev: revs.moved2 }, { id: 'conflicted', rev: revs.conflictA }] }, J) },
    { name: '_bulk_get (multipart)', run: post('/_bulk_get?revs=true&attachments=true', { docs: [{ id: 'secret' }, { id: 'secret', rev: revs.secret }, { id: 'conflicted', rev: revs.conflictA, atts_since: [] }] }, MP) },
    { name: '_revs_diff', run: post('/_revs_diff', { secret: [revs.secret, '9-zzz'], conflicted: [revs.conflictA] }) },
    // Feeds
    { name: '_changes', run: get('/_changes?include_docs=true&style=all_docs') },
    { name: '_changes _doc_ids', run: get(`/_changes?include_docs=true&filter=_doc_ids&doc_ids=${q(['secret', 'moved', 'conflicted'])}`) },
    { name: '_changes bychannel b', run: get('/_changes?include_docs=true&filter=sync_gateway/bychannel&channels=b') },
    { name: 'POST _changes _doc_ids', run: post('/_changes', { include_docs: true, filter: '_doc_ids', doc_ids: ['secret', 'moved'] }) },
    { name: '_changes longpoll', run: get('/_changes?feed=longpoll&include_docs=true&since=0&timeout=300') },
    { name: '_changes continuous', run: get('/_changes?feed=continuous&include_docs=true&since=0&timeout=300') },
    { name: '_changes websocket', run: ws({ since: 0, include_docs: true, style: 'all_docs' }) },
    { name: '_changes websocket bychannel b', run: ws({ since: 0, include_docs: true, filter: 'sync_gateway/bychannel', channels: 'b' }) },
    // Paths that might reach a document another way
    { name: '_local/secret', run: get('/_local/secret'), status: [404] },
    // 400: read as local doc "..", attachment "secret" (CouchDB: `_local documents do not accept attachments.`).
    { name: '_local/../secret', run: raw('GET', '/db/_local/../secret'), status: [400, 404] },
    { name: '%73ecret (encoded id)', run: get('/%73ecret'), status: [403] },
    { name: 'visible/../secret', run: raw('GET', '/db/visible/../secret'), status: [404] },
    { name: 'visible/ok.txt/../../secret', run: raw('GET', '/db/visible/ok.txt/../../secret'), status: [404] },
    // Writes that would echo or copy data: attachment edits on a hidden revision
    { name: 'PUT attachment on hidden doc', run: write('PUT', `/secret/new.txt?rev=${revs.secret}`, 'x', { 'Content-Type': 'text/plain' }), status: [403] },
    { name: 'DELETE attachment on hidden doc', run: write('DELETE', `/secret/big.txt?rev=${revs.secret}`), status: [403] },
    { name: 'PUT attachment on the hidden losing leaf', run: write('PUT', `/conflicted/new.txt?rev=${revs.conflictA}`, 'x', { 'Content-Type': 'text/plain' }), status: [403] },
  ];

  test('the table: no route shows alice a secret body or attachment', async () => {
    const problems: string[] = [];
    for (const row of rows()) {
      const res = await row.run();
      const leaked = SECRETS.filter((s) => res.text.includes(s));
      if (leaked.length) problems.push(`${row.name}: leaked ${leaked.map((s) => s.slice(0, 24)).join(', ')}`);
      if (res.status >= 500) problems.push(`${row.name}: ${res.status}`);
      if (row.status && !row.status.includes(res.status)) problems.push(`${row.name}: status ${res.status}, expected ${row.status.join('/')}: ${res.text.slice(0, 150)}`);
    }
    assert.deepEqual(problems, []);
  });

  test('the table is not vacuous: the admin reads every secret through the same routes', async () => {
    const admin = `${gw.adminUrl}/db`;
    assert.match((await req(`${admin}/secret`)).text, new RegExp(SECRET_BODY));
    assert.equal((await req(`${admin}/secret/big.txt`)).text, SECRET_ATT.toString());
    assert.match((await req(`${admin}/conflicted?rev=${revs.conflictA}`)).text, new RegExp(SECRET_CONFLICT));
    assert.match((await req(`${admin}/_changes?include_docs=true`)).text, new RegExp(SECRET_BODY));
    // And alice does see her own documents through them.
    assert.match((await get('/_changes?include_docs=true')()).text, /hello alice/);
    assert.equal((await get('/visible/ok.txt')()).text, 'fine');
    assert.match((await get('/_all_docs?include_docs=true')()).text, /hello alice/);
    assert.match((await ws({ since: 0, include_docs: true })()).text, /hello alice/);
  });

  test('without credentials (GUEST disabled) every route answers 401 and shows nothing', async () => {
    for (const path of ['/secret', '/secret/big.txt', '/_all_docs?include_docs=true', '/_changes?include_docs=true', '/visible']) {
      const r = await fetch(`${pub}${path}`);
      const text = await r.text();
      assert.equal(r.status, 401, path);
      assert.ok(!SECRETS.some((s) => text.includes(s)), path);
    }
    const bulk = await fetch(`${pub}/_bulk_get`, { method: 'POST', body: JSON.stringify({ docs: [{ id: 'secret' }] }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(bulk.status, 401);
  });
});

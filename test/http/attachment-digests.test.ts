/**
 * Issue 20: every attachment has two digests. REST (the CouchDB replication protocol) shows the
 * `md5-` one PouchDB computes itself, so it recognizes an attachment it already holds; Couchbase
 * Lite over BLIP sees `sha1-` as with Sync Gateway (test/e2e/blip*.test.ts). Stubs that come back may
 * name either; revision ids do not depend on which. Also: inline attachments in `_changes` and
 * `_all_docs` with include_docs, and CouchDB's status codes for stale revisions and local docs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { writeSchema4File } from '../fixtures/sqlite-schema4.ts';

const sha1 = (b: Buffer) => 'sha1-' + createHash('sha1').update(b).digest('base64');
const md5 = (b: Buffer) => 'md5-' + createHash('md5').update(b).digest('base64');
const b64 = (b: Buffer) => b.toString('base64');
const J = { accept: 'application/json' };

/** Every `_attachments` entry in a JSON text, wherever it sits. */
function entriesIn(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '_attachments' && x && typeof x === 'object') out.push(...Object.values(x as Record<string, Record<string, unknown>>));
        else walk(x);
      }
    }
  };
  walk(JSON.parse(text));
  return out;
}

describe('attachment digests over REST', () => {
  let gw: TestGateway;
  let db: string;
  const one = Buffer.from('the first attachment, over two hundred bytes so that multipart sends it as a part of its own: ' + 'x'.repeat(150));
  const two = Buffer.from([0, 1, 2, 0xff, 0xfe]);
  let rev1: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.publicUrl}/db`;
    const r = await req(`${db}/d`, { method: 'PUT', json: { v: 1, _attachments: { 'one.bin': { content_type: 'application/octet-stream', data: b64(one) }, 'two.bin': { data: b64(two) } } } });
    assert.equal(r.status, 201);
    rev1 = r.body.rev;
  });
  after(() => gw.stop());

  test('GET, open_revs, _bulk_get, _all_docs and _changes with include_docs all show md5 digests, and no internal field', async () => {
    const want = { 'one.bin': md5(one), 'two.bin': md5(two) };
    const digests = (atts: Record<string, { digest: string }>) => Object.fromEntries(Object.entries(atts).map(([n, a]) => [n, a.digest]));
    const answers: [string, string][] = [
      ['GET', (await req(`${db}/d`)).text],
      ['GET attachments=true', (await req(`${db}/d?attachments=true`, { headers: J })).text],
      ['open_revs', (await req(`${db}/d?open_revs=all`, { headers: J })).text],
      ['_bulk_get', (await req(`${db}/_bulk_get?revs=true`, { method: 'POST', json: { docs: [{ id: 'd', rev: rev1 }] }, headers: J })).text],
      ['_all_docs', (await req(`${db}/_all_docs?include_docs=true`)).text],
      ['_changes', (await req(`${db}/_changes?include_docs=true`)).text],
      ['_changes attachments=true', (await req(`${db}/_changes?include_docs=true&attachments=true`)).text],
      ['_all_docs attachments=true', (await req(`${db}/_all_docs?include_docs=true&attachments=true`)).text],
    ];
    for (const [what, text] of answers) {
      const entries = entriesIn(text);
      assert.equal(entries.length, 2, `${what}: ${text}`);
      for (const e of entries) {
        assert.match(String(e.digest), /^md5-/, `${what}: ${JSON.stringify(e)}`);
        assert.equal(e.md5, undefined, `${what}: no internal md5 field`);
      }
    }
    assert.deepEqual(digests((await req(`${db}/d`)).body._attachments), want);
    // Multipart forms (Sync Gateway's, for clients that accept them) say md5 too.
    for (const url of [`${db}/d?attachments=true`, `${db}/d?open_revs=all&attachments=true`]) {
      const raw = Buffer.from(await (await fetch(url, { headers: { accept: 'multipart/related, multipart/mixed' } })).arrayBuffer()).toString('latin1');
      assert.ok(raw.includes(`"digest":"${md5(one)}"`) && raw.includes(`"digest":"${md5(two)}"`), raw.slice(0, 400));
      assert.ok(!raw.includes('sha1-'), 'no sha1 digest in a REST answer');
    }
    const mp = await fetch(`${db}/_bulk_get?attachments=true`, { method: 'POST', body: JSON.stringify({ docs: [{ id: 'd' }] }), headers: { 'content-type': 'application/json' } });
    const raw = Buffer.from(await mp.arrayBuffer()).toString('latin1');
    assert.ok(raw.includes(`"digest":"${md5(one)}"`), raw.slice(0, 400));
    // The bytes' Etag stays Sync Gateway's digest.
    assert.equal((await fetch(`${db}/d/two.bin`)).headers.get('etag'), `"${sha1(two)}"`);
  });

  test('stubs may name either digest; the revision id is the same whichever they name', async () => {
    const a = await req(`${db}/s-md5`, { method: 'PUT', json: { _attachments: { 'f.bin': { data: b64(two) } } } });
    const b = await req(`${db}/s-sha1`, { method: 'PUT', json: { _attachments: { 'f.bin': { data: b64(two) } } } });
    assert.equal(a.body.rev, b.body.rev);
    const viaMd5 = await req(`${db}/s-md5?rev=${a.body.rev}`, { method: 'PUT', json: { v: 2, _attachments: { 'f.bin': { stub: true, digest: md5(two), revpos: 1 } } } });
    const viaSha1 = await req(`${db}/s-sha1?rev=${b.body.rev}`, { method: 'PUT', json: { v: 2, _attachments: { 'f.bin': { stub: true, digest: sha1(two), revpos: 1 } } } });
    assert.equal(viaMd5.status, 201, viaMd5.text);
    assert.equal(viaSha1.status, 201, viaSha1.text);
    assert.equal(viaMd5.body.rev, viaSha1.body.rev, 'rev ids do not depend on the digest kind a stub names');
    for (const id of ['s-md5', 's-sha1']) {
      const g = await req(`${db}/${id}`);
      assert.deepEqual(g.body._attachments['f.bin'], { digest: md5(two), length: two.length, revpos: 1, stub: true });
      assert.ok(Buffer.from(await (await fetch(`${db}/${id}/f.bin`)).arrayBuffer()).equals(two));
    }
    // A replicated revision whose stub names an attachment of another document, by md5 (the server
    // fills in its length). A new edit may not (412: its parent must have the attachment).
    const newEdit = await req(`${db}/s-other`, { method: 'PUT', json: { _attachments: { 'g.bin': { stub: true, digest: md5(one), revpos: 1 } } } });
    assert.equal(newEdit.status, 412, newEdit.text);
    const other = await req(`${db}/s-other?new_edits=false`, { method: 'PUT', json: { _rev: '1-aa', _attachments: { 'g.bin': { stub: true, digest: md5(one), revpos: 1 } } } });
    assert.equal(other.status, 201, other.text);
    assert.equal((await req(`${db}/s-other`)).body._attachments['g.bin'].length, one.length);
    assert.ok(Buffer.from(await (await fetch(`${db}/s-other/g.bin`)).arrayBuffer()).equals(one));
    // A replicated revision (new_edits=false) with an md5 stub, as a CouchDB replicator sends it.
    const rep = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [
      { _id: 's-rep', _rev: '2-bb', _revisions: { start: 2, ids: ['bb', 'aa'] }, _attachments: { 'h.bin': { stub: true, digest: md5(two), revpos: 1, length: 5 } } },
    ] } });
    assert.equal(rep.status, 201, rep.text);
    assert.ok(Buffer.from(await (await fetch(`${db}/s-rep/h.bin`)).arrayBuffer()).equals(two));
    // Unknown digests of either kind are refused with CouchDB's 412 missing_stub, new edit or
    // replicated, and nothing is written.
    for (const digest of ['md5-AAAAAAAAAAAAAAAAAAAAAA==', 'sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=']) {
      const bad = await req(`${db}/s-bad`, { method: 'PUT', json: { _attachments: { x: { stub: true, digest, revpos: 1 } } } });
      assert.equal(bad.status, 412, bad.text);
      const rep = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [{ _id: 's-bad', _rev: '1-cc', _attachments: { x: { stub: true, digest, revpos: 1 } } }] } });
      assert.deepEqual(rep.body[0], { id: 's-bad', error: 'missing_stub', reason: rep.body[0].reason, status: 412 }, rep.text);
    }
    assert.equal((await req(`${db}/s-bad`)).status, 404);
  });

  test('include_docs with attachments=true inlines base64 data with content_type, md5 digest and revpos, no length (CouchDB)', async () => {
    const expect = (atts: Record<string, any>) => {
      assert.deepEqual(atts['one.bin'], { content_type: 'application/octet-stream', digest: md5(one), revpos: 1, data: b64(one) });
      assert.deepEqual(atts['two.bin'], { digest: md5(two), revpos: 1, data: b64(two) });
    };
    const changes = await req(`${db}/_changes?include_docs=true&attachments=true`);
    expect(changes.body.results.find((r: any) => r.id === 'd').doc._attachments);
    const post = await req(`${db}/_changes`, { method: 'POST', json: { include_docs: true, attachments: true, filter: '_doc_ids', doc_ids: ['d'] } });
    expect(post.body.results[0].doc._attachments);
    const all = await req(`${db}/_all_docs?include_docs=true&attachments=true`);
    expect(all.body.rows.find((r: any) => r.id === 'd').doc._attachments);
    const keys = await req(`${db}/_all_docs?include_docs=true&attachments=true`, { method: 'POST', json: { keys: ['d'] } });
    expect(keys.body.rows[0].doc._attachments);
    // The same shape from a document GET, open_revs and _bulk_get as JSON.
    const json = { headers: { accept: 'application/json' } };
    const doc = await req(`${db}/d?attachments=true`, json);
    expect(doc.body._attachments);
    const open = await req(`${db}/d?open_revs=all&attachments=true`, json);
    expect(open.body[0].ok._attachments);
    const bulk = await req(`${db}/_bulk_get?attachments=true`, { method: 'POST', json: { docs: [{ id: 'd' }] }, ...json });
    expect(bulk.body.results[0].docs[0].ok._attachments);
    // Without attachments=true they stay stubs.
    assert.equal((await req(`${db}/_changes?include_docs=true`)).body.results.find((r: any) => r.id === 'd').doc._attachments['one.bin'].stub, true);
    assert.equal((await req(`${db}/_all_docs?include_docs=true`)).body.rows.find((r: any) => r.id === 'd').doc._attachments['one.bin'].stub, true);
  });

  test('an attachment PUT or DELETE against a stale revision is 409, not 404', async () => {
    const r1 = await req(`${db}/stale`, { method: 'PUT', json: { v: 1 } });
    const put = await fetch(`${db}/stale/a.txt?rev=${r1.body.rev}`, { method: 'PUT', body: 'a', headers: { 'content-type': 'text/plain' } });
    assert.equal(put.status, 201);
    const r2 = (await put.json()).rev;
    const count = async () => (await req(`${gw.adminUrl}/db/_changes`)).body.last_seq;
    const before = await count();
    const again = await fetch(`${db}/stale/b.txt?rev=${r1.body.rev}`, { method: 'PUT', body: 'b', headers: { 'content-type': 'text/plain' } });
    assert.equal(again.status, 409);
    assert.equal((await again.json()).error, 'conflict');
    assert.equal((await fetch(`${db}/stale/a.txt?rev=${r1.body.rev}`, { method: 'DELETE' })).status, 409);
    assert.equal((await fetch(`${db}/stale/a.txt?rev=3-doesnotexist`, { method: 'DELETE' })).status, 409);
    assert.equal((await fetch(`${db}/stale/c.txt`, { method: 'PUT', body: 'c', headers: { 'if-match': `"${r1.body.rev}"` } })).status, 409);
    assert.equal(await count(), before, 'nothing written');
    // The current revision still works.
    assert.equal((await fetch(`${db}/stale/a.txt?rev=${r2}`, { method: 'DELETE' })).status, 200);
  });

  test('local documents take no attachments: 400 on their attachment URLs, _attachments dropped from a PUT', async () => {
    const put = await req(`${db}/_local/withatts`, { method: 'PUT', json: { v: 1, _attachments: { 'foo.txt': { content_type: 'text/plain', data: b64(Buffer.from('hi')) } } } });
    assert.equal(put.status, 201);
    const got = await req(`${db}/_local/withatts`);
    assert.equal(got.body.v, 1);
    assert.equal(got.body._attachments, undefined);
    for (const [method, url] of [['GET', `${db}/_local/withatts/foo.txt`], ['GET', `${db}/_local/nodoc/x.txt`], ['PUT', `${db}/_local/withatts/foo.txt?rev=0-1`], ['DELETE', `${db}/_local/withatts/foo.txt?rev=0-1`]]) {
      const r = await req(url, { method, body: method === 'PUT' ? 'x' : undefined });
      assert.equal(r.status, 400, `${method} ${url}`);
      assert.deepEqual(r.body, { error: 'Bad Request', reason: '_local documents do not accept attachments.' });
    }
    // A local id with a slash in it comes percent-encoded, and is still a local doc.
    assert.equal((await req(`${db}/_local/a%2Fb`, { method: 'PUT', json: { v: 2 } })).status, 201);
    assert.equal((await req(`${db}/_local/a%2Fb`)).body.v, 2);
  });
});

describe('attachments of a database written before md5 digests (SQLite schema 4)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-att-migrate-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('are migrated on open and answer with md5 digests; stubs naming their md5 work', async () => {
    const path = join(dir, 'old', 'db.sqlite3');
    const { a, b } = writeSchema4File(path);
    const gw = await startGateway({ databases: { db: { server: `sqlite:${path}` } } });
    try {
      const url = `${gw.publicUrl}/db`;
      const doc = await req(`${url}/old`);
      assert.equal(doc.status, 200, doc.text);
      assert.equal(doc.body._attachments['a.bin'].digest, md5(a));
      assert.equal(doc.body._attachments['b.bin'].digest, md5(b));
      assert.equal(doc.body._attachments['lost.bin'].digest, 'sha1-lost', 'bytes the old file had lost keep their sha1 digest');
      assert.ok(Buffer.from(await (await fetch(`${url}/old/b.bin`)).arrayBuffer()).equals(b));
      const upd = await req(`${url}/old?rev=2-b`, { method: 'PUT', json: { v: 3, _attachments: { 'a.bin': { stub: true, digest: md5(a), revpos: 1 } } } });
      assert.equal(upd.status, 201, upd.text);
      assert.equal((await req(`${url}/old`)).body._attachments['a.bin'].digest, md5(a));
    } finally {
      await gw.stop();
    }
  });
});

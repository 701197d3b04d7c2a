import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const digest = (b: Buffer) => 'sha1-' + createHash('sha1').update(b).digest('base64');
const md5 = (b: Buffer) => 'md5-' + createHash('md5').update(b).digest('base64');

describe('attachments', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('inline base64: digest, revpos, length, stubs on read, data with attachments=true', async () => {
    const data = Buffer.from('hello attachment');
    const r = await req(`${db}/a1`, { method: 'PUT', json: { _attachments: { 'hi.txt': { content_type: 'text/plain', data: data.toString('base64') } } } });
    assert.equal(r.status, 201);
    const g = await req(`${db}/a1`);
    // REST clients get CouchDB's md5 digest (the Etag of the bytes stays Sync Gateway's sha1 one).
    assert.deepEqual(g.body._attachments['hi.txt'], { content_type: 'text/plain', digest: md5(data), length: data.length, revpos: 1, stub: true });
    const withData = await req(`${db}/a1?attachments=true`, { headers: { accept: 'application/json' } });
    assert.equal(withData.body._attachments['hi.txt'].data, data.toString('base64'));
    // An update that keeps the stub keeps the attachment and its revpos.
    const u = await req(`${db}/a1?rev=${r.body.rev}`, { method: 'PUT', json: { v: 2, _attachments: { 'hi.txt': { stub: true, revpos: 1 } } } });
    assert.equal(u.status, 201);
    const g2 = await req(`${db}/a1`);
    assert.equal(g2.body._attachments['hi.txt'].revpos, 1);
    // atts_since: the client already has rev 1, so the attachment is not resent.
    const since = await req(`${db}/a1?attachments=true&atts_since=["${r.body.rev}"]`, { headers: { accept: 'application/json' } });
    assert.equal(since.body._attachments['hi.txt'].stub, true);
    // Leaving an attachment out of a new revision drops it.
    const drop = await req(`${db}/a1?rev=${u.body.rev}`, { method: 'PUT', json: { v: 3 } });
    assert.equal((await req(`${db}/a1`)).body._attachments, undefined);
    assert.equal((await req(`${db}/a1/hi.txt`)).status, 404);
    assert.ok(drop.body.rev.startsWith('3-'));
    // A stub with nothing in a parent to name: CouchDB's 412 missing_stub.
    const badStub = await req(`${db}/a2`, { method: 'PUT', json: { _attachments: { x: { stub: true } } } });
    assert.equal(badStub.status, 412);
    const noData = await req(`${db}/a2`, { method: 'PUT', json: { _attachments: { x: { content_type: 'text/plain' } } } });
    assert.equal(noData.status, 400);
    assert.equal((await req(`${db}/a2`)).status, 404);
  });

  test('attachment PUT/GET with Range, and DELETE', async () => {
    const bytes = randomBytes(1000);
    const p = await fetch(`${db}/bin/file.bin`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(p.status, 201);
    const rev = (await p.json()).rev;
    const g = await fetch(`${db}/bin/file.bin`);
    assert.equal(g.headers.get('etag'), `"${digest(bytes)}"`);
    assert.equal(g.headers.get('accept-ranges'), 'bytes');
    assert.ok(Buffer.from(await g.arrayBuffer()).equals(bytes));
    const part = await fetch(`${db}/bin/file.bin`, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 10-19/1000');
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 20)));
    const suffix = await fetch(`${db}/bin/file.bin`, { headers: { range: 'bytes=-5' } });
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(bytes.subarray(995)));
    const bad = await fetch(`${db}/bin/file.bin`, { headers: { range: 'bytes=2000-3000' } });
    assert.equal(bad.status, 416);
    const noRev = await fetch(`${db}/bin/other.bin`, { method: 'PUT', body: 'x' });
    assert.equal(noRev.status, 409);
    const second = await fetch(`${db}/bin/nested/name.txt?rev=${rev}`, { method: 'PUT', body: 'nested', headers: { 'content-type': 'text/plain' } });
    assert.equal(second.status, 201);
    const rev2 = (await second.json()).rev;
    assert.equal(await (await fetch(`${db}/bin/nested/name.txt`)).text(), 'nested');
    const del = await req(`${db}/bin/file.bin?rev=${rev2}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await fetch(`${db}/bin/file.bin`)).status, 404);
    assert.equal((await fetch(`${db}/bin/nested/name.txt`)).status, 200);
  });

  test('unsafe content types are served as downloads; admin port always', async () => {
    await fetch(`${db}/html/page.html`, { method: 'PUT', body: '<script>alert(1)</script>', headers: { 'content-type': 'text/html' } });
    const pub = await fetch(`${db}/html/page.html`);
    assert.equal(pub.headers.get('content-disposition'), 'attachment');
    await fetch(`${db}/txt/a.txt`, { method: 'PUT', body: 'plain', headers: { 'content-type': 'text/plain' } });
    assert.equal((await fetch(`${db}/txt/a.txt`)).headers.get('content-disposition'), null);
    assert.equal((await fetch(`${gw.adminUrl}/db/txt/a.txt`)).headers.get('content-disposition'), 'attachment');
  });

  test('multipart/related upload with follows, and multipart GET', async () => {
    const big = randomBytes(5000);
    const boundary = 'abc123boundary';
    const json = JSON.stringify({ title: 'mp', _attachments: { 'big.bin': { follows: true, content_type: 'application/octet-stream', length: big.length } } });
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n${json}\r\n--${boundary}\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n`),
      big,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const p = await fetch(`${db}/mpdoc`, { method: 'PUT', body, headers: { 'content-type': `multipart/related; boundary="${boundary}"` } });
    assert.equal(p.status, 201, await p.clone().text());
    const g = await fetch(`${db}/mpdoc/big.bin`);
    assert.ok(Buffer.from(await g.arrayBuffer()).equals(big));
    const mp = await fetch(`${db}/mpdoc?attachments=true`);
    assert.match(mp.headers.get('content-type')!, /^multipart\/related/);
    const raw = Buffer.from(await mp.arrayBuffer());
    assert.ok(raw.includes(big), 'attachment bytes travel as their own part');
    assert.match(raw.toString('latin1'), /"follows":true/);
  });

  test('attachments are shared by digest across documents', async () => {
    const data = randomBytes(100).toString('base64');
    await req(`${db}/share1`, { method: 'PUT', json: { _attachments: { f: { data } } } });
    await req(`${db}/share2`, { method: 'PUT', json: { _attachments: { g: { data } } } });
    const d1 = (await req(`${db}/share1`)).body._attachments.f.digest;
    const d2 = (await req(`${db}/share2`)).body._attachments.g.digest;
    assert.equal(d1, d2);
    // A new edit's stub must name an attachment of its parent (CouchDB): a digest stored for another
    // document is not enough (412 missing_stub, nothing written)...
    const s = await req(`${db}/share3`, { method: 'PUT', json: { _attachments: { h: { stub: true, digest: d1, revpos: 1, length: 100 } } } });
    assert.equal(s.status, 412, s.text);
    assert.equal((await req(`${db}/share3`)).status, 404);
    // ...but a replicated revision (new_edits=false) may name it: its ancestors' bodies may be gone.
    const rep = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [
      { _id: 'share3', _rev: '2-b', _revisions: { start: 2, ids: ['b', 'a'] }, _attachments: { h: { stub: true, digest: d1, revpos: 1, length: 100 } } },
    ] } });
    assert.equal(rep.status, 201, rep.text);
    assert.equal(rep.body[0].ok, true, rep.text);
    assert.equal((await fetch(`${db}/share3/h`)).status, 200);
  });

  test('a new edit\'s stub must name an attachment of its parent revision: 412 missing_stub otherwise (CouchDB)', async () => {
    const data = Buffer.from('branch a attachment').toString('base64');
    const r1 = await req(`${db}/br`, { method: 'PUT', json: { v: 1 } });
    const a2 = await req(`${db}/br?rev=${r1.body.rev}`, { method: 'PUT', json: { v: 'a2', _attachments: { 'att.txt': { content_type: 'text/plain', data } } } });
    assert.equal(a2.status, 201);
    // A sibling branch from rev 1 (replicated in), whose parent has no attachment.
    const b2 = '2-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const side = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [{ _id: 'br', _rev: b2, _revisions: { start: 2, ids: [b2.slice(2), r1.body.rev.slice(2)] }, v: 'b2' }] } });
    assert.equal(side.body[0].ok, true, side.text);
    const att = (await req(`${db}/br?rev=${a2.body.rev}`)).body._attachments['att.txt'];
    const before = (await req(`${db}/_changes`)).body.last_seq;
    // PouchDB #8456: a stub naming the other branch's attachment on top of b2.
    const onB = await req(`${db}/br?rev=${b2}`, { method: 'PUT', json: { v: 'b3', _attachments: { 'att.txt': { stub: true, digest: att.digest, revpos: att.revpos } } } });
    assert.equal(onB.status, 412, onB.text);
    assert.equal(onB.body.error, 'Precondition Failed');
    // PouchDB 2803: a stub for a name the parent lacks, beside a kept one.
    const extra = await req(`${db}/br?rev=${a2.body.rev}`, { method: 'PUT', json: { _attachments: { 'att.txt': { stub: true }, 'bar.txt': { stub: true, digest: 'md5-sorryIDoNotReallyExist==' } } } });
    assert.equal(extra.status, 412, extra.text);
    // A stub whose digest contradicts the parent's attachment of that name.
    const wrong = await req(`${db}/br?rev=${a2.body.rev}`, { method: 'PUT', json: { _attachments: { 'att.txt': { stub: true, digest: 'md5-AAAAAAAAAAAAAAAAAAAAAA==', revpos: 2 } } } });
    assert.equal(wrong.status, 412, wrong.text);
    assert.equal((await req(`${db}/_changes`)).body.last_seq, before, 'nothing written');
    // Replication of a revision on branch b whose stub names branch a's attachment still works.
    const b3 = '3-cccccccccccccccccccccccccccccccc';
    const rep = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [{ _id: 'br', _rev: b3, _revisions: { start: 3, ids: [b3.slice(2), b2.slice(2), r1.body.rev.slice(2)] }, _attachments: { 'att.txt': { stub: true, digest: att.digest, revpos: 2 } } }] } });
    assert.equal(rep.body[0].ok, true, rep.text);
    assert.equal(Buffer.from(await (await fetch(`${db}/br/att.txt?rev=${b3}`)).arrayBuffer()).toString('base64'), data);
  });

  test('attachment names starting with _ are refused with 400 on every REST write (CouchDB)', async () => {
    const data = Buffer.from('text1').toString('base64');
    const before = (await req(`${db}/_changes`)).body.last_seq;
    const put = await req(`${db}/us1`, { method: 'PUT', json: { _attachments: { '_text1.txt': { content_type: 'text/plain', data } } } });
    assert.equal(put.status, 400, put.text);
    assert.match(put.body.reason, /_text1\.txt/);
    const post = await req(`${db}/`, { method: 'POST', json: { _id: 'us2', _attachments: { _a: { data } } } });
    assert.equal(post.status, 400, post.text);
    const replicated = await req(`${db}/us3?new_edits=false`, { method: 'PUT', json: { _rev: '1-aa', _attachments: { _a: { data } } } });
    assert.equal(replicated.status, 400, replicated.text);
    const bulk = await req(`${db}/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: 'us4', _attachments: { _a: { data } } }, { _id: 'us5', _attachments: { a: { data } } }] } });
    assert.equal(bulk.body[0].status, 400, bulk.text);
    assert.equal(bulk.body[0].error, 'bad_request');
    assert.equal(bulk.body[1].ok, true, bulk.text);
    const att = await fetch(`${db}/us6/_raw.txt`, { method: 'PUT', body: 'x', headers: { 'content-type': 'text/plain' } });
    assert.equal(att.status, 400);
    // Only us5 was written.
    const changes = (await req(`${db}/_changes?since=${before}`)).body.results.map((r: any) => r.id);
    assert.deepEqual(changes, ['us5']);
  });

  test('an attachment over the size limit is refused with 413 and nothing is stored', async () => {
    const small = await startGateway({ databases: { db: { server: 'memory:' } } });
    try {
      small.gateway.get('db')!.maxAttachmentSize = 1000;
      const r = await req(`${small.publicUrl}/db/toobig`, { method: 'PUT', json: { _attachments: { f: { data: randomBytes(2000).toString('base64') } } } });
      assert.equal(r.status, 413);
      assert.equal((await req(`${small.publicUrl}/db/toobig`)).status, 404);
    } finally {
      await small.stop();
    }
  });
});

/**
 * Sync Gateway's own revision ids, produced by Syncgate's real write path (src/db/database.ts)
 * over REST and seen by a Couchbase Lite client over BLIP. The known answers come from Sync
 * Gateway's test suite; they pin what goes into the digest: `_attachments` does not (adding an
 * attachment hashes the same body again), `_deleted: true` does (a tombstone is not `{}`).
 * test/unit/revid.test.ts covers createRevId itself; this file covers what the server feeds it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, LocalDb, sha1Digest } from '../helpers/blip-client.ts';

// couchbase/sync_gateway REST tests: PUT /db/doc1 {"foo":"bar"} → 1-cd809b…
const REV1_FOO_BAR = '1-cd809becc169215072fd567eebd8b8de';
// TestWebhookPropsWithAttachments: then add attachment "attach1" → 2-6433ff70… (the digest hashes
// {"foo":"bar"} again on top of rev 1: _attachments is not part of it)
const REV2_WITH_ATTACHMENT = '2-6433ff70e11791fcb7fdf16746f4b9e7';
// PUT {} → 1-ca9ad228… (several SG REST and import tests)
const REV1_EMPTY = '1-ca9ad22802b66f662ff171f226211d5c';
// A tombstone created with body {"_deleted": true} and no parent → 1-2cac91fa… (SG db import tests)
const REV1_TOMBSTONE = '1-2cac91faf7b3f5e5fd56ff377bdb5466';

const ATTACHMENT = Buffer.from('this is the body of attachment');
const ATTACH1 = { attach1: { content_type: 'content/type', data: ATTACHMENT.toString('base64') } };

/** md5( byte(len(parent)) ‖ parent ‖ body ), built by hand, independent of src/revid.ts. */
function childRev(parent: string, canonical: string): string {
  const p = Buffer.from(parent, 'utf8');
  const digest = createHash('md5').update(Buffer.concat([Buffer.of(p.length & 0xff), p, Buffer.from(canonical, 'utf8')])).digest('hex');
  return `${Number(parent.slice(0, parent.indexOf('-'))) + 1}-${digest}`;
}

describe('revision ids from the real write path match Sync Gateway\'s', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  async function put(path: string, json: unknown, status = 201): Promise<string> {
    const res = await req(`${db}/${path}`, { method: 'PUT', json });
    assert.equal(res.status, status, `PUT ${path}: ${res.text}`);
    return res.body.rev;
  }

  test('REST PUT {"foo": "bar"} and PUT {}', async () => {
    assert.equal(await put('doc1', { foo: 'bar' }), REV1_FOO_BAR);
    assert.equal(await put('empty', {}), REV1_EMPTY);
  });

  test('REST PUT adding an inline attachment: _attachments stays out of the digest', async () => {
    assert.equal(await put('inline', { foo: 'bar' }), REV1_FOO_BAR);
    const rev2 = await put('inline', { foo: 'bar', _id: 'inline', _rev: REV1_FOO_BAR, _attachments: ATTACH1 });
    assert.equal(rev2, REV2_WITH_ATTACHMENT);
    const got = await req(`${db}/inline`);
    assert.equal(got.body._rev, REV2_WITH_ATTACHMENT);
    // REST speaks CouchDB's md5 digest (PouchDB's own); Couchbase Lite gets the sha1 one over BLIP.
    assert.equal(got.body._attachments.attach1.digest, `md5-${createHash('md5').update(ATTACHMENT).digest('base64')}`);
  });

  test('REST PUT of a standalone attachment gives the same id as the inline one', async () => {
    assert.equal(await put('standalone', { foo: 'bar' }), REV1_FOO_BAR);
    const res = await req(`${db}/standalone/attach1?rev=${REV1_FOO_BAR}`, {
      method: 'PUT', body: ATTACHMENT, headers: { 'content-type': 'content/type' },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.rev, REV2_WITH_ATTACHMENT);
  });

  test('REST PUT and _bulk_docs of a first-generation tombstone {"_deleted": true}', async () => {
    assert.equal(await put('tomb', { _deleted: true }), REV1_TOMBSTONE);
    const bulk = await req(`${db}/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: 'tomb-bulk', _deleted: true }] } });
    assert.equal(bulk.status, 201, bulk.text);
    assert.deepEqual(bulk.body, [{ id: 'tomb-bulk', rev: REV1_TOMBSTONE, ok: true }]);
  });

  test('REST DELETE hashes {"_deleted":true} on top of the current revision', async () => {
    assert.equal(await put('gone', { foo: 'bar' }), REV1_FOO_BAR);
    const res = await req(`${db}/gone?rev=${REV1_FOO_BAR}`, { method: 'DELETE' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.rev, childRev(REV1_FOO_BAR, '{"_deleted":true}'));
    assert.notEqual(res.body.rev, childRev(REV1_FOO_BAR, '{}'));
  });

  test('REST PUT hashes the canonical body: sorted keys, HTML-escaped strings, numbers verbatim', async () => {
    const text = '{"z": {"b": "<a&b>", "a": [1.0, 1e3, 12345678901234567890, -0]}, "a": "\u2028 é 😀", "_id": "esc"}';
    const canonical = '{"a":"\\u2028 é 😀","z":{"a":[1.0,1e3,12345678901234567890,-0],"b":"\\u003ca\\u0026b\\u003e"}}';
    const res = await req(`${db}/esc`, { method: 'PUT', body: text, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 201, res.text);
    const md5 = createHash('md5').update(Buffer.concat([Buffer.of(0), Buffer.from(canonical, 'utf8')])).digest('hex');
    assert.equal(res.body.rev, `1-${md5}`);
  });

  test('a Couchbase Lite push of rev 1, a REST attachment on top, and a BLIP pull of the result', async () => {
    // The device pushes Sync Gateway's rev 1 as its own (replicated write, new_edits=false)...
    const device = new LocalDb();
    device.insert('cbl', REV1_FOO_BAR, [], false, { foo: 'bar' });
    const pusher = await BlipClient.connect(db);
    const pushed = await pusher.push(device);
    await pusher.close();
    assert.equal(pushed.errors.size, 0, JSON.stringify([...pushed.errors]));
    assert.equal(pushed.sent, 1);
    // ...a REST client adds the attachment (a new edit computed by the server)...
    assert.equal(await put('cbl', { foo: 'bar', _rev: REV1_FOO_BAR, _attachments: ATTACH1 }), REV2_WITH_ATTACHMENT);
    // ...and another device pulls exactly Sync Gateway's ids, with the attachment and the tombstone.
    const other = new LocalDb();
    const puller = await BlipClient.connect(db);
    const state = await puller.pull(other, { docIDs: ['cbl', 'tomb'] });
    await puller.close();
    assert.deepEqual(state.errors, []);
    assert.equal(other.current('cbl'), REV2_WITH_ATTACHMENT);
    assert.deepEqual(other.history('cbl', REV2_WITH_ATTACHMENT), [REV2_WITH_ATTACHMENT, REV1_FOO_BAR]);
    const body = other.get('cbl')!.body!;
    assert.equal(body.foo, 'bar');
    const stub = (body._attachments as Record<string, { digest: string }>).attach1;
    assert.equal(stub.digest, sha1Digest(ATTACHMENT));
    assert.deepEqual(other.blobs.get(stub.digest), ATTACHMENT);
    assert.equal(other.current('tomb'), REV1_TOMBSTONE);
    assert.equal(other.get('tomb')!.deleted, true);
  });
});

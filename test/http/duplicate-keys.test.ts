/**
 * Duplicate JSON keys are resolved one way in every layer (issue 8, item 4). CouchDB's
 * CVE-2017-12635 came from two parsers disagreeing about `{"roles":[],"roles":["_admin"]}`: the
 * validation function (JavaScript, last key wins) saw one value and the storage layer (Erlang,
 * first key wins) kept the other.
 *
 * In Syncgate the request body is parsed once (src/json parseJson = JSON.parse: the last key wins,
 * as in Go's encoding/json, which Sync Gateway uses); everything after that works on the parsed
 * value: the stored body is its canonical JSON (no duplicates left), the sync function gets that
 * same text, and the rev id is computed over it. The multipart reader parses the JSON part with
 * JSON.parse too. These tests check each layer sees the last value: the stored body, what the sync
 * function routed (channels, grants, doc._id), who can read the document, and the admin API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const SYNC = `function(doc, oldDoc) {
  channel(doc.channels);
  if (doc.grant) access(doc.grant.user, doc.grant.channels);
  if (doc.tagid) channel('id-' + doc._id);
}`;

describe('duplicate JSON keys: last wins, in every layer', () => {
  let gw: TestGateway;
  let pub: string;
  let admin: string;
  const basic = (name: string) => ({ Authorization: `Basic ${Buffer.from(`${name}:pw-${name}`).toString('base64')}` });
  const raw = (url: string, method: string, body: string, headers: Record<string, string> = {}) =>
    req(url, { method, body, headers: { 'Content-Type': 'application/json', ...headers } });
  /** The channels the sync function assigned, as the admin sees them. */
  const channelsOf = async (id: string) => {
    const r = await req(`${admin}/_all_docs?channels=true&keys=${encodeURIComponent(JSON.stringify([id]))}`);
    return r.body.rows[0].value.channels as string[];
  };

  before(async () => {
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:', sync: SYNC,
          users: {
            alice: { password: 'pw-alice', admin_channels: ['a'] },
            bob: { password: 'pw-bob', admin_channels: ['b'] },
            writer: { password: 'pw-writer', admin_channels: ['*'] },
          },
        },
      },
    });
    pub = `${gw.publicUrl}/db`;
    admin = `${gw.adminUrl}/db`;
  });
  after(() => gw.stop());

  test('{"channels":["a"],"channels":["b"]}: stored, routed and readable as ["b"] only', async () => {
    const put = await raw(`${pub}/dup-ch`, 'PUT', '{"channels":["a"],"channels":["b"],"v":1}', basic('writer'));
    assert.equal(put.status, 201, put.text);
    const stored = await req(`${admin}/dup-ch`);
    assert.deepEqual(stored.body.channels, ['b']);
    assert.deepEqual(await channelsOf('dup-ch'), ['b'], 'the sync function saw ["b"]');
    assert.equal((await req(`${pub}/dup-ch`, { headers: basic('alice') })).status, 403);
    assert.deepEqual((await req(`${pub}/dup-ch`, { headers: basic('bob') })).body.channels, ['b']);
    const aliceFeed = await req(`${pub}/_changes`, { headers: basic('alice') });
    assert.ok(!aliceFeed.body.results.some((r: { id: string }) => r.id === 'dup-ch'));
    const bobFeed = await req(`${pub}/_changes`, { headers: basic('bob') });
    assert.ok(bobFeed.body.results.some((r: { id: string }) => r.id === 'dup-ch'));
    // The rev id is that of the deduplicated body: writing it without the duplicate gives the same rev.
    const same = await raw(`${admin}/dup-ch-twin`, 'PUT', '{"channels":["b"],"v":1}');
    assert.equal(same.body.rev, put.body.rev);
  });

  test('a grant with duplicate keys goes to the last grantee, the one the stored body names', async () => {
    const body = '{"grant":{"user":"alice","channels":["x"]},"grant":{"user":"bob","channels":["x"]},"channels":["x"]}';
    assert.equal((await raw(`${pub}/dup-grant`, 'PUT', body, basic('writer'))).status, 201);
    assert.equal((await req(`${admin}/dup-grant`)).body.grant.user, 'bob');
    const bobUser = await req(`${admin}/_user/bob`);
    assert.ok(bobUser.body.all_channels.includes('x'), JSON.stringify(bobUser.body));
    assert.ok(!(await req(`${admin}/_user/alice`)).body.all_channels.includes('x'));
    assert.equal((await req(`${pub}/dup-grant`, { headers: basic('bob') })).status, 200);
    assert.equal((await req(`${pub}/dup-grant`, { headers: basic('alice') })).status, 403);
    // Nested duplicate: {"user":"alice","user":"bob"}.
    await raw(`${pub}/dup-grant2`, 'PUT', '{"grant":{"user":"alice","user":"bob","channels":["y"]},"channels":["y"]}', basic('writer'));
    assert.ok((await req(`${admin}/_user/bob`)).body.all_channels.includes('y'));
    assert.ok(!(await req(`${admin}/_user/alice`)).body.all_channels.includes('y'));
  });

  test('duplicate _id: POST and _bulk_docs write the last id, and the sync function sees that id', async () => {
    const post = await raw(`${pub}/`, 'POST', '{"_id":"first-id","_id":"second-id","tagid":true,"channels":["a"]}', basic('writer'));
    assert.equal(post.status, 200, post.text);
    assert.equal(post.body.id, 'second-id');
    assert.equal((await req(`${admin}/first-id`)).status, 404);
    assert.deepEqual((await channelsOf('second-id')).sort(), ['a', 'id-second-id']);
    const bulk = await raw(`${pub}/_bulk_docs`, 'POST', '{"docs":[{"_id":"bulk-first","_id":"bulk-second","tagid":true}]}', basic('writer'));
    assert.equal(bulk.body[0].id, 'bulk-second');
    assert.equal((await req(`${admin}/bulk-first`)).status, 404);
    assert.deepEqual(await channelsOf('bulk-second'), ['id-bulk-second']);
  });

  test('duplicate _rev and _deleted: the last one decides the parent and the tombstone flag', async () => {
    const put = await raw(`${pub}/dup-rev`, 'PUT', '{"channels":["a"]}', basic('writer'));
    const upd = await raw(`${pub}/dup-rev`, 'PUT', `{"_rev":"1-bogus","_rev":"${put.body.rev}","channels":["a"],"v":2}`, basic('writer'));
    assert.equal(upd.status, 201, upd.text);
    assert.match(upd.body.rev, /^2-/);
    const bad = await raw(`${pub}/dup-rev`, 'PUT', `{"_rev":"${upd.body.rev}","_rev":"1-bogus","v":3}`, basic('writer'));
    assert.equal(bad.status, 409, 'the last _rev is the one used');
    const undel = await raw(`${pub}/dup-rev`, 'PUT', `{"_rev":"${upd.body.rev}","_deleted":true,"_deleted":false,"channels":["a"]}`, basic('writer'));
    assert.equal(undel.status, 201);
    const now = await req(`${admin}/dup-rev`);
    assert.equal(now.status, 200, 'not deleted');
    assert.deepEqual(await channelsOf('dup-rev'), ['a'], 'the sync function saw a live revision');
    const del = await raw(`${pub}/dup-rev`, 'PUT', `{"_rev":"${undel.body.rev}","_deleted":false,"_deleted":true}`, basic('writer'));
    assert.equal(del.status, 201);
    assert.equal((await req(`${admin}/dup-rev`)).body.reason, 'deleted');
  });

  test('a multipart JSON part resolves duplicates the same way', async () => {
    const boundary = 'dupdupdup';
    const body = `--${boundary}\r\nContent-Type: application/json\r\n\r\n{"channels":["a"],"channels":["b"],"_attachments":{"t.txt":{"follows":true}}}\r\n`
      + `--${boundary}\r\nContent-Disposition: attachment; filename="t.txt"\r\n\r\nhello\r\n--${boundary}--\r\n`;
    const put = await req(`${pub}/dup-mp`, { method: 'PUT', body, headers: { ...basic('writer'), 'Content-Type': `multipart/related; boundary=${boundary}` } });
    assert.equal(put.status, 201, put.text);
    assert.deepEqual((await req(`${admin}/dup-mp`)).body.channels, ['b']);
    assert.deepEqual(await channelsOf('dup-mp'), ['b']);
    assert.equal((await req(`${pub}/dup-mp/t.txt`, { headers: basic('alice') })).status, 403);
    assert.equal((await req(`${pub}/dup-mp/t.txt`, { headers: basic('bob') })).text, 'hello');
    // _attachments given twice: the last (empty) one wins in the multipart reader too, so the part
    // has nothing to attach to and the request is refused rather than half-applied.
    const twice = `--${boundary}\r\nContent-Type: application/json\r\n\r\n{"_attachments":{"t.txt":{"follows":true}},"_attachments":{}}\r\n`
      + `--${boundary}\r\nContent-Disposition: attachment; filename="t.txt"\r\n\r\nhello\r\n--${boundary}--\r\n`;
    const r = await req(`${pub}/dup-mp2`, { method: 'PUT', body: twice, headers: { ...basic('writer'), 'Content-Type': `multipart/related; boundary=${boundary}` } });
    assert.equal(r.status, 400, r.text);
    assert.equal((await req(`${admin}/dup-mp2`)).status, 404);
  });

  test('admin API: duplicate admin_channels / admin_roles keep the last list, and access follows it', async () => {
    await raw(`${admin}/_role/r1`, 'PUT', '{"admin_channels":["a"]}');
    await raw(`${admin}/_role/r2`, 'PUT', '{"admin_channels":["b"]}');
    const put = await raw(`${admin}/_user/carol`, 'PUT', '{"password":"pw-carol","admin_channels":["a"],"admin_channels":["z"],"admin_roles":["r1"],"admin_roles":["r2"]}');
    assert.ok(put.status === 200 || put.status === 201, put.text);
    const carol = await req(`${admin}/_user/carol`);
    assert.deepEqual(carol.body.admin_channels, ['z']);
    assert.deepEqual(carol.body.admin_roles, ['r2']);
    assert.ok(carol.body.all_channels.includes('b') && !carol.body.all_channels.includes('a'), JSON.stringify(carol.body));
    assert.equal((await req(`${pub}/dup-ch`, { headers: basic('carol') })).status, 200, 'channel b through role r2');
    await raw(`${pub}/only-a`, 'PUT', '{"channels":["a"]}', basic('writer'));
    assert.equal((await req(`${pub}/only-a`, { headers: basic('carol') })).status, 403);
  });

  test('_changes POST body and _local docs: the last key wins', async () => {
    const feed = await raw(`${admin}/_changes`, 'POST', '{"filter":"sync_gateway/bychannel","channels":"a","channels":"b"}');
    assert.equal(feed.status, 200, feed.text);
    const ids = feed.body.results.map((r: { id: string }) => r.id);
    assert.ok(ids.includes('dup-ch') && !ids.includes('only-a'), ids.join());
    await raw(`${pub}/_local/dup`, 'PUT', '{"a":1,"a":2}', basic('writer'));
    assert.equal((await req(`${pub}/_local/dup`, { headers: basic('writer') })).body.a, 2);
  });

  test('"__proto__" is plain data in every layer: never an inherited value', async () => {
    // At the top level it is a reserved `_` property: refused, nothing stored.
    const top = await raw(`${pub}/proto`, 'PUT', '{"__proto__":{"channels":["a"]},"v":1}', basic('writer'));
    assert.equal(top.status, 400, top.text);
    assert.equal((await req(`${admin}/proto`)).status, 404);
    // Nested, it is an ordinary key: stored as such, and the sync function does not inherit from it.
    const put = await raw(`${pub}/proto`, 'PUT', '{"grant":{"__proto__":{"user":"alice","channels":["p"]}},"channels":["b"]}', basic('writer'));
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(JSON.parse((await req(`${admin}/proto`)).text).grant, { ['__proto__']: { user: 'alice', channels: ['p'] } });
    assert.ok(!(await req(`${admin}/_user/alice`)).body.all_channels.includes('p'), 'no grant from an inherited grant.user');
    assert.equal((await req(`${pub}/proto`, { headers: basic('alice') })).status, 403);
  });

  test('a repeated query parameter: the first value is used, as Go\'s Query().Get does', async () => {
    const put = await raw(`${pub}/qdup`, 'PUT', '{"channels":["a"]}', basic('writer'));
    assert.equal((await req(`${pub}/qdup?rev=${put.body.rev}&rev=1-bogus`, { headers: basic('writer') })).status, 200);
    assert.equal((await req(`${pub}/qdup?rev=1-bogus&rev=${put.body.rev}`, { headers: basic('writer') })).status, 404);
  });
});

/**
 * Inspection endpoints against real listeners (spec sg3-admin.md 2.7-2.11): `_raw`, `_dumpchannel`,
 * `_all_docs?channels=true&access=true`, `_status` and `_ping` on all three ports.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import bcrypt from 'bcryptjs';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const SYNC = `function (doc, oldDoc) {
  channel(doc.channels);
  if (doc.grant) access(doc.grant.user, doc.grant.channels);
  if (doc.editor) role(doc.editor, 'role:editors');
  if (doc.ttl) expiry(doc.ttl);
}`;

const basic = (user: string, pw: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
const sha1 = (salt: string, name: string) => createHash('sha1').update(salt + name).digest('hex');

describe('inspection endpoints', () => {
  let gw: TestGateway;
  let admin: string;
  let pub: string;

  before(async () => {
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:', sync: SYNC, allow_conflicts: true,
          users: { alice: { password: 'alice-pw', admin_channels: ['b'] }, GUEST: { disabled: true } },
        },
        other: { server: 'memory:' },
      },
    });
    admin = `${gw.adminUrl}/db`;
    pub = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  const put = async (path: string, json: unknown) => {
    const r = await req(`${admin}/${path}`, { method: 'PUT', json });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.rev as string;
  };
  /** The sequence of a document's latest change, from the admin feed. */
  const seqOf = async (id: string): Promise<number> => {
    const r = await req(`${admin}/_changes?filter=_doc_ids&doc_ids=${encodeURIComponent(JSON.stringify([id]))}`);
    return r.body.results.at(-1).seq;
  };
  const raw = async (id: string, query = '') => {
    const r = await req(`${admin}/_raw/${encodeURIComponent(id)}${query}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('content-type'), 'application/json');
    return r.body;
  };

  describe('GET /{db}/_raw/{doc}', () => {
    test('channels left across revisions are recorded as removals; grants, roles and expiry show in _sync', async () => {
      const rev1 = await put('moved', { n: 1, channels: ['a', 'b'], grant: { user: 'alice', channels: ['x', 'y'] }, editor: 'alice', ttl: '2099-01-02T03:04:05Z' });
      const s1 = await seqOf('moved');
      const rev2 = await put(`moved?rev=${rev1}`, { n: 2, channels: ['b', 'c'], grant: { user: 'alice', channels: ['x'] }, editor: 'alice', ttl: '2099-01-02T03:04:05Z' });
      const s2 = await seqOf('moved');
      assert.ok(s2 > s1);
      const doc = await raw('moved');
      // The body as stored, no _id or _rev, then _sync.
      assert.deepEqual(Object.keys(doc), ['channels', 'editor', 'grant', 'n', 'ttl', '_sync']);
      assert.equal(doc.n, 2);
      const sync = doc._sync;
      assert.deepEqual(Object.keys(sync), [
        'rev', 'sequence', 'recent_sequences', 'channels', 'access', 'role_access', 'exp', 'cas', 'value_crc32c',
        'channel_set', 'channel_set_history', 'time_saved', 'cluster_uuid', 'history',
      ]);
      assert.equal(sync.rev, rev2);
      assert.equal(sync.sequence, s2);
      assert.deepEqual(sync.recent_sequences, [s2]);
      assert.deepEqual(sync.channels, { a: { seq: s2, rev: rev2 }, b: null, c: null });
      // y was revoked by rev 2; x survives with the sequence it was first granted at.
      assert.deepEqual(sync.access, { alice: { x: s1 } });
      assert.deepEqual(sync.role_access, { alice: { editors: s1 } });
      assert.equal(sync.exp, '2099-01-02T03:04:05Z');
      const cas = Buffer.alloc(8);
      cas.writeBigUInt64LE(BigInt(s2));
      assert.equal(sync.cas, `0x${cas.toString('hex')}`);
      assert.match(sync.value_crc32c, /^0x[0-9a-f]{8}$/);
      assert.equal(sync.channel_set, null);
      assert.equal(sync.time_saved, '0001-01-01T00:00:00Z');
      assert.equal(sync.cluster_uuid, (await req(`${admin}/`)).body.server_uuid);
      // Parallel arrays; rev 1's channels are not kept once its body is gone.
      const h = sync.history;
      assert.deepEqual(Object.keys(h), ['revs', 'parents', 'channels']);
      const i1 = h.revs.indexOf(rev1);
      const i2 = h.revs.indexOf(rev2);
      assert.deepEqual([h.parents[i1], h.parents[i2]], [-1, i1]);
      assert.deepEqual([h.channels[i1], h.channels[i2]], [null, ['b', 'c']]);
      // The same body and metadata, whichever way it is asked for.
      const noDoc = await raw('moved', '?include_doc=false');
      assert.deepEqual(noDoc, { _sync: sync });
    });

    test('a deleted document: {"_deleted":true}, the deleted flag, and removals marked del', async () => {
      const rev1 = await put('gone', { channels: ['k'] });
      const del = await req(`${admin}/gone?rev=${rev1}`, { method: 'DELETE' });
      assert.equal(del.status, 200);
      const s2 = await seqOf('gone');
      const doc = await raw('gone');
      assert.deepEqual(Object.keys(doc), ['_deleted', '_sync']);
      assert.equal(doc._deleted, true);
      assert.equal(doc._sync.flags, 1);
      assert.deepEqual(doc._sync.channels, { k: { seq: s2, rev: del.body.rev, del: true } });
      assert.equal(doc._sync.value_crc32c, '0x00000000');
      assert.deepEqual(doc._sync.history.deleted, [doc._sync.history.revs.indexOf(del.body.rev)]);
      assert.deepEqual(await raw('gone', '?include_doc=false'), { _sync: doc._sync });
    });

    test('a conflicted document: conflict and branched flags, the losing leaf inline in bodymap', async () => {
      const rev1 = await put('conf', { v: 0, channels: ['p'] });
      const d1 = rev1.slice(2);
      const r2a = await req(`${admin}/conf?new_edits=false`, { method: 'PUT', json: { v: 'a', channels: ['p'], _rev: '2-aaa', _revisions: { start: 2, ids: ['aaa', d1] } } });
      const r2b = await req(`${admin}/conf?new_edits=false`, { method: 'PUT', json: { v: 'b', channels: ['q'], _rev: '2-bbb', _revisions: { start: 2, ids: ['bbb', d1] } } });
      assert.equal(r2a.status, 201);
      assert.equal(r2b.status, 201);
      const doc = await raw('conf');
      assert.equal(doc.v, 'b');
      const sync = doc._sync;
      assert.equal(sync.rev, '2-bbb');
      assert.equal(sync.flags, 8 | 16);
      const h = sync.history;
      const [i1, ia, ib] = [rev1, '2-aaa', '2-bbb'].map((r) => h.revs.indexOf(r));
      assert.deepEqual([h.parents[i1], h.parents[ia], h.parents[ib]], [-1, i1, i1]);
      assert.deepEqual(h.bodymap, { [String(ia)]: JSON.stringify({ channels: ['p'], v: 'a' }) });
      assert.deepEqual([h.channels[ia], h.channels[ib]], [['p'], ['q']]);
      assert.equal(h.revs.length, h.channels.length);
      assert.equal(h.revs.length, h.parents.length);
      // The winner left p (the doc's channels follow the winner) and is in q.
      assert.deepEqual(sync.channels, { p: { seq: sync.sequence, rev: '2-bbb' }, q: null });
    });

    test('attachments are listed in _sync as version 2 stubs', async () => {
      await put('att', { channels: ['a'], _attachments: { 'hello.txt': { content_type: 'text/plain', data: Buffer.from('hello').toString('base64') } } });
      const doc = await raw('att');
      assert.equal(doc._attachments, undefined);
      assert.deepEqual(doc._sync.attachments, {
        'hello.txt': {
          content_type: 'text/plain', digest: `sha1-${createHash('sha1').update('hello').digest('base64')}`,
          length: 5, revpos: 1, stub: true, ver: 2,
        },
      });
    });

    test('redact=true hashes channel, user, role and attachment names with the salt; include_doc=true with it is refused', async () => {
      const plain = (await raw('moved'))._sync;
      const doc = await raw('moved', '?redact=true&salt=pepper');
      assert.deepEqual(Object.keys(doc), ['_sync']);
      const h = (n: string) => sha1('pepper', n);
      const sync = doc._sync;
      assert.deepEqual(sync.channels, { [h('a')]: plain.channels.a, [h('b')]: null, [h('c')]: null });
      assert.deepEqual(sync.access, { [h('alice')]: { [h('x')]: plain.access.alice.x } });
      assert.deepEqual(sync.role_access, { [h('alice')]: { [h('editors')]: plain.role_access.alice.editors } });
      assert.deepEqual(sync.history.channels, plain.history.channels.map((c: string[] | null) => c && c.map(h).sort()));
      assert.equal(sync.cluster_uuid, undefined);
      assert.equal(sync.rev, plain.rev);
      const att = (await raw('att', '?redact=true&salt=s'))._sync.attachments;
      assert.deepEqual(Object.keys(att), [sha1('s', 'hello.txt')]);
      // Without a salt, a random one: names are hashed all the same.
      assert.equal((await raw('moved', '?redact=true'))._sync.channels.b, undefined);
      const both = await req(`${admin}/_raw/moved?redact=true&include_doc=true`);
      assert.equal(both.status, 400);
      assert.deepEqual(both.body, {
        error: 'Bad Request',
        reason: 'redact and include_doc cannot be true at the same time. If you want to redact you must specify include_doc=false',
      });
      // redact with an explicit include_doc=false is fine.
      assert.deepEqual(Object.keys(await raw('moved', '?redact=true&include_doc=false')), ['_sync']);
    });

    test('404 for a missing document or database; HEAD answers with the status only', async () => {
      const missing = await req(`${admin}/_raw/nope`);
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.body, { error: 'not_found', reason: 'missing' });
      assert.equal((await req(`${gw.adminUrl}/nodb/_raw/moved`)).status, 404);
      const head = await fetch(`${admin}/_raw/moved`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      assert.equal((await fetch(`${admin}/_raw/nope`, { method: 'HEAD' })).status, 404);
      // Purged: gone from _raw too.
      await put('purged', { channels: ['a'] });
      assert.equal((await req(`${admin}/_purge`, { method: 'POST', json: { purged: ['*'] } })).status, 200);
      assert.equal((await req(`${admin}/_raw/purged`)).status, 404);
    });
  });

  describe('GET /{db}/_dumpchannel/{channel}', () => {
    test('an HTML table of the channel\'s index rows, with deleted and removed flags', async () => {
      const r1 = await put('dump1', { channels: ['dump'] });
      await put('dump2', { channels: ['dump'] });
      await put('dump3', { channels: ['dump', 'elsewhere'] });
      await put(`dump1?rev=${r1}`, { channels: ['elsewhere'] });
      const s1 = await seqOf('dump1');
      const d3 = await req(`${admin}/dump3`);
      const del = await req(`${admin}/dump3?rev=${d3.body._rev}`, { method: 'DELETE' });
      const s3 = await seqOf('dump3');
      const s2 = await seqOf('dump2');
      const res = await req(`${admin}/_dumpchannel/dump?since=999999`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset="UTF-8"');
      const title = '/db: \u201cdump\u201d Channel';
      assert.equal(res.text,
        `<!DOCTYPE html><html><head><title>${title}</title></head><body>\n\t\t<h1>${title}</h1><code>\n`
        + `\t\t<p>Since = ${s2 - 1}</p>\n\t\t<table border=1>\n\t\t`
        + '\t<tr><th>Seq</th><th>Doc</th><th>Rev</th><th>Flags</th></tr>\n'
        + `\t<tr><td>${s2}</td><td>dump2</td><td>${(await req(`${admin}/dump2`)).body._rev}</td><td>00000000</td></tr>\n`
        + `\t<tr><td>${s1}</td><td>dump1</td><td>${(await req(`${admin}/dump1`)).body._rev}</td><td>00000010</td></tr>\n`
        + `\t<tr><td>${s3}</td><td>dump3</td><td>${del.body.rev}</td><td>00000011</td></tr>\n`
        + '</table>\n</code></html></body>');
    });

    test('names are HTML-escaped; an unknown channel is 404 "no such channel"', async () => {
      await put('esc', { channels: ['<b>&"'] });
      const res = await req(`${admin}/_dumpchannel/${encodeURIComponent('<b>&"')}`);
      assert.equal(res.status, 200);
      assert.ok(res.text.includes('<title>/db: \u201c&lt;b&gt;&amp;&#34;\u201d Channel</title>'), res.text);
      const none = await req(`${admin}/_dumpchannel/never-used`);
      assert.equal(none.status, 404);
      assert.deepEqual(none.body, { error: 'not_found', reason: 'no such channel' });
    });
  });

  describe('_all_docs with channels=true and access=true', () => {
    test('the admin sees every current channel and the document\'s grants; no channels means no key', async () => {
      await put('nochan', { plain: true });
      const keys = encodeURIComponent(JSON.stringify(['moved', 'nochan', 'gone']));
      const r = await req(`${admin}/_all_docs?channels=true&access=true&keys=${keys}`);
      assert.equal(r.status, 200);
      const [moved, nochan] = r.body.rows;
      assert.deepEqual(moved.value, { rev: moved.value.rev, channels: ['b', 'c'], access: { alice: ['x'], 'role:alice': ['editors'] } });
      assert.deepEqual(nochan.value, { rev: nochan.value.rev });
      const all = await req(`${admin}/_all_docs?channels=true`);
      const row = all.body.rows.find((x: { id: string }) => x.id === 'moved');
      assert.deepEqual(row.value, { rev: moved.value.rev, channels: ['b', 'c'] });
      const post = await req(`${admin}/_all_docs?channels=true&access=true`, { method: 'POST', json: { keys: ['moved'] } });
      assert.deepEqual(post.body.rows[0].value, moved.value);
    });

    test('a user sees only the channels it has, and never access', async () => {
      const r = await req(`${pub}/_all_docs?channels=true&access=true`, { headers: basic('alice', 'alice-pw') });
      assert.equal(r.status, 200);
      const row = r.body.rows.find((x: { id: string }) => x.id === 'moved');
      // alice has b (admin channel) plus x from the grant; the doc is in b and c.
      assert.deepEqual(row.value, { rev: row.value.rev, channels: ['b'] });
      assert.ok(r.body.rows.every((x: { id: string }) => x.id !== 'nochan'));
    });
  });

  describe('GET /_status', () => {
    test('version, and per database its state, sequence and (empty) replication status', async () => {
      const r = await req(`${gw.adminUrl}/_status`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.deepEqual(Object.keys(r.body), ['databases', 'version', 'vendor']);
      assert.match(r.body.version, /^Couchbase Sync Gateway\/\d+\.\d+\.\d+\(Syncgate\) CE$/);
      assert.equal(r.body.vendor.name, 'Couchbase Sync Gateway');
      assert.equal(r.body.version, (await req(`${gw.adminUrl}/`)).body.version);
      assert.deepEqual(Object.keys(r.body.databases), ['db', 'other']);
      const info = (await req(`${admin}/`)).body;
      assert.deepEqual(r.body.databases.db, {
        seq: info.update_seq, server_uuid: info.server_uuid, state: 'Online', require_resync: [], replication_status: [],
        // This gateway is the cluster's one ISGR node (src/replication/isgr/); no replication is defined.
        cluster: { cluster_uuid: '', replications: {}, nodes: { [gw.gateway.nodeId]: { uuid: gw.gateway.nodeId, host: hostname() } } },
      });
      // Its users take sequences too: the same number `/other/` reports.
      assert.equal(r.body.databases.other.seq, (await req(`${gw.adminUrl}/other/`)).body.update_seq);
    });
  });

  describe('GET|HEAD /_ping', () => {
    test('"OK" as text/plain on the public, admin and metrics ports, logged at debug', async () => {
      for (const base of [gw.publicUrl, gw.adminUrl, gw.metricsUrl]) {
        const r = await fetch(`${base}/_ping`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), 'text/plain; charset=UTF-8');
        assert.equal(await r.text(), 'OK');
        const head = await fetch(`${base}/_ping`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), '2');
        assert.equal(await head.text(), '');
        assert.equal((await fetch(`${base}/_ping`, { method: 'POST' })).status, 405);
      }
      const lines = gw.logs.filter((l) => l.includes('GET /_ping'));
      assert.equal(lines.length, 3);
      assert.ok(lines.every((l) => l.includes('[DBG] HTTP+:')), lines.join('\n'));
    });
  });

  test('_revtree: the revision tree as Graphviz dot, tombstones in red, every edge once', async () => {
    const one = await req(`${admin}/rt-one`, { method: 'PUT', json: { channels: ['b'] } });
    const single = await req(`${admin}/_revtree/rt-one`);
    assert.equal(single.status, 200);
    assert.equal(single.headers.get('content-type'), 'text/plain; charset=UTF-8');
    assert.equal(single.text, `digraph graphname{"" -> "${one.body.rev}"; }`);
    // Two branches from one root: one live, one ending in a tombstone.
    const r1 = (await req(`${admin}/rt`, { method: 'PUT', json: { v: 1 } })).body.rev;
    const r2 = (await req(`${admin}/rt?rev=${r1}`, { method: 'PUT', json: { v: 2 } })).body.rev;
    const branch = await req(`${admin}/rt?new_edits=false`, {
      method: 'PUT', json: { _rev: '2-c0ffee', _revisions: { start: 2, ids: ['c0ffee', r1.split('-')[1]] }, v: 'b' },
    });
    assert.equal(branch.status, 201);
    const r3 = (await req(`${admin}/rt?rev=2-c0ffee`, { method: 'DELETE' })).body.rev;
    const dot = (await req(`${admin}/_revtree/rt`)).text;
    const pieces = [
      `"${r1}" -> "${r2}"; `,
      `"${r3}" [fontcolor=red];"2-c0ffee" -> "${r3}" [label="Tombstone", fontcolor=red];`,
      `"${r1}" -> "2-c0ffee"; `,
    ];
    assert.ok(dot.startsWith('digraph graphname{') && dot.endsWith('}'), dot);
    for (const p of pieces) assert.ok(dot.includes(p), `${p} in ${dot}`);
    assert.equal(dot.length, 'digraph graphname{}'.length + pieces.join('').length, dot);
    const missing = await req(`${admin}/_revtree/nope`);
    assert.deepEqual([missing.status, missing.body.reason], [404, 'missing']);
  });

  test('the public port refuses the admin-only endpoints', async () => {
    const auth = { headers: basic('alice', 'alice-pw') };
    for (const path of ['/db/_raw/moved', '/db/_revtree/moved', '/db/_dumpchannel/b', '/_status']) {
      const r = await req(`${gw.publicUrl}${path}`, auth);
      assert.equal(r.status, 404, path);
      assert.deepEqual(r.body, { error: 'not_found', reason: 'unknown URL' });
    }
  });
});

describe('_ping with operator accounts on the admin and metrics ports', () => {
  let gw: TestGateway;
  before(async () => {
    const hash = bcrypt.hashSync('ops-pw', 4);
    gw = await startGateway({ config: { admin_users: { ops: { password_hash: hash } }, metrics_users: { ops: { password_hash: hash } } } });
  });
  after(() => gw.stop());

  test('answers without credentials, while everything else there still needs them', async () => {
    for (const base of [gw.adminUrl, gw.metricsUrl]) {
      const ping = await fetch(`${base}/_ping`);
      assert.equal(ping.status, 200);
      assert.equal(await ping.text(), 'OK');
    }
    assert.equal((await req(`${gw.adminUrl}/_status`)).status, 401);
    assert.equal((await req(`${gw.adminUrl}/_nowhere`)).status, 401);
    assert.equal((await req(`${gw.metricsUrl}/_metrics`)).status, 401);
    assert.equal((await req(`${gw.adminUrl}/_status`, { headers: basic('ops', 'ops-pw') })).status, 200);
  });
});

/**
 * Couchbase Lite replication over BLIP (`/{db}/_blipsync`), driven by the spec-written replicator
 * in test/helpers/blip-client.ts against a real gateway: handshake and authentication, checkpoints,
 * push and pull of 1,000 docs with attachments, deletions, conflicts, channel filtering, a
 * continuous pull with grants and revocations, and access checks, as two users.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, BlipHttpError, LocalDb, openBlipSocket, sha1Digest } from '../helpers/blip-client.ts';
import { BlipConnection, type BlipRequest } from '../../src/replication/blip/connection.ts';

const SYNC = `function(doc, oldDoc) {
  if (doc.type === 'secret') requireUser('alice');
  if (doc.type === 'grant') { requireAdmin(); access(doc.user, doc.grant); }
  channel(doc.channels);
}`;

const USERS = {
  alice: { password: 'alice-pw', admin_channels: ['a', 'shared'] },
  bob: { password: 'bob-pw', admin_channels: ['b', 'shared'] },
};

const pad = (i: number) => String(i).padStart(4, '0');

describe('BLIP handshake', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway({
      databases: {
        db: { server: 'memory:', users: USERS, sync: SYNC },
        open: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
        strict: { server: 'memory:', allow_conflicts: false, users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
      },
    });
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('a plain GET is 426 Upgrade Required', async () => {
    const res = await req(`${url}/_blipsync`, { headers: { Authorization: 'Basic ' + Buffer.from('alice:alice-pw').toString('base64') } });
    assert.equal(res.status, 426);
  });

  test('no credentials and no GUEST: 401 with WWW-Authenticate before any upgrade; a bad password too', async () => {
    const e = await openBlipSocket(url).then(() => undefined, (err) => err);
    assert.ok(e instanceof BlipHttpError);
    assert.equal(e.status, 401);
    assert.equal(e.headers['www-authenticate'], 'Basic realm="Couchbase Sync Gateway"');
    const bad = await openBlipSocket(url, { user: 'alice', password: 'nope' }).then(() => undefined, (err) => err);
    assert.ok(bad instanceof BlipHttpError);
    assert.equal(bad.status, 401);
  });

  test('echoes exactly one subprotocol: CBMobile_3 preferred, CBMobile_2 accepted, nothing else', async () => {
    const both = await BlipClient.connect(url, { user: 'alice', password: 'alice-pw', protocols: ['BLIP_3+CBMobile_2', 'BLIP_3+CBMobile_3'] });
    assert.equal(both.protocol, 'BLIP_3+CBMobile_3');
    await both.close();
    const two = await BlipClient.connect(url, { user: 'alice', password: 'alice-pw', protocols: ['BLIP_3+CBMobile_2'] });
    assert.equal(two.protocol, 'BLIP_3+CBMobile_2');
    await two.close();
    const none = await openBlipSocket(url, { user: 'alice', password: 'alice-pw', protocols: ['BLIP_3+CBMobile_4'] }).then(() => undefined, (err) => err);
    assert.ok(none instanceof BlipHttpError);
    assert.equal(none.status, 400);
  });

  test('session cookie, session token in the subprotocol list, and GUEST all authenticate', async () => {
    const s = await req(`${gw.adminUrl}/db/_session`, { method: 'POST', json: { name: 'bob' } });
    assert.equal(s.status, 200);
    const cookie = `${s.body.cookie_name}=${s.body.session_id}`;
    const byCookie = await BlipClient.connect(url, { cookie });
    assert.equal((await byCookie.getCheckpoint('x')), undefined);
    await byCookie.close();
    const byToken = await BlipClient.connect(url, { protocols: [`SyncGatewaySession_${s.body.session_id}`, 'BLIP_3+CBMobile_3'] });
    assert.equal(byToken.protocol, 'BLIP_3+CBMobile_3');
    await byToken.close();
    const badToken = await openBlipSocket(url, { protocols: ['SyncGatewaySession_0123456789abcdef', 'BLIP_3+CBMobile_3'] }).then(() => undefined, (err) => err);
    assert.equal((badToken as BlipHttpError).status, 401);
    // A session past a tenth of its lifetime is refreshed: the new cookie comes with the 101.
    const short = await req(`${gw.adminUrl}/db/_session`, { method: 'POST', json: { name: 'bob', ttl: 5 } });
    await new Promise((r) => setTimeout(r, 700));
    let setCookie = '';
    const ws = await openBlipSocket(url, { cookie: `${short.body.cookie_name}=${short.body.session_id}`, onUpgrade: (h) => { setCookie = String(h['set-cookie'] ?? ''); } });
    ws.close();
    assert.match(setCookie, new RegExp(`^${short.body.cookie_name}=${short.body.session_id}; Path=/db; Expires=`));
    const guest = await BlipClient.connect(`${gw.publicUrl}/open`);
    assert.equal(guest.protocol, 'BLIP_3+CBMobile_3');
    await guest.close();
  });

  test('unknown profiles get BLIP/404; a second subChanges is refused', async () => {
    const c = await BlipClient.connect(url, { user: 'alice', password: 'alice-pw' });
    const res = await c.conn.sendRequest({ Profile: 'noSuchThing' });
    assert.equal(res?.isError, true);
    assert.equal(res?.errorDomain, 'BLIP');
    assert.equal(res?.errorCode, 404);
    await c.startPull(new LocalDb(), { continuous: true });
    await assert.rejects(c.call({ Profile: 'subChanges' }), (e: any) => e.domain === 'HTTP' && e.status === 500 && /already has an outstanding subChanges/.test(e.message));
    await c.close();
  });

  test('conflict-free database: a pushed `changes` is HTTP/409 (use proposeChanges), proposeChanges works', async () => {
    const c = await BlipClient.connect(`${gw.publicUrl}/strict`);
    await assert.rejects(c.call({ Profile: 'changes' }, [[1, 'x', '1-abc']]), (e: any) => e.domain === 'HTTP' && e.status === 409);
    const local = new LocalDb();
    local.put('x', { v: 1 });
    assert.equal((await c.push(local)).sent, 1);
    await c.close();
  });

  test('getCollections: the default collection only; then every message names its collection', async () => {
    const c = await BlipClient.connect(`${gw.publicUrl}/open`);
    await c.setCheckpoint('cp-coll', { seq: 3 });
    const res = await c.call({ Profile: 'getCollections' }, { collections: ['_default._default', 'inventory.items'], checkpoint_ids: ['cp-coll', 'cp-other'] });
    assert.deepEqual(res.json(), [{ seq: 3, rev: '0-1', _rev: '0-1' }, null]);
    await assert.rejects(c.call({ Profile: 'subChanges' }), (e: any) => e.status === 400);
    await assert.rejects(c.call({ Profile: 'subChanges', collection: '1' }), (e: any) => e.status === 400);
    await c.call({ Profile: 'subChanges', collection: '0' });
    await c.close();
  });
});

describe('BLIP replication', () => {
  let gw: TestGateway;
  let url: string;
  const alice = { user: 'alice', password: 'alice-pw' };
  const bob = { user: 'bob', password: 'bob-pw' };
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', users: USERS, sync: SYNC } } });
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('checkpoints: 404 when new, 0-N revisions, 409 on a stale rev, 404 on a rev with nothing stored; a _local doc', async () => {
    const c = await BlipClient.connect(url, alice);
    assert.equal(await c.getCheckpoint('cp-test'), undefined);
    await assert.rejects(c.setCheckpoint('cp-none', { x: 1 }, '0-3'), (e: any) => e.domain === 'HTTP' && e.status === 404);
    const r1 = await c.setCheckpoint('cp-test', { local: 5, remote: 7 });
    assert.equal(r1, '0-1');
    await assert.rejects(c.setCheckpoint('cp-test', { local: 6 }), (e: any) => e.domain === 'HTTP' && e.status === 409);
    await assert.rejects(c.setCheckpoint('cp-test', { local: 6 }, '0-9'), (e: any) => e.status === 409);
    const r2 = await c.setCheckpoint('cp-test', { local: 6, remote: 9 }, r1);
    assert.equal(r2, '0-2');
    assert.deepEqual(await c.getCheckpoint('cp-test'), { rev: '0-2', body: { local: 6, remote: 9 } });
    const local = await req(`${gw.adminUrl}/db/_local/checkpoint%2Fcp-test`);
    assert.equal(local.status, 200);
    assert.equal(local.body._rev, '0-2');
    await c.close();
  });

  test('alice pushes 1,000 docs with attachments; a fresh replica pulls them identically; bob sees only his channels', async () => {
    const src = new LocalDb();
    const shared = randomBytes(3000);
    for (let i = 0; i < 1000; i++) {
      const channels = i % 10 === 0 ? ['shared'] : ['a'];
      const attachments = i % 50 === 0
        ? { 'photo.bin': { data: i % 100 === 0 ? shared : randomBytes(200 + i), content_type: 'application/octet-stream' } }
        : undefined;
      src.put(`doc-${pad(i)}`, { i, text: `value ${i}`, channels }, { attachments });
    }
    const c = await BlipClient.connect(url, alice);
    const push = await c.push(src);
    assert.equal(push.errors.size, 0, JSON.stringify([...push.errors]));
    assert.equal(push.sent, 1000);
    // 11 distinct blobs were fetched from the client; the shared one, already stored, was proven 9 times.
    assert.deepEqual(c.served, { getAttachment: 11, proveAttachment: 9 });
    await c.setCheckpoint('cp-alice-push', { local: push.lastSeq });
    await c.close();

    // The same revisions are there over REST.
    const one = await req(`${gw.adminUrl}/db/doc-0050?revs=true`);
    assert.equal(one.body._rev, src.current('doc-0050'));
    const att = Buffer.from(await (await fetch(`${gw.adminUrl}/db/doc-0050/photo.bin`)).arrayBuffer());
    assert.deepEqual(att, src.blobs.get(sha1Digest(att)), 'the bytes the client sent under their sha1 digest');
    // REST shows CouchDB's md5 digest (PouchDB's); BLIP shows the sha1 one (the pull below checks it).
    assert.equal(one.body._attachments['photo.bin'].digest, 'md5-' + createHash('md5').update(att).digest('base64'));

    const dst = new LocalDb();
    const p = await BlipClient.connect(url, alice);
    const pull = await p.pull(dst);
    assert.equal(pull.errors.length, 0, pull.errors.map((e) => e.message).join('; '));
    assert.equal(pull.received, 1000);
    assert.ok(pull.batches >= 5, `batches of 200: ${pull.batches}`);
    assert.ok(pull.revProps.every((r) => r.sequence !== undefined));
    for (const id of src.docs.keys()) {
      assert.equal(dst.current(id), src.current(id), id);
      const { _attachments: a1, ...b1 } = src.get(id)!.body!;
      const { _attachments: a2, ...b2 } = dst.get(id)!.body!;
      assert.deepEqual(b2, b1, id);
      assert.equal(!!a1, !!a2, id);
    }
    for (const [digest, data] of src.blobs) assert.deepEqual(dst.blobs.get(digest), data);
    // Over BLIP the digest is Sync Gateway's sha1, never REST's md5.
    assert.equal((dst.get('doc-0050')!.body!._attachments as any)['photo.bin'].digest, sha1Digest(att));
    await p.close();

    const bobDb = new LocalDb();
    const b = await BlipClient.connect(url, bob);
    const bobPull = await b.pull(bobDb);
    assert.equal(bobPull.received, 100);
    assert.ok([...bobDb.docs.keys()].every((id) => Number(id.slice(4)) % 10 === 0));
    await b.close();

    // Filtering by channel: alice asks only for "shared".
    const filtered = new LocalDb();
    const f = await BlipClient.connect(url, alice);
    const fp = await f.pull(filtered, { channels: ['shared'] });
    assert.equal(fp.received, 100);
    await f.close();
  });

  test('a 3 MB attachment goes both ways (multi-frame messages, ACK flow control)', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const src = new LocalDb();
    src.put('big-1', { channels: ['a'] }, { attachments: { 'big.bin': { data: big, content_type: 'application/octet-stream' } } });
    const c = await BlipClient.connect(url, alice);
    assert.equal((await c.push(src)).sent, 1);
    await c.close();
    const rest = await fetch(`${gw.adminUrl}/db/big-1/big.bin`);
    assert.deepEqual(Buffer.from(await rest.arrayBuffer()), big);
    const dst = new LocalDb();
    const p = await BlipClient.connect(url, alice);
    await p.pull(dst, { docIDs: ['big-1'] });
    assert.deepEqual(dst.blobs.get(sha1Digest(big)), big);
    await p.close();
  });

  test('a pushed stub may name the md5 digest: proven when the server has the bytes, fetched when not; pulls show sha1', async () => {
    const md5 = (b: Buffer) => 'md5-' + createHash('md5').update(b).digest('base64');
    const stored = randomBytes(500);
    const fresh = randomBytes(700);
    const seed = new LocalDb();
    seed.put('md5-seed', { channels: ['a'] }, { attachments: { 's.bin': { data: stored } } });
    const c0 = await BlipClient.connect(url, alice);
    assert.equal((await c0.push(seed)).sent, 1);
    await c0.close();
    // A peer that names md5 digests (as a CouchDB-protocol client would) in its stubs.
    const src = new LocalDb();
    src.blobs.set(md5(stored), stored);
    src.blobs.set(md5(fresh), fresh);
    src.insert('md5-stub', '1-aaaa', [], false, {
      channels: ['a'],
      _attachments: {
        'old.bin': { stub: true, digest: md5(stored), length: stored.length, revpos: 1 },
        'new.bin': { stub: true, digest: md5(fresh), length: fresh.length, revpos: 1 },
      },
    });
    const c = await BlipClient.connect(url, alice);
    const push = await c.push(src);
    assert.equal(push.errors.size, 0, JSON.stringify([...push.errors]));
    assert.deepEqual(c.served, { getAttachment: 1, proveAttachment: 1 });
    await c.close();
    const rest = await req(`${gw.adminUrl}/db/md5-stub`);
    assert.equal(rest.body._attachments['old.bin'].digest, md5(stored));
    assert.equal(rest.body._attachments['new.bin'].digest, md5(fresh));
    assert.deepEqual(Buffer.from(await (await fetch(`${gw.adminUrl}/db/md5-stub/new.bin`)).arrayBuffer()), fresh);
    const dst = new LocalDb();
    const p = await BlipClient.connect(url, alice);
    await p.pull(dst, { docIDs: ['md5-stub'] });
    const atts = dst.get('md5-stub')!.body!._attachments as any;
    assert.equal(atts['old.bin'].digest, sha1Digest(stored));
    assert.equal(atts['new.bin'].digest, sha1Digest(fresh));
    assert.deepEqual(dst.blobs.get(sha1Digest(fresh)), fresh);
    await p.close();
  });

  test('an attachment can only be fetched while the server is sending its revision', async () => {
    const c = await BlipClient.connect(url, alice);
    // The digest Couchbase Lite would name: sha1 (REST shows md5, which the gate would refuse anyway).
    const digest = sha1Digest(Buffer.from(await (await fetch(`${gw.adminUrl}/db/doc-0050/photo.bin`)).arrayBuffer()));
    await assert.rejects(c.call({ Profile: 'getAttachment', digest, docID: 'doc-0050' }), (e: any) => e.domain === 'HTTP' && e.status === 403);
    await c.close();
  });

  test('a CBMobile_2 client fetches attachments without naming the document', async () => {
    const c = await BlipClient.connect(url, { ...alice, protocols: ['BLIP_3+CBMobile_2'] });
    const db = new LocalDb();
    const st = await c.pull(db, { docIDs: ['doc-0050', 'doc-0100'] });
    assert.equal(st.received, 2);
    assert.equal(db.blobs.size, 2);
    await c.close();
  });

  test('a user deleted by the admin loses its open connection', async () => {
    await req(`${gw.adminUrl}/db/_user/carol`, { method: 'PUT', json: { password: 'carol-pw', admin_channels: ['a'] } });
    const c = await BlipClient.connect(url, { user: 'carol', password: 'carol-pw' });
    const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
    assert.equal((await req(`${gw.adminUrl}/db/_user/carol`, { method: 'DELETE' })).status, 200);
    assert.equal(await closed, 1008);
  });

  test('deletions: tombstones pushed, pulled with the deleted flag, skipped with activeOnly', async () => {
    const src = new LocalDb();
    for (let i = 0; i < 20; i++) src.put(`del-${pad(i)}`, { i, channels: ['a'] });
    const c = await BlipClient.connect(url, alice);
    assert.equal((await c.push(src)).sent, 20);
    const since = src.lastSeq;
    for (let i = 0; i < 10; i++) src.delete(`del-${pad(i)}`);
    const second = await c.push(src, { since });
    assert.equal(second.sent, 10);
    await c.close();
    assert.equal((await req(`${gw.adminUrl}/db/del-0003`)).status, 404);

    const all = new LocalDb();
    const p = await BlipClient.connect(url, alice);
    const state = await p.pull(all, { docIDs: Array.from({ length: 20 }, (_, i) => `del-${pad(i)}`) });
    assert.equal(state.received, 20);
    const tombstoneRows = state.rows.filter((r) => r[3] === 1);
    assert.equal(tombstoneRows.length, 10, 'CBMobile_3 flags tombstones with 1');
    assert.equal(all.get('del-0003')!.deleted, true);
    assert.equal(all.current('del-0003'), src.current('del-0003'));
    await p.close();

    const active = new LocalDb();
    const q = await BlipClient.connect(url, alice);
    const st2 = await q.pull(active, { activeOnly: true, docIDs: Array.from({ length: 20 }, (_, i) => `del-${pad(i)}`) });
    assert.equal(st2.received, 10);
    await q.close();

    // CBMobile_2 marks tombstones with `true`.
    const v2 = await BlipClient.connect(url, { ...alice, protocols: ['BLIP_3+CBMobile_2'] });
    const st3 = await v2.pull(new LocalDb(), { docIDs: ['del-0001'] });
    assert.equal(st3.rows[0][3], true);
    await v2.close();
  });

  test('conflicts: proposeChanges answers 409 with the server rev; the changes protocol stores both branches', async () => {
    const a = new LocalDb();
    a.put('conf', { v: 1, channels: ['shared'] });
    const ca = await BlipClient.connect(url, alice);
    assert.equal((await ca.push(a)).sent, 1);
    const b = new LocalDb();
    const cb = await BlipClient.connect(url, bob);
    await cb.pull(b, { docIDs: ['conf'] });
    const base = b.current('conf')!;
    const since = b.lastSeq;
    b.put('conf', { v: 'bob', channels: ['shared'] });
    a.put('conf', { v: 'alice', channels: ['shared'] });
    const aliceRev = a.current('conf')!;
    const bobRev = b.current('conf')!;
    assert.equal((await cb.push(b, { since })).sent, 1);
    // alice's proposal names a server rev that is no longer current: a conflict.
    const refused = await ca.push(a, { since: a.lastSeq - 1 });
    assert.equal(refused.errors.get('conf'), 409);
    assert.equal(refused.serverRevs.get('conf'), bobRev);
    // The older protocol lets a client push its branch anyway (allow_conflicts is on).
    const forced = await ca.push(a, { mode: 'changes', since: a.lastSeq - 1 });
    assert.equal(forced.sent, 1);
    const open = await req(`${gw.adminUrl}/db/conf?open_revs=all`, { headers: { Accept: 'application/json' } });
    const leaves = open.body.map((r: any) => r.ok._rev).sort();
    assert.deepEqual(leaves, [aliceRev, bobRev].sort());
    assert.ok(leaves.every((r: string) => r.startsWith('2-')));
    // A rev with noconflicts whose parent is not current is refused with 409 and not stored.
    const stale = new LocalDb();
    stale.insert('conf', base, [], false, { v: 1, channels: ['shared'] });
    stale.put('conf', { v: 'late', channels: ['shared'] });
    const late = stale.current('conf')!;
    const res = await ca.conn.sendRequest({ Profile: 'rev', id: 'conf', rev: late, history: base, noconflicts: 'true', sequence: '1' }, { v: 'late', channels: ['shared'] });
    assert.equal(res?.errorDomain, 'HTTP');
    assert.equal(res?.errorCode, 409);
    assert.equal((await req(`${gw.adminUrl}/db/conf?rev=${late}`)).status, 404);
    await ca.close();
    await cb.close();
  });

  test('the sync function and access checks apply: a rejected rev is HTTP/403 and not stored', async () => {
    const b = new LocalDb();
    b.put('secret-1', { type: 'secret', channels: ['b'] });
    b.put('fine-1', { type: 'note', channels: ['b'] });
    const c = await BlipClient.connect(url, bob);
    const r = await c.push(b);
    assert.equal(r.errors.get('secret-1'), 403);
    assert.equal(r.sent, 1);
    assert.equal((await req(`${gw.adminUrl}/db/secret-1`)).status, 404);
    const grant = new LocalDb();
    grant.put('grant-by-bob', { type: 'grant', user: 'bob', grant: 'a' });
    assert.equal((await c.push(grant)).errors.get('grant-by-bob'), 403);
    await c.close();
  });

  test('continuous pull: new docs arrive live, a grant backfills, a revocation is announced', async () => {
    const bobDb = new LocalDb();
    const c = await BlipClient.connect(url, bob);
    const state = await c.startPull(bobDb, { continuous: true, revocations: true, channels: undefined });
    await state.waitFor(() => state.caughtUp);
    const before = state.received;

    const w = new LocalDb();
    w.put('live-1', { v: 1, channels: ['shared'] });
    w.put('live-hidden', { v: 1, channels: ['a'] });
    const pusher = await BlipClient.connect(url, alice);
    await pusher.push(w);
    await state.waitFor(() => bobDb.docs.has('live-1'));
    assert.equal(bobDb.docs.has('live-hidden'), false);

    // An admin-written grant document gives bob channel "a": its documents backfill.
    const g = await req(`${gw.adminUrl}/db/grant-bob-a`, { method: 'PUT', json: { type: 'grant', user: 'bob', grant: 'a' } });
    assert.equal(g.status, 201);
    await state.waitFor(() => bobDb.docs.has('live-hidden') && bobDb.docs.has('doc-0001'), 20_000);
    assert.ok(state.received - before > 900);

    // Deleting the grant revokes "a": bob's client is told to purge what it can no longer see.
    const del = await req(`${gw.adminUrl}/db/grant-bob-a?rev=${g.body.rev}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await state.waitFor(() => state.revoked.includes('live-hidden'), 20_000);
    assert.ok(!state.revoked.includes('live-1'), 'still visible through "shared"');
    assert.equal(bobDb.docs.has('live-hidden'), false);

    // A doc leaving bob's channels is a removal (flag 4).
    w.put('live-1', { v: 2, channels: ['a'] });
    await pusher.push(w, { since: w.lastSeq - 1 });
    await state.waitFor(() => state.removed.includes('live-1'));
    await pusher.close();
    await c.close();
  });

  test('a revision gone before the client asks for it: norev, or the current one with sendReplacementRevs', async () => {
    const put = await req(`${gw.adminUrl}/db/gone-1`, { method: 'PUT', json: { v: 1, channels: ['a'] } });
    for (const replace of [false, true]) {
      const ws = await openBlipSocket(url, alice);
      const conn = new BlipConnection(ws, { role: 'client' });
      const got: BlipRequest[] = [];
      let updated = false;
      const done = new Promise<void>((resolve) => conn.onRequest(async (r) => {
        if (r.profile === 'changes') {
          const rows = r.json<unknown[][] | null>() ?? [];
          if (rows.length === 0) return;
          if (!updated) {
            // Superseded while the batch is with the client: the old body is no longer kept.
            updated = true;
            const cur = (await req(`${gw.adminUrl}/db/gone-1`)).body._rev;
            await req(`${gw.adminUrl}/db/gone-1?rev=${cur}`, { method: 'PUT', json: { v: 2, channels: ['a'] } });
            // ...and its retained copy has expired too (the sweep, an hour on).
            await gw.gateway.get('db')!.sweepExpired(Math.floor(Date.now() / 1000) + 3600);
          }
          r.respond({}, rows.map(() => []));
          return;
        }
        got.push(r);
        resolve();
      }));
      await conn.sendRequest({ Profile: 'subChanges', ...(replace ? { sendReplacementRevs: 'true' } : {}) }, { docIDs: ['gone-1'] });
      await done;
      const m = got[0];
      if (!replace) {
        assert.equal(m.profile, 'norev');
        assert.equal(m.properties.error, '404');
        assert.equal(m.properties.rev, put.body.rev);
        assert.ok(m.properties.sequence);
      } else {
        assert.equal(m.profile, 'rev');
        assert.ok(m.properties.replacedRev);
        assert.notEqual(m.properties.rev, m.properties.replacedRev);
        assert.equal(m.json<{ v: number }>().v, 2);
      }
      conn.close();
    }
  });

  test('an attachment name starting with _ is accepted over BLIP, as Sync Gateway does (only REST refuses it, as CouchDB)', async () => {
    const src = new LocalDb();
    const data = randomBytes(300);
    src.put('us-att', { channels: ['a'] }, { attachments: { '_under.bin': { data, content_type: 'application/octet-stream' } } });
    const c = await BlipClient.connect(url, alice);
    const push = await c.push(src);
    assert.equal(push.errors.size, 0, JSON.stringify([...push.errors]));
    await c.close();
    const got = await fetch(`${gw.adminUrl}/db/us-att/_under.bin`);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
  });

  test('a revision superseded while its body is still retained is sent as it was (Sync Gateway\'s revision backups for in-flight replications)', async () => {
    const put = await req(`${gw.adminUrl}/db/kept-1`, { method: 'PUT', json: { v: 1, channels: ['a'] } });
    const ws = await openBlipSocket(url, alice);
    const conn = new BlipConnection(ws, { role: 'client' });
    let updated = false;
    const got = new Promise<BlipRequest>((resolve) => conn.onRequest(async (r) => {
      if (r.profile === 'changes') {
        const rows = r.json<unknown[][] | null>() ?? [];
        if (rows.length === 0) return;
        if (!updated) {
          updated = true;
          await req(`${gw.adminUrl}/db/kept-1?rev=${put.body.rev}`, { method: 'PUT', json: { v: 2, channels: ['a'] } });
        }
        r.respond({}, rows.map(() => []));
        return;
      }
      resolve(r);
    }));
    await conn.sendRequest({ Profile: 'subChanges' }, { docIDs: ['kept-1'] });
    const m = await got;
    assert.equal(m.profile, 'rev');
    assert.equal(m.properties.rev, put.body.rev);
    assert.equal(m.json<{ v: number }>().v, 1);
    conn.close();
  });

  test('without revocations a removed doc comes as a {"_removed":true} rev', async () => {
    const w = new LocalDb();
    w.put('rm-1', { v: 1, channels: ['shared'] });
    const a = await BlipClient.connect(url, alice);
    await a.push(w);
    const bobDb = new LocalDb();
    const b = await BlipClient.connect(url, bob);
    await b.pull(bobDb, { docIDs: ['rm-1'] });
    assert.ok(bobDb.docs.has('rm-1'));
    w.put('rm-1', { v: 2, channels: ['a'] });
    await a.push(w, { since: w.lastSeq - 1 });
    const again = await b.pull(bobDb, { docIDs: ['rm-1'] });
    assert.deepEqual(again.removed, ['rm-1']);
    assert.equal(bobDb.docs.has('rm-1'), false);
    await a.close();
    await b.close();
  });
});

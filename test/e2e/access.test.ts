import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB } from '../helpers/pouchdb.ts';

const SYNC = `function(doc, oldDoc) {
  if (doc.type === 'loop') { while (true) {} }
  if (doc.type === 'secret') requireAdmin();
  if (doc.type === 'owned') {
    requireUser(doc.owner);
    if (oldDoc && oldDoc.owner !== doc.owner) throw({forbidden: 'owner cannot change'});
  }
  if (doc.type === 'bad') throw({forbidden: 'bad docs are refused'});
  if (doc.type === 'crash') { null.x; }
  channel(doc.channels);
  if (doc.type === 'grant') access(doc.users, doc.grantChannels);
  if (doc.type === 'roles') role(doc.users, doc.roles);
  if (doc.ttl) expiry(doc.ttl);
}`;

const auth = (name: string) => ({ authorization: 'Basic ' + Buffer.from(`${name}:pw-${name}`).toString('base64') });

describe('access control end to end', () => {
  let gw: TestGateway;
  let pub: string;
  let adm: string;
  before(async () => {
    gw = await startGateway({
      openGuest: false,
      databases: {
        db: {
          server: 'memory:', sync: SYNC,
          users: {
            alice: { password: 'pw-alice', admin_channels: ['a'] },
            bob: { password: 'pw-bob', admin_channels: ['b'] },
            carol: { password: 'pw-carol', admin_roles: ['team'] },
          },
          roles: { team: { admin_channels: ['t'] } },
        },
      },
    });
    pub = `${gw.publicUrl}/db`;
    adm = `${gw.adminUrl}/db`;
  });
  after(() => gw.stop());

  test('401 without credentials, with WWW-Authenticate; GUEST is disabled by default', async () => {
    const r = await req(`${pub}/_changes`);
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, 'Login required');
    assert.match(r.headers.get('www-authenticate')!, /Basic realm=/);
    const bad = await req(`${pub}/_changes`, { headers: { authorization: 'Basic ' + Buffer.from('alice:nope').toString('base64') } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.reason, 'Invalid login');
  });

  test('each user reads exactly their channels; 403 outside them; roles count', async () => {
    for (const [id, ch] of [['pa', 'a'], ['pb', 'b'], ['pt', 't'], ['pub', '!']] as const) {
      assert.equal((await req(`${adm}/${id}`, { method: 'PUT', json: { channels: [ch] } })).status, 201);
    }
    const ids = async (user: string) => (await req(`${pub}/_changes`, { headers: auth(user) })).body.results
      .map((e: any) => e.id).filter((id: string) => !id.startsWith('_user/')).sort();
    assert.deepEqual(await ids('alice'), ['pa', 'pub']);
    assert.deepEqual(await ids('bob'), ['pb', 'pub']);
    assert.deepEqual(await ids('carol'), ['pt', 'pub']);
    assert.equal((await req(`${pub}/pb`, { headers: auth('alice') })).status, 403);
    assert.equal((await req(`${pub}/pa`, { headers: auth('alice') })).status, 200);
    const all = await req(`${pub}/_all_docs`, { headers: auth('alice') });
    assert.deepEqual(all.body.rows.map((r: any) => r.id).filter((id: string) => id.startsWith('p')), ['pa', 'pub']);
    const keys = await req(`${pub}/_all_docs`, { method: 'POST', headers: auth('alice'), json: { keys: ['pa', 'pb'] } });
    assert.deepEqual(keys.body.rows[1], { key: 'pb', error: 'forbidden', status: 403 });
    const bulk = await req(`${pub}/_bulk_get`, { method: 'POST', headers: { ...auth('alice'), accept: 'application/json' }, json: { docs: [{ id: 'pa' }, { id: 'pb' }] } });
    assert.equal(bulk.body.results[0].docs[0].ok._id, 'pa');
    assert.equal(bulk.body.results[1].docs[0].error.error, 'forbidden');
    const session = await req(`${pub}/_session`, { headers: auth('carol') });
    assert.equal(session.body.userCtx.name, 'carol');
    assert.ok('t' in session.body.userCtx.channels && '!' in session.body.userCtx.channels);
  });

  test('a revision the user cannot see comes back redacted with _removed', async () => {
    const v1 = await req(`${adm}/moving`, { method: 'PUT', json: { channels: ['a'], v: 1 } });
    const v2 = await req(`${adm}/moving?rev=${v1.body.rev}`, { method: 'PUT', json: { channels: ['b'], v: 2 } });
    // Alice can no longer see the current revision...
    assert.equal((await req(`${pub}/moving`, { headers: auth('alice') })).status, 403);
    // ...and asking for it by rev gives the removal stub, which is how clients purge it.
    const red = await req(`${pub}/moving?rev=${v2.body.rev}`, { headers: auth('alice') });
    assert.equal(red.status, 200);
    assert.deepEqual(red.body, { _id: 'moving', _rev: v2.body.rev, _removed: true });
    // Her feed shows the removal entry.
    const feed = await req(`${pub}/_changes?include_docs=true`, { headers: auth('alice') });
    const entry = feed.body.results.find((e: any) => e.id === 'moving');
    assert.deepEqual(entry.removed, ['a']);
    assert.equal(entry.doc._removed, true);
    const active = await req(`${pub}/_changes?active_only=true`, { headers: auth('alice') });
    assert.ok(!active.body.results.some((e: any) => e.id === 'moving'));
  });

  test('the sync function validates writes: rejections store nothing; admin bypasses require*', async () => {
    const bad = await req(`${pub}/x1`, { method: 'PUT', headers: auth('alice'), json: { type: 'bad', channels: ['a'] } });
    assert.equal(bad.status, 403);
    assert.equal(bad.body.reason, 'bad docs are refused');
    assert.equal((await req(`${adm}/x1`)).status, 404);
    const secret = await req(`${pub}/s1`, { method: 'PUT', headers: auth('alice'), json: { type: 'secret' } });
    assert.equal(secret.status, 403);
    assert.equal(secret.body.reason, 'sg admin required');
    assert.equal((await req(`${adm}/s1`, { method: 'PUT', json: { type: 'secret' } })).status, 201);
    const crash = await req(`${pub}/c1`, { method: 'PUT', headers: auth('alice'), json: { type: 'crash' } });
    assert.equal(crash.status, 500);
    assert.equal(crash.body.reason, 'Exception in JS sync function');
    const owned = await req(`${pub}/o1`, { method: 'PUT', headers: auth('alice'), json: { type: 'owned', owner: 'alice', channels: ['a'] } });
    assert.equal(owned.status, 201);
    const steal = await req(`${pub}/o1?rev=${owned.body.rev}`, { method: 'PUT', headers: auth('alice'), json: { type: 'owned', owner: 'bob', channels: ['a'] } });
    assert.equal(steal.status, 403, 'oldDoc is passed to the function');
    const notMine = await req(`${pub}/o2`, { method: 'PUT', headers: auth('bob'), json: { type: 'owned', owner: 'alice' } });
    assert.equal(notMine.body.reason, 'sg wrong user');
    // A rejected row in _bulk_docs fails alone.
    const rows = await req(`${pub}/_bulk_docs`, { method: 'POST', headers: auth('alice'), json: { docs: [{ _id: 'ok1', channels: ['a'] }, { _id: 'no1', type: 'bad' }] } });
    assert.equal(rows.body[0].rev.slice(0, 2), '1-');
    assert.equal(rows.body[1].status, 403);
    assert.equal((await req(`${adm}/no1`)).status, 404);
  });

  // The sync function runs on the event loop (node:vm with a timeout, src/sync/index.ts): while it
  // loops, other requests wait. What holds is that the time limit stops it, the write is refused
  // and stores nothing, and the server then serves the requests that waited and the ones after.
  test('an endless loop is stopped by its time limit: 500 timed out, nothing stored, the server serves on', async () => {
    const [loop, waited] = await Promise.all([
      req(`${adm}/loop1`, { method: 'PUT', json: { type: 'loop' } }),
      (async () => { await new Promise((r) => setTimeout(r, 20)); return req(`${gw.publicUrl}/`); })(),
    ]);
    assert.equal(loop.status, 500);
    assert.equal(loop.body.reason, 'Exception in JS sync function: timed out');
    assert.equal(waited.status, 200);
    assert.equal((await req(`${adm}/loop1`)).status, 404);
    assert.equal((await req(`${adm}/after-loop`, { method: 'PUT', json: { channels: ['a'] } })).status, 201);
  });

  test('grants by documents: backfill with G:N sequences, _user entries, revocation on a new revision', async () => {
    const start = await req(`${pub}/_changes`, { headers: auth('bob') });
    const since = start.body.last_seq;
    // Docs in channel "g" exist before bob is granted it.
    for (let i = 0; i < 3; i++) await req(`${adm}/g${i}`, { method: 'PUT', json: { channels: ['g'] } });
    const none = await req(`${pub}/_changes?since=${since}`, { headers: auth('bob') });
    assert.ok(!none.body.results.some((e: any) => e.id.startsWith('g')));
    const grant = await req(`${adm}/grant-bob`, { method: 'PUT', json: { type: 'grant', users: ['bob'], grantChannels: ['g'] } });
    const after = await req(`${pub}/_changes?since=${since}`, { headers: auth('bob') });
    const gs = after.body.results.filter((e: any) => /^g\d$/.test(e.id));
    assert.equal(gs.length, 3, JSON.stringify(after.body));
    // Backfilled entries carry "G:N" sequences, G being the grant's sequence.
    for (const e of gs) assert.match(String(e.seq), /^\d+:\d+$/);
    assert.ok(after.body.results.some((e: any) => e.id === '_user/bob' && e.changes.length === 0));
    // Paging through the backfill with limit=1 resumes from "G:N" and still yields all of it.
    let cur = since;
    const paged: string[] = [];
    for (let i = 0; i < 20; i++) {
      const page = await req(`${pub}/_changes?since=${encodeURIComponent(cur)}&limit=1`, { headers: auth('bob') });
      if (page.body.results.length === 0) break;
      paged.push(...page.body.results.map((e: any) => e.id));
      cur = page.body.last_seq;
    }
    assert.deepEqual(paged.filter((id) => /^g\d$/.test(id)).sort(), ['g0', 'g1', 'g2']);
    assert.equal((await req(`${pub}/g1`, { headers: auth('bob') })).status, 200);
    // A new revision of the granting doc that no longer grants revokes access.
    await req(`${adm}/grant-bob?rev=${grant.body.rev}`, { method: 'PUT', json: { type: 'grant', users: [], grantChannels: [] } });
    assert.equal((await req(`${pub}/g1`, { headers: auth('bob') })).status, 403);
    const fresh = await req(`${pub}/_changes`, { headers: auth('bob') });
    assert.ok(!fresh.body.results.some((e: any) => /^g\d$/.test(e.id)));
  });

  test('expiry() and _exp set a TTL; show_exp reports it; expired documents are purged', async () => {
    const a = await req(`${adm}/ttl-fn`, { method: 'PUT', json: { channels: ['a'], ttl: 60 } });
    assert.equal(a.status, 201);
    const b = await req(`${adm}/ttl-body`, { method: 'PUT', json: { channels: ['a'], _exp: '2099-01-01T00:00:00Z' } });
    assert.equal(b.status, 201);
    const g = await req(`${adm}/ttl-fn?show_exp=true`);
    const exp = Date.parse(g.body._exp);
    assert.ok(exp > Date.now() + 50_000 && exp < Date.now() + 70_000, g.body._exp);
    assert.equal((await req(`${adm}/ttl-body?show_exp=true`)).body._exp, '2099-01-01T00:00:00.000Z');
    assert.equal((await req(`${adm}/ttl-fn`)).body._exp, undefined, 'only with show_exp');
    // A sweep "two minutes from now" purges the first, not the second.
    const db = gw.gateway.get('db')!;
    const purged = await db.sweepExpired(Math.floor(Date.now() / 1000) + 120);
    assert.equal(purged, 1);
    assert.equal((await req(`${adm}/ttl-fn`)).status, 404);
    assert.equal((await req(`${adm}/ttl-body`)).status, 200);
  });

  test('purging the granting document revokes its grants', async () => {
    await req(`${adm}/pg0`, { method: 'PUT', json: { channels: ['purgeable'] } });
    await req(`${adm}/grant-purge`, { method: 'PUT', json: { type: 'grant', users: ['bob'], grantChannels: ['purgeable'] } });
    assert.equal((await req(`${pub}/pg0`, { headers: auth('bob') })).status, 200);
    // A live feed of bob's is woken by the purge (its _user entry), without any write in its channels.
    const since = (await req(`${pub}/_changes`, { headers: auth('bob') })).body.last_seq;
    // A longpoll that times out answers the empty page it had: `_user/bob` in it means the purge woke it.
    const live = req(`${pub}/_changes?feed=longpoll&since=${encodeURIComponent(since)}&timeout=120000`, { headers: auth('bob') });
    await new Promise((r) => setTimeout(r, 200));
    const p = await req(`${adm}/_purge`, { method: 'POST', json: { 'grant-purge': ['*'] } });
    assert.deepEqual(p.body, { purged: { 'grant-purge': ['*'] } });
    const woke = await live;
    assert.ok(woke.body.results.some((e: any) => e.id === '_user/bob'), `woken by the purge: ${JSON.stringify(woke.body)}`);
    assert.equal((await req(`${pub}/pg0`, { headers: auth('bob') })).status, 403);
  });

  test('role() grants by documents, and role:x grantees', async () => {
    await req(`${adm}/r0`, { method: 'PUT', json: { channels: ['rc'] } });
    await req(`${adm}/_role/reader`, { method: 'PUT', json: { admin_channels: ['rc'] } });
    assert.equal((await req(`${pub}/r0`, { headers: auth('alice') })).status, 403);
    const roles = await req(`${adm}/roles-alice`, { method: 'PUT', json: { type: 'roles', users: ['alice'], roles: ['role:reader'] } });
    assert.equal((await req(`${pub}/r0`, { headers: auth('alice') })).status, 200);
    await req(`${adm}/roles-alice?rev=${roles.body.rev}`, { method: 'DELETE' });
    assert.equal((await req(`${pub}/r0`, { headers: auth('alice') })).status, 403, 'deleting the granting doc revokes');
    await req(`${adm}/grant-team`, { method: 'PUT', json: { type: 'grant', users: ['role:team'], grantChannels: ['rc'] } });
    assert.equal((await req(`${pub}/r0`, { headers: auth('carol') })).status, 200, 'carol has role team');
  });

  test('a live longpoll feed picks up a new grant without reconnecting', async () => {
    const start = await req(`${pub}/_changes`, { headers: auth('alice') });
    await req(`${adm}/late`, { method: 'PUT', json: { channels: ['late'] } });
    // Generous: a longpoll that is never woken answers an empty page at its timeout, which fails below.
    const pending = req(`${pub}/_changes?feed=longpoll&since=${encodeURIComponent(start.body.last_seq)}&timeout=120000`, { headers: auth('alice') });
    await new Promise((r) => setTimeout(r, 200));
    await req(`${adm}/grant-late`, { method: 'PUT', json: { type: 'grant', users: ['alice'], grantChannels: ['late'] } });
    const res = await pending;
    const ids = res.body.results.map((e: any) => e.id);
    assert.ok(ids.includes('late') || ids.includes('_user/alice'), JSON.stringify(res.body));
    const again = await req(`${pub}/_changes?since=${encodeURIComponent(start.body.last_seq)}`, { headers: auth('alice') });
    assert.ok(again.body.results.some((e: any) => e.id === 'late'));
  });

  test('two users on the same channels at the same position, one of them granted a channel since: each gets its own page', async () => {
    // Longpolls at one position share a read when their pages must be equal (same channels, nothing
    // backfilled, no _user entry due). A channel granted through a role after the position makes
    // cid's page differ (a backfill of what that channel already had): it must not be dan's.
    await req(`${adm}/_role/crew`, { method: 'PUT', json: { admin_channels: ['k'] } });
    await req(`${adm}/_user/cid`, { method: 'PUT', json: { password: 'pw-cid', admin_roles: ['crew'] } });
    await req(`${adm}/_user/dan`, { method: 'PUT', json: { password: 'pw-dan', admin_channels: ['k', 'k2'] } });
    await req(`${adm}/in-k2`, { method: 'PUT', json: { channels: ['k2'] } });
    const since = encodeURIComponent((await req(`${pub}/_changes`, { headers: auth('dan') })).body.last_seq);
    await req(`${adm}/_role/crew`, { method: 'PUT', json: { admin_channels: ['k', 'k2'] } });
    const poll = (user: string) => req(`${pub}/_changes?feed=longpoll&since=${since}&timeout=1500`, { headers: auth(user) });
    const [cid, dan] = await Promise.all([poll('cid'), poll('dan')]);
    assert.ok(cid.body.results.some((e: { id: string }) => e.id === 'in-k2'), `cid gets k2's backfill: ${JSON.stringify(cid.body)}`);
    assert.deepEqual(dan.body.results, [], 'dan had k2 already: nothing new');
  });

  test('duplicate keys in a _user body resolve the same way in every layer (last wins)', async () => {
    const body = '{"name":"dup","password":"pw-dup","admin_channels":["evil"],"admin_channels":["fine"]}';
    const r = await req(`${adm}/_user/dup`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    assert.ok(r.status === 201 || r.status === 200, r.text);
    const u = await req(`${adm}/_user/dup`);
    assert.deepEqual(u.body.admin_channels, ['fine']);
    await req(`${adm}/evil-doc`, { method: 'PUT', json: { channels: ['evil'] } });
    assert.equal((await req(`${pub}/evil-doc`, { headers: auth('dup') })).status, 403);
    const s = await req(`${pub}/_session`, { headers: auth('dup') });
    assert.ok(!('evil' in s.body.userCtx.channels));
  });

  test('two PouchDB clients as two users each pull only their channels with the bychannel filter', async () => {
    await req(`${adm}/_bulk_docs`, {
      method: 'POST',
      json: { docs: [
        ...Array.from({ length: 20 }, (_, i) => ({ _id: `pa-${i}`, channels: ['a'] })),
        ...Array.from({ length: 15 }, (_, i) => ({ _id: `pb-${i}`, channels: ['b'] })),
      ] },
    });
    const pull = async (user: string, channels: string) => {
      const remote = new PouchDB(pub, { skip_setup: true, auth: { username: user, password: `pw-${user}` } });
      const local = localDb();
      const r = await local.replicate.from(remote, { filter: 'sync_gateway/bychannel', query_params: { channels } });
      assert.equal(r.ok, true);
      return (await local.allDocs()).rows.map((x: any) => x.id);
    };
    const a = await pull('alice', 'a');
    assert.equal(a.filter((id: string) => id.startsWith('pa-')).length, 20);
    assert.ok(a.every((id: string) => !id.startsWith('pb')), 'alice got none of b');
    const b = await pull('bob', 'b');
    assert.equal(b.filter((id: string) => id.startsWith('pb-')).length, 15);
    assert.ok(b.every((id: string) => !id.startsWith('pa')));
    // Asking for a channel one may not see yields nothing from it.
    const sneaky = await pull('alice', 'b');
    assert.ok(sneaky.every((id: string) => !id.startsWith('pb')));
  });
});

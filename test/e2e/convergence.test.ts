/**
 * Convergence (issue 8, item 2; issue 20), in the style of PouchDB's "fuzzy" tests: three
 * unmodified PouchDB replicas make seeded random creates, updates, deletes, conflicting offline
 * edits and attachment changes (added, replaced, removed), while a fourth party writes straight to
 * the server over REST (the same kinds of edits, attachment PUT/DELETE, and conflicting branches
 * that differ in attachments pushed with new_edits=false). They sync through Syncgate with pushes,
 * pulls and two-way syncs in random order, including live replications cut off after a random
 * delay. Then everyone syncs until quiet, and every replica and the server must hold the same
 * leaves (deleted or not), each leaf with the same body and the same attachment bytes, the same
 * winner and the same `_conflicts`; and the server must hold for every leaf exactly the bytes the
 * party that made it wrote.
 *
 * One difference is PouchDB's and not the server's, and it is asserted to be exactly that: when
 * PouchDB 9 pulls a revision of a document it already has, and an attachment's digest differs from
 * its local winner's one of that name, it fetches `GET /{db}/{doc}/{att}` WITHOUT `?rev=`
 * (pouchdb-replication getDocAttachmentsFromTargetOrSource), i.e. the server's winner's attachment,
 * and stores those bytes under the revision it pulls (a 404 there makes it fetch again with the
 * rev, so only a winner that has another attachment of that name does harm). Before issue 20 every
 * attachment took that path (Syncgate's REST digests were sha1, PouchDB's md5); now only a conflict
 * whose branches hold different attachments under one name does. Every replica's requests are
 * recorded, and a leaf whose bytes differ from the server's passes only if that replica fetched that
 * attachment without `rev` and got exactly those bytes, and never fetched it with that `rev`: a
 * server serving the winner's bytes for every revision fails it.
 *
 * The seed is printed; replay a failure with
 *   SEED=<n> node --import tsx --test test/e2e/convergence.test.ts
 * CONVERGENCE_SEEDS sets the number of seeds (default 40, about a minute on 2 cores;
 * CONVERGENCE_SEEDS=200 for the long run), CONVERGENCE_STEPS the random steps per seed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB } from '../helpers/pouchdb.ts';
import { seededRandom as rng } from '../helpers/random.ts';

const FIRST_SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const SEEDS = process.env.SEED ? 1 : Number(process.env.CONVERGENCE_SEEDS ?? 40);
const STEPS = Number(process.env.CONVERGENCE_STEPS ?? 120);
const IDS = 8; // few ids, so that replicas edit the same documents and conflict

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** One leaf as every party must agree on it. */
interface LeafState {
  deleted: boolean;
  body: string; // without special properties (canonical key order)
  attachments: Record<string, string>; // name → sha256 of the bytes
}

/** One document as every party must agree on it. */
interface DocState {
  leaves: Record<string, LeafState>; // by rev
  winner: string;
  conflicts: string[]; // live non-winning leaves, sorted
}

/** An attachment GET a replica sent: which revision it named (null: none) and the bytes it got. */
interface AttachmentFetch { doc: string; name: string; rev: string | null; status: number; sha?: string }

function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${sortedJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

function userBody(doc: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!k.startsWith('_')) out[k] = v;
  return sortedJson(out);
}

function leafOf(doc: any, bytes: (a: any) => Buffer): LeafState {
  return {
    deleted: doc._deleted === true,
    body: userBody(doc),
    attachments: Object.fromEntries(Object.entries(doc._attachments ?? {}).map(([n, a]: [string, any]) => [n, sha(bytes(a))])),
  };
}

function docState(leaves: Record<string, LeafState>, winner: string): DocState {
  return { leaves, winner, conflicts: Object.keys(leaves).filter((r) => !leaves[r].deleted && r !== winner).sort() };
}

async function pouchState(db: any, id: string): Promise<DocState | undefined> {
  let open: any[];
  try {
    open = await db.get(id, { open_revs: 'all', attachments: true, binary: true });
  } catch (e: any) {
    if (e.status === 404) return undefined;
    throw e;
  }
  if (open.length === 0) return undefined;
  const leaves: Record<string, LeafState> = {};
  for (const l of open) leaves[l.ok._rev] = leafOf(l.ok, (a) => Buffer.from(a.data));
  const row = (await db.allDocs({ keys: [id] })).rows[0];
  const st = docState(leaves, row.value.rev);
  if (row.value.deleted !== true) {
    const doc = await db.get(id, { conflicts: true });
    assert.deepEqual([...(doc._conflicts ?? [])].sort(), st.conflicts, `PouchDB's own _conflicts of ${id}`);
  }
  return st;
}

async function serverState(admin: string, id: string, winners: Map<string, string>): Promise<DocState | undefined> {
  const winner = winners.get(id);
  if (!winner) return undefined;
  const res = await req(`${admin}/${encodeURIComponent(id)}?open_revs=all&attachments=true`, { headers: { Accept: 'application/json' } });
  assert.equal(res.status, 200, res.text);
  const leaves: Record<string, LeafState> = {};
  for (const l of res.body as any[]) leaves[l.ok._rev] = leafOf(l.ok, (a) => Buffer.from(a.data, 'base64'));
  const st = docState(leaves, winner);
  if (!leaves[winner].deleted) {
    const doc = (await req(`${admin}/${encodeURIComponent(id)}`)).body;
    assert.equal(doc._rev, winner, `server GET ${id} returns the winner`);
  }
  return st;
}

/** The server's winners from its changes feed, main_only style. */
async function serverWinners(admin: string): Promise<Map<string, string>> {
  const feed = await req(`${admin}/_changes`);
  const out = new Map<string, string>();
  for (const r of feed.body.results) if (!r.id.startsWith('_user/')) out.set(r.id, r.changes[0].rev);
  return out;
}

/** A remote PouchDB whose attachment GETs (and the bytes they got) are recorded in `log`. */
function recordingRemote(url: string, log: AttachmentFetch[]): any {
  const dbPath = new URL(url).pathname;
  return new PouchDB(url, {
    skip_setup: true,
    fetch: async (u: string, opts: any) => {
      const res = await (PouchDB as any).fetch(u, opts);
      const parsed = new URL(u);
      const parts = parsed.pathname.slice(dbPath.length + 1).split('/').map(decodeURIComponent);
      if ((opts?.method ?? 'GET') === 'GET' && parts.length === 2 && !parts[0].startsWith('_')) {
        const entry: AttachmentFetch = { doc: parts[0], name: parts[1], rev: parsed.searchParams.get('rev'), status: res.status };
        if (res.ok) entry.sha = sha(Buffer.from(await res.clone().arrayBuffer()));
        log.push(entry);
      }
      return res;
    },
  });
}

async function runSeed(gw: TestGateway, seed: number): Promise<{ ops: Record<string, number>; digest: string }> {
  const next = rng(seed);
  const int = (n: number) => Math.floor(next() * n);
  const chance = (p: number) => next() < p;
  const dbName = `conv${seed % 100000}`;
  assert.equal((await req(`${gw.adminUrl}/${dbName}/`, { method: 'PUT', json: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } } })).status, 201);
  const url = `${gw.publicUrl}/${dbName}`;
  const replicas = [localDb(), localDb(), localDb()];
  const fetches: AttachmentFetch[][] = replicas.map(() => []);
  const remote = (db: any) => recordingRemote(url, fetches[replicas.indexOf(db)]);
  const ops: Record<string, number> = {};
  /** rev → attachment name → sha256, as the party that created the revision wrote it. */
  const truth = new Map<string, Record<string, string>>();
  const record = async (db: any, id: string, rev: string) => {
    const d = await db.get(id, { rev, attachments: true, binary: true });
    truth.set(rev, Object.fromEntries(Object.entries(d._attachments ?? {}).map(([n, a]: [string, any]) => [n, sha(Buffer.from(a.data))])));
  };
  const count = (k: string) => (ops[k] = (ops[k] ?? 0) + 1);
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const attachmentBytes = () => randomBytes(int(3) === 0 ? 5000 : int(300));
  const body = (by: number) => ({ v: int(1000), by, nested: { list: [int(9), 'x'.repeat(int(5))] } });

  /** A random local edit on a replica: create, update, delete, attachment add/replace/remove, resurrect. */
  const edit = async (db: any) => {
    const id = `doc-${int(IDS)}`;
    let cur: any;
    try { cur = await db.get(id); } catch { cur = undefined; }
    const b: Record<string, unknown> = body(replicas.indexOf(db));
    if (!cur) {
      count('create-or-resurrect');
      if (chance(0.3)) b._attachments = { 'a.bin': { content_type: 'application/octet-stream', data: randomBytes(int(600)) } };
      const res = await db.put({ _id: id, ...b }).catch((e: any) => { if (e.status !== 409) throw e; });
      if (res) await record(db, id, res.rev);
      return;
    }
    const r = next();
    if (r < 0.2) {
      count('delete');
      await db.remove(cur);
    } else if (r < 0.45) {
      count('attachment');
      const atts = { ...(cur._attachments ?? {}) };
      const name = `att-${int(3)}.bin`;
      if (atts[name] && chance(0.5)) delete atts[name];
      else atts[name] = { content_type: 'application/octet-stream', data: attachmentBytes() };
      await record(db, id, (await db.put({ ...cur, ...b, _attachments: atts })).rev);
    } else {
      count('update');
      await record(db, id, (await db.put({ ...b, _id: id, _rev: cur._rev, _attachments: cur._attachments })).rev);
    }
  };

  /** A random write straight to the server over REST (the truth of what it wrote is known from the request). */
  const serverEdit = async () => {
    const id = `doc-${int(IDS)}`;
    const docUrl = `${url}/${id}`;
    const cur = await req(`${docUrl}?revs=true`);
    const b: Record<string, unknown> = body(9);
    if (cur.status === 404) {
      count('server-create');
      const atts: Record<string, Buffer> = chance(0.4) ? { [`att-${int(3)}.bin`]: attachmentBytes() } : {};
      if (Object.keys(atts).length) b._attachments = Object.fromEntries(Object.entries(atts).map(([n, d]) => [n, { content_type: 'application/octet-stream', data: d.toString('base64') }]));
      const r = await req(docUrl, { method: 'PUT', json: b });
      assert.equal(r.status, 201, r.text);
      truth.set(r.body.rev, Object.fromEntries(Object.entries(atts).map(([n, d]) => [n, sha(d)])));
      return;
    }
    assert.equal(cur.status, 200, cur.text);
    const rev: string = cur.body._rev;
    const kept: Record<string, string> = { ...truth.get(rev) };
    const stubs: Record<string, unknown> = { ...(cur.body._attachments ?? {}) }; // md5 digests, as a REST client gets them
    const k = next();
    if (k < 0.15) {
      count('server-delete');
      const r = await req(`${docUrl}?rev=${rev}`, { method: 'DELETE' });
      assert.equal(r.status, 200, r.text);
    } else if (k < 0.35) {
      // Attachment endpoint: add/replace one, or remove one.
      const name = `att-${int(3)}.bin`;
      if (stubs[name] && chance(0.4)) {
        count('server-attachment-delete');
        const r = await fetch(`${docUrl}/${name}?rev=${rev}`, { method: 'DELETE' });
        assert.equal(r.status, 200);
        delete kept[name];
        truth.set((await r.json()).rev, kept);
      } else {
        count('server-attachment-put');
        const data = attachmentBytes();
        const r = await fetch(`${docUrl}/${name}?rev=${rev}`, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(r.status, 201);
        truth.set((await r.json()).rev, { ...kept, [name]: sha(data) });
      }
    } else if (k < 0.6) {
      // A conflicting branch beside the winner (a sibling), whose attachments differ from it.
      count('server-conflicting-branch');
      const revs = cur.body._revisions as { start: number; ids: string[] };
      const digest = createHash('md5').update(`${seed}:${next()}`).digest('hex');
      const atts: Record<string, unknown> = {};
      const branchTruth: Record<string, string> = {};
      for (const name of ['a.bin', 'att-0.bin', 'att-1.bin', 'att-2.bin']) {
        if (!chance(0.4)) continue;
        const data = attachmentBytes();
        atts[name] = { content_type: 'application/octet-stream', data: data.toString('base64'), revpos: revs.start };
        branchTruth[name] = sha(data);
      }
      const doc = {
        ...b, _id: id, _rev: `${revs.start}-${digest}`,
        _revisions: { start: revs.start, ids: [digest, ...revs.ids.slice(1)] },
        ...(Object.keys(atts).length ? { _attachments: atts } : {}),
      };
      const r = await req(`${url}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [doc] } });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.body[0].error, undefined, r.text);
      truth.set(doc._rev, branchTruth);
    } else {
      count('server-update');
      // Keep the stubs (naming md5 digests), sometimes replace one inline.
      if (Object.keys(stubs).length && chance(0.3)) {
        const name = Object.keys(stubs)[int(Object.keys(stubs).length)];
        const data = attachmentBytes();
        stubs[name] = { content_type: 'application/octet-stream', data: data.toString('base64') };
        kept[name] = sha(data);
      }
      const r = await req(`${docUrl}?rev=${rev}`, { method: 'PUT', json: { ...b, _attachments: stubs } });
      assert.equal(r.status, 201, r.text);
      truth.set(r.body.rev, kept);
    }
  };

  for (let step = 0; step < STEPS; step++) {
    const db = replicas[int(3)];
    const r = next();
    if (r < 0.35) {
      await edit(db);
    } else if (r < 0.47) {
      await serverEdit();
    } else if (r < 0.55) {
      // A conflicting offline edit: two replicas change the same document without syncing.
      count('offline-conflict');
      await edit(replicas[0]);
      await edit(replicas[1]);
    } else if (r < 0.67) {
      count('push');
      await db.replicate.to(remote(db));
    } else if (r < 0.79) {
      count('pull');
      await db.replicate.from(remote(db));
    } else if (r < 0.87) {
      count('sync');
      await db.sync(remote(db));
    } else {
      // A live replication in one direction, cut off after k batches of b documents (or once it
      // has caught up). Cancelling inside the 'change' handler stops it before the next batch, so
      // the cut-off point depends on the seed alone and a replay repeats it.
      count('live-cut');
      const batch = 1 + int(2);
      const k = 1 + int(3);
      const rep = chance(0.5)
        ? db.replicate.to(remote(db), { live: true, batch_size: batch })
        : db.replicate.from(remote(db), { live: true, batch_size: batch });
      let batches = 0;
      const done = new Promise<void>((resolve) => { rep.on('complete', () => resolve()); rep.on('error', () => resolve()); });
      rep.on('change', () => { if (++batches >= k) { count('live-cut-mid-stream'); rep.cancel(); } });
      rep.on('paused', (err: unknown) => { if (!err) rep.cancel(); });
      await done;
    }
  }

  // Everyone syncs until nothing moves: two full rounds after the last write are enough.
  for (let round = 0; round < 4; round++) {
    let moved = 0;
    for (const db of replicas) {
      const res = await db.sync(remote(db));
      moved += res.push.docs_written + res.pull.docs_written;
    }
    if (round > 0 && moved === 0) break;
  }

  const admin = `${gw.adminUrl}/${dbName}`;
  const winners = await serverWinners(admin);
  const ids = new Set<string>(winners.keys());
  for (const db of replicas) for (const row of (await db.allDocs()).rows) ids.add(row.id);
  for (const id of [...ids].sort()) {
    const server = await serverState(admin, id, winners);
    assert.ok(server, `SEED=${seed}: ${id} is on a replica but not on the server`);
    if (server.conflicts.length) count('end:conflicted-docs');
    if (server.leaves[server.winner].deleted) count('end:deleted-docs');
    if (Object.keys(server.leaves).length > 1) count('end:branched-docs');
    for (const [rev, leaf] of Object.entries(server.leaves)) {
      if (Object.keys(leaf.attachments).length) count('end:leaves-with-attachments');
      if (!leaf.deleted) assert.deepEqual(leaf.attachments, truth.get(rev), `SEED=${seed}: the server's attachments of ${id} ${rev} are the ones its writer wrote`);
    }
    for (let i = 0; i < replicas.length; i++) {
      const mine = await pouchState(replicas[i], id);
      assert.ok(mine, `SEED=${seed}: replica ${i} lacks ${id}`);
      for (const [rev, leaf] of Object.entries(mine.leaves)) {
        const theirs = server.leaves[rev];
        if (!theirs) continue; // reported by the deepEqual below
        for (const [name, bytes] of Object.entries(leaf.attachments)) {
          if (theirs.attachments[name] === undefined || theirs.attachments[name] === bytes) continue;
          // Exactly PouchDB's rev-less fetch (see the header): it fetched this attachment without
          // `rev`, got these very bytes, and never asked for this revision's.
          const log = fetches[i].filter((f) => f.doc === id && f.name === name);
          assert.ok(log.some((f) => f.rev === null && f.sha === bytes),
            `SEED=${seed}: replica ${i} holds other bytes than the server for ${id} ${rev} ${name}, and not from a rev-less GET: ${JSON.stringify(log)}`);
          assert.ok(!log.some((f) => f.rev === rev),
            `SEED=${seed}: replica ${i} fetched ${id}/${name}?rev=${rev} and still holds other bytes than the server's: ${JSON.stringify(log)}`);
          count('pouchdb-revless-fetch-wrong-bytes');
          leaf.attachments[name] = theirs.attachments[name];
        }
      }
      assert.deepEqual(mine, server, `SEED=${seed}: replica ${i} differs from the server on ${id}`);
    }
  }
  assert.ok(ids.size > 0);
  const digest = createHash('sha256');
  for (const id of [...ids].sort()) digest.update(JSON.stringify([id, await serverState(admin, id, winners)]));
  return { ops, digest: digest.digest('hex').slice(0, 12) };
}

describe(`convergence of three PouchDB replicas and direct writes through Syncgate (SEED=${FIRST_SEED})`, () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ databases: {} }); });
  after(() => gw.stop());

  for (let k = 0; k < SEEDS; k++) {
    const seed = (FIRST_SEED + k * 7919) % 2 ** 31;
    test(`seed ${seed}: ${STEPS} random steps, then every replica and the server agree on every leaf`, async () => {
      console.log(`convergence seed: SEED=${seed} (replay: SEED=${seed} node --import tsx --test test/e2e/convergence.test.ts)`);
      try {
        const { ops, digest } = await runSeed(gw, seed);
        // The final state's digest: a replay of the seed reaches the same one.
        console.log(`seed ${seed}: final state ${digest}; ${Object.entries(ops).sort().map(([k2, n]) => `${k2} ${n}`).join(', ')}`);
      } catch (err) {
        console.log(`convergence FAILED with SEED=${seed}`);
        throw err;
      }
    });
  }
});

describe('atts_since counts only ancestors of the requested revision (CouchDB-style replicators)', () => {
  // A replicator passes the possible_ancestors from _revs_diff as atts_since. Those can be leaves of
  // other branches; only an ancestor of the revision being fetched proves the client has its
  // attachments. Counting the others sent stubs the client could never resolve, and it diverged.
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.stop());

  test('GET ?atts_since and _bulk_get: stubs only for attachments the client has through an ancestor', async () => {
    const admin = `${gw.adminUrl}/db`;
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const put = (body: unknown) => req(`${admin}/d?new_edits=false`, { method: 'PUT', json: body });
    assert.equal((await put({ _rev: '5-aaaa', _revisions: { start: 5, ids: ['aaaa', 'a4', 'a3', 'a2', 'root'] }, v: 'A' })).status, 201);
    assert.equal((await put({
      _rev: '3-bbbb', _revisions: { start: 3, ids: ['bbbb', 'b2', 'root'] }, v: 'B',
      _attachments: { 'old.txt': { data: b64('from b2'), revpos: 2 }, 'new.txt': { data: b64('from b3'), revpos: 3 } },
    })).status, 201);
    const q = (v: unknown) => encodeURIComponent(JSON.stringify(v));
    const J = { Accept: 'application/json' };
    // 5-aaaa is on the other branch: both attachments come inline.
    const other = (await req(`${admin}/d?rev=3-bbbb&attachments=true&atts_since=${q(['5-aaaa'])}`, { headers: J })).body;
    assert.equal(Buffer.from(other._attachments['old.txt'].data, 'base64').toString(), 'from b2');
    assert.equal(Buffer.from(other._attachments['new.txt'].data, 'base64').toString(), 'from b3');
    // 2-b2 is an ancestor: old.txt (revpos 2) is a stub, new.txt (revpos 3) inline.
    const anc = (await req(`${admin}/d?rev=3-bbbb&attachments=true&atts_since=${q(['5-aaaa', '2-b2'])}`, { headers: J })).body;
    assert.equal(anc._attachments['old.txt'].stub, true);
    assert.equal(Buffer.from(anc._attachments['new.txt'].data, 'base64').toString(), 'from b3');
    const bulk = (await req(`${admin}/_bulk_get?attachments=true`, { method: 'POST', json: { docs: [{ id: 'd', rev: '3-bbbb', atts_since: ['5-aaaa'] }] }, headers: J })).body;
    const doc = bulk.results[0].docs[0].ok;
    assert.equal(Buffer.from(doc._attachments['old.txt'].data, 'base64').toString(), 'from b2');
  });
});

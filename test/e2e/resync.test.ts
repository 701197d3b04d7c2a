/**
 * `_resync` end to end on a SQLite file: the operator's flow is to restart the gateway on the same
 * file with a changed sync function, take the database offline, resync, and bring it online. A
 * PouchDB client's pull afterwards must match what the new function allows. Then: refusals, stop /
 * resume / reset, and a SIGKILL of the gateway process in the middle of a resync.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { freePort, startCli, stopCli } from '../helpers/cli-process.ts';
import { localDb, remoteDb } from '../helpers/pouchdb.ts';

const dir = mkdtempSync(join(tmpdir(), 'syncgate-resync-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SYNC_V1 = `function (doc) { channel(doc.ch); }`;
// v2: "move" docs leave "a" for "z"; a grant doc now gives alice channel "b".
const SYNC_V2 = `function (doc) {
  if (doc.tag === 'move') channel('z'); else channel(doc.ch);
  if (doc.type === 'grant') access('alice', 'b');
}`;
/** A deliberately slow function (a busy loop per document), so a run lasts long enough to stop. */
const SYNC_SLOW = `function (doc) { var t = Date.now(); while (Date.now() - t < 2) {} channel(doc.ch === 'a' ? 'a2' : doc.ch); }`;

const ALICE = { alice: { password: 'alice-pw', admin_channels: ['a'] } };
const auth = { Authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` };

function gatewayOn(file: string, sync: string): Promise<TestGateway> {
  return startGateway({ databases: { db: { server: `sqlite:${file}`, sync, users: ALICE } } });
}

/** Polls `GET /db/_resync` until its status is one of `want` (generous bound, no timing assertion). */
async function resyncStatus(admin: string, want: string[], until?: (s: Record<string, any>) => boolean): Promise<Record<string, any>> {
  for (let i = 0; i < 1200; i++) {
    const r = await req(`${admin}/db/_resync`);
    assert.equal(r.status, 200);
    if (want.includes(r.body.status) && (!until || until(r.body))) return r.body;
    await sleep(50);
  }
  throw new Error(`_resync never reached ${want.join('/')}`);
}

async function bulk(url: string, docs: Record<string, unknown>[]): Promise<void> {
  const r = await req(`${url}/db/_bulk_docs`, { method: 'POST', json: { docs } });
  assert.equal(r.status, 201);
}

describe('_resync (SQLite file, gateway restarted with a new sync function)', () => {
  test('a PouchDB pull after the resync matches the new sync function: removed docs go, granted ones arrive', async () => {
    const file = join(dir, 'pouch.sqlite');
    let gw = await gatewayOn(file, SYNC_V1);
    await bulk(gw.adminUrl, [
      { _id: 'd1', ch: 'a' }, { _id: 'd2', ch: 'a', tag: 'move' }, { _id: 'd3', ch: 'b' }, { _id: 'g1', ch: 'x', type: 'grant' },
    ]);
    const never = await req(`${gw.adminUrl}/db/_resync`);
    assert.deepEqual(never.body, {
      status: 'completed', start_time: '0001-01-01T00:00:00Z', last_error: '', resync_id: '', docs_changed: 0, docs_processed: 0,
    });
    const local = localDb();
    const remote = () => remoteDb(`${gw.publicUrl.replace('//', '//alice:alice-pw@')}/db`);
    await local.replicate.from(remote());
    assert.deepEqual((await local.allDocs()).rows.map((r: { id: string }) => r.id), ['d1', 'd2']);
    await gw.stop();

    gw = await gatewayOn(file, SYNC_V2);
    try {
      // Online: a resync is refused, and nothing changes.
      const online = await req(`${gw.adminUrl}/db/_resync?action=start`, { method: 'POST' });
      assert.equal(online.status, 503);
      assert.deepEqual(online.body, { error: 'Service Unavailable', reason: 'Database must be _offline before calling _resync' });
      assert.equal((await req(`${gw.adminUrl}/db/_resync`)).body.resync_id, '');
      assert.equal((await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
      const started = await req(`${gw.adminUrl}/db/_resync?action=start`, { method: 'POST' });
      assert.equal(started.status, 200);
      assert.ok(['running', 'completed'].includes(started.body.status));
      assert.match(started.body.resync_id, /^[0-9a-f-]{36}$/);
      assert.match(started.body.start_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const done = await resyncStatus(gw.adminUrl, ['completed']);
      assert.deepEqual({ ...done, start_time: undefined }, {
        status: 'completed', start_time: undefined, last_error: '', resync_id: started.body.resync_id, docs_changed: 2, docs_processed: 4,
      });
      // The run ends Offline; the operator brings it online.
      assert.equal((await req(`${gw.adminUrl}/db/`)).body.state, 'Offline');
      assert.equal((await req(`${gw.adminUrl}/db/_online`, { method: 'POST' })).status, 200);
      for (let i = 0; i < 200 && (await req(`${gw.adminUrl}/db/`)).body.state !== 'Online'; i++) await sleep(25);

      // The user's feed shows d2 leaving "a" and d3 arriving by the new grant.
      const feed = await req(`${gw.publicUrl}/db/_changes`, { headers: auth });
      const byId = new Map(feed.body.results.map((e: { id: string }) => [e.id, e]));
      assert.deepEqual((byId.get('d2') as { removed?: string[] }).removed, ['a']);
      assert.ok(byId.has('d3'), 'backfill of the newly granted channel');
      assert.equal((await req(`${gw.publicUrl}/db/d3`, { headers: auth })).status, 200);
      assert.equal((await req(`${gw.publicUrl}/db/d2`, { headers: auth })).status, 403);

      // The same PouchDB pulls on from its checkpoint: it gets the newly granted d3. Its copy of d2
      // stays at the revision it had: the CouchDB protocol has no removal, and the feed's `removed`
      // entry names a revision PouchDB already holds (as against Sync Gateway).
      await local.replicate.from(remote());
      assert.equal((await local.get('d3')).ch, 'b');
      assert.equal((await local.get('d2'))._rev, (byId.get('d2') as { changes: { rev: string }[] }).changes[0].rev);
      // A fresh client pulls exactly what v2 allows.
      // (d2 reaches it only as the `removed` entry's redacted revision: no body.)
      const fresh = localDb();
      await fresh.replicate.from(remote());
      const pulled = (await fresh.allDocs({ include_docs: true })).rows.map((r: { doc: Record<string, unknown> }) => r.doc);
      const withBody = (d: Record<string, unknown>) => Object.keys(d).some((k) => !k.startsWith('_'));
      assert.deepEqual(pulled.filter(withBody).map((d: Record<string, unknown>) => [d._id, d.ch]), [['d1', 'a'], ['d3', 'b']]);
      assert.deepEqual(pulled.filter((d: Record<string, unknown>) => !withBody(d)).map((d: Record<string, unknown>) => d._id), ['d2']);

      // A completed run is not resumed: the next start is a new run.
      assert.equal((await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
      const again = await req(`${gw.adminUrl}/db/_resync`, { method: 'POST' });
      assert.notEqual(again.body.resync_id, started.body.resync_id);
      const second = await resyncStatus(gw.adminUrl, ['completed'], (s) => s.resync_id === again.body.resync_id);
      assert.equal(second.docs_processed, 4);
      assert.equal(second.docs_changed, 0, 'nothing changes when the function is the same');
    } finally {
      await gw.stop();
    }
  });

  test('refusals, stop, resume and reset', async () => {
    const file = join(dir, 'stop.sqlite');
    let gw = await gatewayOn(file, SYNC_V1);
    const N = 1500;
    for (let k = 0; k < N; k += 500) {
      await bulk(gw.adminUrl, Array.from({ length: 500 }, (_, i) => ({ _id: `doc-${String(k + i).padStart(5, '0')}`, ch: 'a' })));
    }
    await gw.stop();
    gw = await gatewayOn(file, SYNC_SLOW);
    const a = gw.adminUrl;
    try {
      await req(`${a}/db/_offline`, { method: 'POST' });
      const bad = await req(`${a}/db/_resync?action=go`, { method: 'POST' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.reason, "Unknown parameter for 'action'. Must be start or stop");
      const malformed = await req(`${a}/db/_resync`, { method: 'POST', body: '{"regenerate_sequences":', headers: { 'content-type': 'application/json' } });
      assert.equal(malformed.status, 400);
      const notRunning = await req(`${a}/db/_resync?action=stop`, { method: 'POST' });
      assert.equal(notRunning.status, 400);
      assert.equal(notRunning.body.reason, 'Database _resync is not running');
      assert.equal((await req(`${a}/db/_resync`)).body.resync_id, '', 'refused requests started nothing');
      assert.equal((await req(`${a}/db/`)).body.state, 'Offline');

      const first = (await req(`${a}/db/_resync`, { method: 'POST' })).body;
      const twice = await req(`${a}/db/_resync`, { method: 'POST' });
      assert.equal(twice.status, 503);
      assert.equal(twice.body.reason, 'Database _resync already in progress');
      assert.equal((await req(`${a}/db/`)).body.state, 'Resyncing');
      const online = await req(`${a}/db/_online`, { method: 'POST' });
      assert.equal(online.status, 503);
      assert.equal((await req(`${gw.publicUrl}/db/doc-00001`, { headers: auth })).status, 503);
      await resyncStatus(a, ['running'], (s) => s.docs_processed > 0);
      const stopping = await req(`${a}/db/_resync?action=stop`, { method: 'POST' });
      assert.equal(stopping.status, 200);
      assert.equal(stopping.body.status, 'stopping');
      const stopped = await resyncStatus(a, ['stopped']);
      assert.equal(stopped.resync_id, first.resync_id);
      assert.ok(stopped.docs_processed > 0 && stopped.docs_processed < N, `part done: ${stopped.docs_processed}`);
      assert.equal((await req(`${a}/db/`)).body.state, 'Offline');

      // A start resumes the stopped run: same id, counters carried on, every document exactly once.
      const resumed = (await req(`${a}/db/_resync`, { method: 'POST' })).body;
      assert.equal(resumed.resync_id, first.resync_id);
      assert.equal(resumed.docs_processed, stopped.docs_processed);
      const done = await resyncStatus(a, ['completed']);
      assert.equal(done.docs_processed, N);
      assert.equal(done.docs_changed, N);
      // Every document is in its new channel.
      const all = await req(`${a}/db/_all_docs?channels=true&limit=3`);
      assert.equal(all.status, 503, 'still offline after the run');
      await req(`${a}/db/_online`, { method: 'POST' });
      for (let i = 0; i < 200 && (await req(`${a}/db/`)).body.state !== 'Online'; i++) await sleep(25);
      const inA2 = await req(`${a}/db/_changes?filter=sync_gateway/bychannel&channels=a2`);
      assert.equal(inA2.body.results.length, N);

      // reset=true starts over after a stop: a new id, counters from zero.
      await req(`${a}/db/_offline`, { method: 'POST' });
      const r1 = (await req(`${a}/db/_resync`, { method: 'POST' })).body;
      await resyncStatus(a, ['running'], (s) => s.docs_processed > 0);
      await req(`${a}/db/_resync?action=stop`, { method: 'POST' });
      await resyncStatus(a, ['stopped']);
      const reset = (await req(`${a}/db/_resync?action=start&reset=true`, { method: 'POST' })).body;
      assert.notEqual(reset.resync_id, r1.resync_id);
      assert.equal(reset.docs_processed, 0);
      const fin = await resyncStatus(a, ['completed'], (s) => s.resync_id === reset.resync_id);
      assert.equal(fin.docs_processed, N);
      assert.equal(fin.docs_changed, 0);
      // Progress is exported as metrics.
      const metrics = await req(`${gw.metricsUrl}/_metrics`);
      assert.match(metrics.text, new RegExp(`syncgate_background_job_progress\\{database="db",job="resync",counter="docs_processed"\\} ${N}`));
    } finally {
      await gw.stop();
    }
  });

  test('regenerate_sequences gives every document a new sequence even when nothing else changes', async () => {
    const gw = await startGateway({ databases: { db: { server: 'memory:', sync: SYNC_V1, users: ALICE } } });
    try {
      const a = gw.adminUrl;
      await bulk(a, [{ _id: 'r1', ch: 'a' }, { _id: 'r2', ch: 'a' }, { _id: 'r3', ch: 'b' }]);
      const before = (await req(`${a}/db/`)).body.update_seq;
      await req(`${a}/db/_offline`, { method: 'POST' });
      // Regenerating via the body's flag (the query parameter works too).
      const started = await req(`${a}/db/_resync`, { method: 'POST', json: { regenerate_sequences: true } });
      assert.equal(started.status, 200);
      const done = await resyncStatus(a, ['completed']);
      assert.equal(done.docs_processed, 3);
      assert.equal(done.docs_changed, 0);
      await req(`${a}/db/_online`, { method: 'POST' });
      for (let i = 0; i < 200 && (await req(`${a}/db/`)).body.state !== 'Online'; i++) await sleep(25);
      const feed = await req(`${a}/db/_changes?since=${before}`);
      assert.deepEqual(feed.body.results.map((e: { id: string }) => e.id).sort(), ['r1', 'r2', 'r3']);
      assert.equal((await req(`${a}/db/`)).body.update_seq, before + 3);
      assert.equal((await req(`${gw.publicUrl}/db/r1`, { headers: auth })).body.ch, 'a', 'same revision, same access');
    } finally {
      await gw.stop();
    }
  });

  test('SIGKILL of the gateway during a resync: after restart it reports stopped, and a start resumes the run', async () => {
    const [pub, adm, met] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'crash.sqlite');
    const cfg = (sync: string) => {
      const path = join(dir, `crash-${sync === SYNC_V1 ? 1 : 2}.json`);
      writeFileSync(path, JSON.stringify({
        interface: `127.0.0.1:${pub}`, adminInterface: `127.0.0.1:${adm}`, metricsInterface: `127.0.0.1:${met}`,
        logging: { console: { log_level: 'warn' } },
        databases: { db: { server: `sqlite:${file}`, sync, users: ALICE } },
      }));
      return path;
    };
    const admin = `http://127.0.0.1:${adm}`;
    const N = 1500;
    let proc = await startCli([cfg(SYNC_V1)], dir, pub);
    try {
      for (let k = 0; k < N; k += 500) {
        await bulk(admin, Array.from({ length: 500 }, (_, i) => ({ _id: `doc-${String(k + i).padStart(5, '0')}`, ch: 'a' })));
      }
      await stopCli(proc.child);
      proc = await startCli([cfg(SYNC_SLOW)], dir, pub);
      await req(`${admin}/db/_offline`, { method: 'POST' });
      const first = (await req(`${admin}/db/_resync`, { method: 'POST' })).body;
      await resyncStatus(admin, ['running'], (s) => s.docs_processed > 0);
      assert.equal(await stopCli(proc.child, 'SIGKILL'), 'SIGKILL');

      proc = await startCli([cfg(SYNC_SLOW)], dir, pub);
      const after = (await req(`${admin}/db/_resync`)).body;
      assert.equal(after.status, 'stopped');
      assert.equal(after.resync_id, first.resync_id);
      assert.ok(after.docs_processed > 0 && after.docs_processed < N);
      await req(`${admin}/db/_offline`, { method: 'POST' });
      const resumed = (await req(`${admin}/db/_resync`, { method: 'POST' })).body;
      assert.equal(resumed.resync_id, first.resync_id);
      const done = await resyncStatus(admin, ['completed']);
      assert.equal(done.docs_processed, N);
      await req(`${admin}/db/_online`, { method: 'POST' });
      for (let i = 0; i < 200 && (await req(`${admin}/db/`)).body.state !== 'Online'; i++) await sleep(25);
      // Every document got the new function's channel, none twice in the feed.
      const inA2 = await req(`${admin}/db/_changes?filter=sync_gateway/bychannel&channels=a2`);
      assert.equal(inA2.body.results.length, N);
      assert.equal(new Set(inA2.body.results.map((e: { id: string }) => e.id)).size, N);
    } finally {
      await stopCli(proc.child, 'SIGKILL');
    }
  });
});

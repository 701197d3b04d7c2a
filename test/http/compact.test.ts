import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { remoteDb } from '../helpers/pouchdb.ts';
import { startPgCluster } from '../helpers/postgres.ts';

/** Polls `GET /db/_compact?type=…` until a run (run `id`, when given) has completed (bounded generously). */
async function compactDone(gw: TestGateway, type: string, id?: string): Promise<Record<string, any>> {
  for (let i = 0; i < 600; i++) {
    const r = await req(`${gw.adminUrl}/db/_compact?type=${type}`);
    assert.equal(r.status, 200);
    if (r.body.status === 'completed' && r.body.start_time !== '0001-01-01T00:00:00Z' && (id === undefined || r.body.compact_id === id)) return r.body;
    await sleep(50);
  }
  throw new Error(`${type} compaction never completed`);
}

const PURGE_SECS = 5;

const cluster = await startPgCluster();
after(() => cluster.stop());
let schemas = 0;

const BACKENDS: [string, () => Record<string, unknown>][] = [
  ['SQLite', () => ({ server: 'memory:' })],
  ['PostgreSQL', () => ({
    server: cluster.url(), bucket: `compact_${++schemas}`,
    certpath: cluster.certs.clientCert, keypath: cluster.certs.clientKey, cacertpath: cluster.certs.caCert,
  })],
];

for (const [backend, storage] of BACKENDS) describe(`_compact (${backend})`, () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ databases: { db: { ...storage(), purge_interval: PURGE_SECS / 86400, compact_interval_days: 0 } } });
  });
  after(() => gw.stop());

  test('status before any run, refusals of bad input, and refusal while offline', async () => {
    const idle = await req(`${gw.adminUrl}/db/_compact`);
    assert.deepEqual(idle.body, { status: 'completed', start_time: '0001-01-01T00:00:00Z', last_error: '', docs_purged: 0 });
    const att = await req(`${gw.adminUrl}/db/_compact?type=attachment`);
    assert.deepEqual(att.body, {
      status: 'completed', start_time: '0001-01-01T00:00:00Z', last_error: '', marked_attachments: 0, purged_attachments: 0, compact_id: '',
    });
    const badType = await req(`${gw.adminUrl}/db/_compact?type=views`, { method: 'POST' });
    assert.equal(badType.status, 400);
    assert.equal(badType.body.reason, "Unknown parameter for 'type'. Must be 'tombstone' or 'attachment'");
    const badAction = await req(`${gw.adminUrl}/db/_compact?action=pause`, { method: 'POST' });
    assert.equal(badAction.status, 400);
    assert.equal(badAction.body.reason, "Unknown parameter for 'action'. Must be start or stop");
    const stop = await req(`${gw.adminUrl}/db/_compact?action=stop`, { method: 'POST' });
    assert.equal(stop.status, 400);
    assert.equal(stop.body.reason, 'Database compact is not running');
    const stopAtt = await req(`${gw.adminUrl}/db/_compact?type=attachment&action=stop`, { method: 'POST' });
    assert.equal(stopAtt.status, 503);
    assert.equal(stopAtt.body.reason, 'Process already stopped');
    assert.equal((await req(`${gw.publicUrl}/db/_compact`, { method: 'POST' })).status >= 400, true, 'admin port only');

    assert.equal((await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
    const offline = await req(`${gw.adminUrl}/db/_compact`, { method: 'POST' });
    assert.equal(offline.status, 503);
    assert.deepEqual(offline.body, { error: 'Service Unavailable', reason: 'DB is currently under maintenance' });
    await req(`${gw.adminUrl}/db/_online`, { method: 'POST' });
    for (let i = 0; i < 200 && (await req(`${gw.adminUrl}/db/`)).body.state !== 'Online'; i++) await sleep(25);
    assert.equal((await req(`${gw.adminUrl}/db/_compact`)).body.start_time, '0001-01-01T00:00:00Z', 'refused requests ran nothing');
  });

  test('tombstone compaction purges tombstones older than purge_interval only', async () => {
    const a = gw.adminUrl;
    const old = await req(`${a}/db/old`, { method: 'PUT', json: { n: 1 } });
    await req(`${a}/db/old?rev=${old.body.rev}`, { method: 'DELETE' });
    await sleep((PURGE_SECS + 1.5) * 1000);
    const young = await req(`${a}/db/young`, { method: 'PUT', json: { n: 2 } });
    await req(`${a}/db/young?rev=${young.body.rev}`, { method: 'DELETE' });
    await req(`${a}/db/live`, { method: 'PUT', json: { n: 3 } });

    const started = await req(`${a}/db/_compact`, { method: 'POST' });
    assert.equal(started.status, 200);
    assert.ok(['running', 'completed'].includes(started.body.status));
    const done = await compactDone(gw, 'tombstone');
    assert.equal(done.docs_purged, 1);
    assert.equal(done.last_error, '');
    assert.equal((await req(`${a}/db/`)).body.compact_running, false);
    const store = gw.gateway.get('db')!.store;
    assert.equal(await store.getDoc('old'), undefined, 'the old tombstone is purged');
    assert.equal((await store.getDoc('young'))?.deleted, true, 'the young tombstone stays');
    assert.equal((await req(`${a}/db/live`)).body.n, 3);
    const feed = await req(`${a}/db/_changes`);
    assert.deepEqual(feed.body.results.map((e: { id: string }) => e.id).sort(), ['live', 'young']);
  });

  test("PouchDB's db.compact() (POST _compact, then GET /db/ until compact_running is false) works", async () => {
    const db = remoteDb(`${gw.adminUrl}/db`);
    assert.deepEqual(await db.compact(), { ok: true });
    assert.notEqual((await req(`${gw.adminUrl}/db/_compact`)).body.start_time, '0001-01-01T00:00:00Z');
  });

  test('attachment compaction removes bodies no revision references; dry_run removes nothing', async () => {
    const a = gw.adminUrl;
    const data = (s: string) => Buffer.from(s).toString('base64');
    const digest = (s: string) => `sha1-${createHash('sha1').update(s).digest('base64')}`;
    const v1 = await req(`${a}/db/att`, { method: 'PUT', json: { _attachments: { 'f.txt': { content_type: 'text/plain', data: data('dropped bytes') } } } });
    assert.equal(v1.status, 201);
    // The next revision has no attachment; the old revision's body (its only reference) is retained
    // for old_rev_expiry_seconds (which keeps its bytes), then swept.
    assert.equal((await req(`${a}/db/att?rev=${v1.body.rev}`, { method: 'PUT', json: { n: 2 } })).status, 201);
    const kept1 = await req(`${a}/db/_compact?type=attachment`, { method: 'POST' });
    assert.equal((await compactDone(gw, 'attachment', kept1.body.compact_id)).purged_attachments, 0, 'a retained old revision still references its bytes');
    await gw.gateway.get('db')!.store.dropOldRevisions(Math.floor(Date.now() / 1000) + 3600, 100);
    const kept = await req(`${a}/db/keep`, { method: 'PUT', json: { _attachments: { 'k.txt': { content_type: 'text/plain', data: data('kept bytes') } } } });
    assert.equal(kept.status, 201);
    const store = gw.gateway.get('db')!.store;
    assert.ok(await store.getAttachment(digest('dropped bytes')));

    const dry = await req(`${a}/db/_compact?type=attachment&dry_run=true`, { method: 'POST' });
    assert.equal(dry.status, 200);
    assert.equal(dry.body.dry_run, true);
    const dryDone = await compactDone(gw, 'attachment', dry.body.compact_id);
    assert.equal(dryDone.purged_attachments, 1);
    assert.ok(await store.getAttachment(digest('dropped bytes')), 'a dry run removes nothing');

    const run = await req(`${a}/db/_compact?type=attachment`, { method: 'POST' });
    assert.equal(run.status, 200);
    assert.notEqual(run.body.compact_id, dryDone.compact_id);
    const done = await compactDone(gw, 'attachment', run.body.compact_id);
    assert.equal(done.marked_attachments, 1);
    assert.equal(done.purged_attachments, 1);
    assert.equal(done.dry_run, undefined);
    assert.equal(await store.getAttachment(digest('dropped bytes')), undefined);
    const got = await fetch(`${a}/db/keep/k.txt`);
    assert.equal(got.status, 200);
    assert.equal(await got.text(), 'kept bytes');
  });
});

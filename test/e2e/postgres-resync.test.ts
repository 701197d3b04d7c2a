/**
 * `_resync` on two Syncgate processes sharing one PostgreSQL: started on both at once, it runs on
 * exactly one (the job record is compare-and-set, with a lease), both nodes report the same run,
 * and every document is processed once; a node killed mid-run leaves it to the other once its
 * lease lapses (about 30 s: this test waits for it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Node, startNode, startPgCluster } from '../helpers/postgres.ts';
import { req } from '../helpers/gateway.ts';

const cluster = await startPgCluster();
const dir = mkdtempSync(join(tmpdir(), 'syncgate-pg-resync-'));
const c = cluster.certs;
const USERS = { alice: { password: 'alice-pw', admin_channels: ['a'] } };
const dbConfig = (sync: string) => ({
  db: { server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert, sync, users: USERS },
});
const SYNC_V1 = `function (doc) { channel(doc.ch); }`;
// Slow enough (a few ms per document) that both nodes are asked while the run is under way.
const SYNC_V2 = `function (doc) {
  var t = Date.now(); while (Date.now() - t < 2) {}
  if (doc.tag === 'move') channel('z'); else channel(doc.ch);
  if (doc.type === 'grant') access('alice', 'b');
}`;
const N = 1200;
let nodes: Node[] = [];

before(async () => {
  const first = await startNode(dir, dbConfig(SYNC_V1));
  const docs = Array.from({ length: N - 2 }, (_, i) => ({ _id: `doc-${String(i).padStart(5, '0')}`, ch: i % 2 ? 'a' : 'b', tag: i % 3 ? undefined : 'move' }));
  docs.push({ _id: 'grant', ch: 'x', type: 'grant' } as never, { _id: 'zz-plain', ch: 'a' } as never);
  for (let k = 0; k < docs.length; k += 400) {
    assert.equal((await req(`${first.adminUrl}/db/_bulk_docs`, { method: 'POST', json: { docs: docs.slice(k, k + 400) } })).status, 201);
  }
  await first.kill();
  nodes = await Promise.all([startNode(dir, dbConfig(SYNC_V2)), startNode(dir, dbConfig(SYNC_V2))]);
});
after(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('_resync on two nodes sharing PostgreSQL', () => {
  it('started on both at once, it runs once; both report the same run; every document is processed once', async () => {
    const [a, b] = nodes;
    for (const n of nodes) assert.equal((await req(`${n.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
    const starts = await Promise.all(nodes.map((n) => req(`${n.adminUrl}/db/_resync?action=start`, { method: 'POST' })));
    const won = starts.filter((r) => r.status === 200);
    const lost = starts.filter((r) => r.status !== 200);
    assert.equal(won.length, 1, JSON.stringify(starts.map((r) => r.body)));
    assert.equal(lost[0].status, 503);
    assert.equal(lost[0].body.reason, 'Process already running');
    const runner = nodes[starts.indexOf(won[0])];
    const other = nodes[starts.indexOf(lost[0])];
    // The refused node stays Offline; it shows the other node's run.
    assert.equal((await req(`${other.adminUrl}/db/`)).body.state, 'Offline');
    const seen = await req(`${other.adminUrl}/db/_resync`);
    assert.equal(seen.body.resync_id, won[0].body.resync_id);
    assert.ok(['running', 'completed'].includes(seen.body.status));
    // Asked again while it runs there: still refused.
    const again = await req(`${other.adminUrl}/db/_resync`, { method: 'POST' });
    if (again.status === 200) assert.fail(`a second run started: ${JSON.stringify(again.body)} while ${JSON.stringify((await req(`${runner.adminUrl}/db/_resync`)).body)}`);

    let done: Record<string, any> = {};
    for (let i = 0; i < 1200; i++) {
      done = (await req(`${other.adminUrl}/db/_resync`)).body;
      if (done.status === 'completed') break;
      await sleep(50);
    }
    assert.equal(done.status, 'completed');
    assert.equal(done.resync_id, won[0].body.resync_id);
    assert.equal(done.docs_processed, N, 'every document once, on one node');
    const moved = Math.ceil((N - 2) / 3);
    assert.equal(done.docs_changed, moved + 1, 'the moved documents and the grant');
    for (const n of [a, b]) {
      await req(`${n.adminUrl}/db/_online`, { method: 'POST' });
      for (let i = 0; i < 200 && (await req(`${n.adminUrl}/db/`)).body.state !== 'Online'; i++) await sleep(25);
    }
    // Either node now serves what the new function says: alice lost the moved docs of "a", gained "b".
    const feed = await req(`${other.publicUrl}/db/_changes`, { headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` } });
    const entries = feed.body.results as { id: string; removed?: string[] }[];
    const live = entries.filter((e) => !e.removed && e.id.startsWith('doc-')).map((e) => Number(e.id.slice(4)));
    const expected = Array.from({ length: N - 2 }, (_, i) => i).filter((i) => i % 3 !== 0);
    assert.deepEqual(live.sort((x, y) => x - y), expected);
    const removed = entries.filter((e) => e.removed).map((e) => Number(e.id.slice(4)));
    // Moved documents left "a" or "b", both channels alice holds now: each shows as removed.
    assert.deepEqual(removed.sort((x, y) => x - y), Array.from({ length: N - 2 }, (_, i) => i).filter((i) => i % 3 === 0));
  });

  it('a node killed mid-run: the other refuses to start while the lease is live, then reports stopped and resumes the run', async () => {
    const [a, b] = nodes;
    for (const n of nodes) assert.equal((await req(`${n.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
    const first = await req(`${a.adminUrl}/db/_resync?action=start`, { method: 'POST' });
    assert.equal(first.status, 200);
    for (let i = 0; i < 600; i++) {
      if ((await req(`${b.adminUrl}/db/_resync`)).body.docs_processed > 0) break;
      await sleep(25);
    }
    await a.kill('SIGKILL');
    // A's lease is still live for a while: B sees the run as running and will not start another.
    const seen = (await req(`${b.adminUrl}/db/_resync`)).body;
    assert.equal(seen.status, 'running');
    const refused = await req(`${b.adminUrl}/db/_resync`, { method: 'POST' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.reason, 'Process already running');
    assert.equal((await req(`${b.adminUrl}/db/`)).body.state, 'Offline');
    // Once the lease (30 s) lapses, B reports the run stopped, with the progress A saved.
    let stopped: Record<string, any> = {};
    for (let i = 0; i < 900; i++) {
      stopped = (await req(`${b.adminUrl}/db/_resync`)).body;
      if (stopped.status !== 'running') break;
      await sleep(100);
    }
    assert.equal(stopped.status, 'stopped');
    assert.equal(stopped.resync_id, first.body.resync_id);
    assert.ok(stopped.docs_processed > 0 && stopped.docs_processed < N, `part done: ${stopped.docs_processed}`);
    const resumed = await req(`${b.adminUrl}/db/_resync`, { method: 'POST' });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.resync_id, first.body.resync_id, 'the same run, resumed');
    let done: Record<string, any> = {};
    for (let i = 0; i < 1200; i++) {
      done = (await req(`${b.adminUrl}/db/_resync`)).body;
      if (done.status === 'completed') break;
      await sleep(50);
    }
    assert.equal(done.status, 'completed');
    assert.equal(done.docs_processed, N, 'the killed node\'s pages are not counted twice');
  });
});

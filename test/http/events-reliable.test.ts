/**
 * `"delivery": "at_least_once"`: a document_changed webhook that follows the changes feed from a
 * checkpoint in the database. Here in one process; the crash and two-node tests are in
 * test/e2e/webhooks-at-least-once.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { req, startGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/cli-process.ts';
import { startReceiver } from '../helpers/webhook-receiver.ts';

const reliable = (url: string, extra: Record<string, unknown> = {}) => ({
  handler: 'webhook', url, delivery: 'at_least_once', retry_initial_ms: 10, retry_max_ms: 100, ...extra,
});

async function status(adminUrl: string): Promise<any> {
  return (await req(`${adminUrl}/db/_event_handlers`)).body.handlers[0];
}

describe('at-least-once delivery', () => {
  test('only 2xx delivers: 500s and 404s are retried, one POST at a time, in sequence order', async () => {
    const rx = await startReceiver();
    let n = 0;
    rx.answer = () => (++n % 3 === 0 ? 200 : n % 3 === 1 ? 500 : 404);
    const gw = await startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [reliable(`${rx.url}/r`, { max_attempts: 100 })] } } } });
    try {
      const revs: string[] = [];
      let rev: string | undefined;
      for (let i = 0; i < 5; i++) {
        const r = await req(`${gw.publicUrl}/db/one${rev ? `?rev=${rev}` : ''}`, { method: 'PUT', json: { i } });
        rev = r.body.rev;
        revs.push(rev!);
        await req(`${gw.publicUrl}/db/other${i}`, { method: 'PUT', json: { i } });
      }
      await rx.until(() => rx.received.some((r) => r.status === 200 && r.body._rev === rev), 'the last revision of one');
      await rx.until(() => rx.received.some((r) => r.status === 200 && r.body._id === 'other4'), 'other4');
      const delivered = rx.received.filter((r) => r.status === 200).map((r) => r.body);
      // Per document, generations never go back; every document's last revision arrives.
      const gens = delivered.filter((b) => b._id === 'one').map((b) => Number(b._rev.split('-')[0]));
      assert.deepEqual(gens, [...gens].sort((a, b) => a - b));
      assert.equal(delivered.filter((b) => b._id === 'one').at(-1)._rev, revs.at(-1));
      for (let i = 0; i < 5; i++) assert.ok(delivered.some((b) => b._id === `other${i}` && b.i === i), `other${i}`);
      // Each change was answered 500 and 404 before its 200: nothing was given up.
      const s = await status(gw.adminUrl);
      assert.equal(s.failed, 0);
      assert.equal(s.delivered, delivered.length);
      assert.equal(s.delivery, 'at_least_once');
      assert.equal(s.leaseHeld, true);
      assert.equal(s.checkpoint, Number((await req(`${gw.adminUrl}/db/`)).body.update_seq));
      const text = (await req(`${gw.metricsUrl}/_metrics`)).text;
      assert.match(text, new RegExp(`^syncgate_event_handler_checkpoint\\{database="db",handler="document_changed\\[0\\]",delivery="at_least_once"\\} ${s.checkpoint}$`, 'm'));
      assert.match(text, new RegExp(`^syncgate_event_handler_events\\{database="db",handler="document_changed\\[0\\]",delivery="at_least_once",outcome="delivered"\\} ${s.delivered}$`, 'm'));
    } finally {
      await gw.stop();
      await rx.close();
    }
  });

  test('after max_attempts a change is recorded as failed (status, log) and delivery moves on', async () => {
    const rx = await startReceiver();
    rx.answer = (r) => (r.body._id === 'poison' ? 500 : 204);
    const gw = await startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [reliable(`${rx.url}/r`, { max_attempts: 3 })] } } } });
    try {
      const p = await req(`${gw.publicUrl}/db/poison`, { method: 'PUT', json: {} });
      await req(`${gw.publicUrl}/db/fine`, { method: 'PUT', json: {} });
      await rx.until(() => rx.received.some((r) => r.body._id === 'fine'), 'the change after the poison one');
      assert.equal(rx.received.filter((r) => r.body._id === 'poison').length, 3, 'three attempts');
      const s = await status(gw.adminUrl);
      assert.equal(s.failed, 1);
      assert.equal(s.recentFailures.length, 1);
      assert.deepEqual({ ...s.recentFailures[0], seq: undefined }, { seq: undefined, id: 'poison', rev: p.body.rev, error: 'status 500' });
      assert.ok(gw.logs.some((l) => l.includes('giving up on poison')));
    } finally {
      await gw.stop();
      await rx.close();
    }
  });

  test('batch_size sends arrays in sequence order; the filter leaves changes out; deletions are tombstones', async () => {
    const rx = await startReceiver();
    const gw = await startGateway({
      databases: { db: { server: 'memory:', event_handlers: { document_changed: [reliable(`${rx.url}/b`, { batch_size: 4, filter: 'function(doc) { return !doc.secret; }' })] } } },
    });
    try {
      // Written while the handler is busy? Not needed: batches are whatever the feed holds at a read.
      const bulk = await req(`${gw.adminUrl}/db/_bulk_docs`, { method: 'POST', json: { docs: Array.from({ length: 10 }, (_, i) => ({ _id: `b${i}`, i, secret: i === 3 })) } });
      assert.equal(bulk.status, 201);
      await req(`${gw.publicUrl}/db/b5?rev=${bulk.body[5].rev}`, { method: 'DELETE' });
      await rx.until(() => rx.received.flatMap((r) => r.body).some((d: any) => d._id === 'b5' && d._deleted), 'the deletion');
      for (const r of rx.received) assert.ok(Array.isArray(r.body) && r.body.length >= 1 && r.body.length <= 4, JSON.stringify(r.body));
      const ids = rx.received.flatMap((r) => r.body).map((d: any) => d._id);
      assert.ok(!ids.includes('b3'), 'filtered out');
      const del = rx.received.flatMap((r) => r.body).find((d: any) => d._id === 'b5' && d._deleted);
      assert.equal(Object.keys(del).sort().join(), '_deleted,_id,_rev');
      assert.equal((await status(gw.adminUrl)).filtered >= 1, true);
    } finally {
      await gw.stop();
      await rx.close();
    }
  });

  test('from memory while keeping up, from the feed across gaps: every change arrives as the feed shows it', async () => {
    const rx = await startReceiver();
    let open = false;
    rx.answer = () => (open ? 200 : 503); // held on its first change while the rest is written
    const gw = await startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [reliable(`${rx.url}/m`, { max_attempts: 1000 })] } } } });
    try {
      const put = async (id: string, body: Record<string, unknown>, rev?: string) =>
        (await req(`${gw.publicUrl}/db/${id}${rev ? `?rev=${rev}` : ''}`, { method: 'PUT', json: body })).body.rev as string;
      await put('first', {});
      await rx.until(() => rx.received.length > 0, 'the first attempt');
      // Announced without a gap: x's two revisions both go out (the feed would show only the second).
      const x1 = await put('x', { v: 1 });
      const x2 = await put('x', { v: 2 }, x1);
      const att = await put('att', { _attachments: { 'a.txt': { content_type: 'text/plain', data: Buffer.from('hi').toString('base64') } } });
      await req(`${gw.publicUrl}/db/att?rev=${att}`, { method: 'DELETE' });
      // Gaps: a user takes a sequence; a losing branch is committed without a winner's body at hand.
      await req(`${gw.adminUrl}/db/_user/bob`, { method: 'PUT', json: { password: 'letmein123', admin_channels: ['*'] } });
      await req(`${gw.adminUrl}/db/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [
        { _id: 'c', _rev: '2-bbb', _revisions: { start: 2, ids: ['bbb', 'aaa'] }, side: 'b' },
      ] } });
      await req(`${gw.adminUrl}/db/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [
        { _id: 'c', _rev: '2-aaa', _revisions: { start: 2, ids: ['aaa', 'aaa'] }, side: 'a' },
      ] } });
      const y = await put('y', { after: 'the gaps' });
      open = true;
      await rx.until(() => rx.received.some((r) => r.status === 200 && r.body._id === 'y'), 'y');
      const delivered = rx.received.filter((r) => r.status === 200).map((r) => r.body);
      assert.deepEqual(delivered.filter((b) => b._id === 'x').map((b) => b._rev), [x1, x2]);
      assert.equal(delivered.at(-1)._rev, y);
      // Whichever way each came, the last delivery of every document is the feed's include_docs view.
      const feed = (await req(`${gw.adminUrl}/db/_changes?include_docs=true`)).body.results;
      for (const e of feed) {
        assert.deepEqual(delivered.filter((b) => b._id === e.id).at(-1), e.doc, e.id);
      }
      assert.deepEqual(new Set(delivered.map((b) => b._id)), new Set(feed.map((e: any) => e.id)));
      let s: any;
      for (let i = 0; i < 100; i++) { s = await status(gw.adminUrl); if (s.pending === 0) break; await new Promise((r) => setTimeout(r, 20)); }
      assert.equal(s.checkpoint, Number((await req(`${gw.adminUrl}/db/`)).body.update_seq));
    } finally {
      await gw.stop();
      await rx.close();
    }
  });

  test('a receiver that cannot be reached uses up no attempts: after a restart, delivery resumes from the checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncgate-events-'));
    const port = await freePort(); // nothing listens here yet
    const databases = { db: { server: `sqlite:${join(dir, 'db.sqlite3')}`, event_handlers: { document_changed: [reliable(`http://127.0.0.1:${port}/r`, { max_attempts: 2 })] } } };
    try {
      const gw1 = await startGateway({ databases });
      const acked: Record<string, string> = {};
      for (let i = 0; i < 5; i++) acked[`d${i}`] = (await req(`${gw1.publicUrl}/db/d${i}`, { method: 'PUT', json: { i } })).body.rev;
      const s1 = await status(gw1.adminUrl);
      assert.equal(s1.failed, 0);
      assert.equal(s1.delivered, 0);
      await gw1.stop();
      const rx = await startReceiver(port);
      const gw2 = await startGateway({ databases });
      try {
        acked.late = (await req(`${gw2.publicUrl}/db/late`, { method: 'PUT', json: {} })).body.rev;
        await rx.until(() => Object.entries(acked).every(([id, rev]) => rx.received.some((r) => r.body._id === id && r.body._rev === rev)), 'every document');
        const s2 = await status(gw2.adminUrl);
        assert.equal(s2.failed, 0);
        assert.equal(s2.pending, 0);
      } finally {
        await gw2.stop();
        await rx.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

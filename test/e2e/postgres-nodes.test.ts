/**
 * Two Syncgate processes on one PostgreSQL: they serve the same databases, users and sessions; a
 * write through one reaches the other's longpoll, continuous and websocket feeds promptly; and
 * concurrent writers on both race readers on both without any reader missing or repeating a change.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { type Node, startNode, startPgCluster } from '../helpers/postgres.ts';
import { req } from '../helpers/gateway.ts';

const cluster = await startPgCluster();
const dir = mkdtempSync(join(tmpdir(), 'syncgate-pg-nodes-'));
const c = cluster.certs;
const db = {
  server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert,
  users: { GUEST: { disabled: false, admin_channels: ['*'] }, alice: { password: 'alice-pw', admin_channels: ['public'] } },
};
let a: Node;
let b: Node;
before(async () => {
  // One after the other is not required (migrations take an advisory lock), but start together.
  [a, b] = await Promise.all([startNode(dir, { db }), startNode(dir, { db })]);
});
after(async () => {
  await Promise.all([a?.kill(), b?.kill()]);
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

const lastSeq = async (node: Node) => (await req(`${node.publicUrl}/db/`)).body.update_seq as number;
const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

describe('two nodes on one PostgreSQL', () => {
  it('share documents, users and sessions', async () => {
    assert.equal((await req(`${a.publicUrl}/db/shared`, { method: 'PUT', json: { from: 'a' } })).status, 201);
    assert.equal((await req(`${b.publicUrl}/db/shared`)).body.from, 'a');
    assert.equal((await req(`${a.adminUrl}/db/_user/bob`, { method: 'PUT', json: { password: 'bob-pw', admin_channels: ['x'] } })).status, 201);
    const login = await req(`${a.publicUrl}/db/_session`, { method: 'POST', json: { name: 'bob', password: 'bob-pw' } });
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    const who = await req(`${b.publicUrl}/db/_session`, { headers: { cookie } });
    assert.equal(who.body.userCtx.name, 'bob', 'a session made on A is valid on B');
    assert.equal((await req(`${b.publicUrl}/db/`, { headers: basic('bob', 'bob-pw') })).status, 200);
  });

  it('access changed on one node applies on the other: a grant, then a role deletion', async () => {
    await req(`${a.adminUrl}/db/_role/readers`, { method: 'PUT', json: { admin_channels: ['secret'] } });
    await req(`${a.publicUrl}/db/classified`, { method: 'PUT', json: { channels: ['secret'] } });
    assert.equal((await req(`${b.publicUrl}/db/classified`, { headers: basic('alice', 'alice-pw') })).status, 403);
    await req(`${a.adminUrl}/db/_user/alice`, { method: 'PUT', json: { password: 'alice-pw', admin_channels: ['public'], admin_roles: ['readers'] } });
    assert.equal((await req(`${b.publicUrl}/db/classified`, { headers: basic('alice', 'alice-pw') })).status, 200);
    // A deletion takes no sequence; B's access cache still notices it.
    assert.equal((await req(`${a.adminUrl}/db/_role/readers`, { method: 'DELETE' })).status, 200);
    assert.equal((await req(`${b.publicUrl}/db/classified`, { headers: basic('alice', 'alice-pw') })).status, 403);
  });

  it('a write on A wakes a longpoll on B', async () => {
    const since = await lastSeq(b);
    // The longpoll's own timeout is the bound: if B is never woken, it answers with no results.
    const poll = req(`${b.publicUrl}/db/_changes?feed=longpoll&since=${since}&timeout=60000`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req(`${a.publicUrl}/db/lp-doc`, { method: 'PUT', json: {} })).status, 201);
    const res = await poll;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.results.map((r: { id: string }) => r.id), ['lp-doc']);
  });

  it('a write on A reaches a continuous feed on B', async () => {
    const since = await lastSeq(b);
    const ac = new AbortController();
    const res = await fetch(`${b.publicUrl}/db/_changes?feed=continuous&since=${since}&heartbeat=1000`, { signal: ac.signal });
    const reader = res.body!.getReader();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req(`${a.publicUrl}/db/cont-doc`, { method: 'PUT', json: {} })).status, 201);
    let text = '';
    const deadline = Date.now() + 60_000; // heartbeats keep read() returning
    while (!text.includes('"cont-doc"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    ac.abort();
    assert.match(text, /"id":"cont-doc"/);
  });

  it('a write on A reaches a websocket feed on B', async () => {
    const since = await lastSeq(b);
    const ws = new WebSocket(`${b.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`);
    const got: string[] = [];
    const arrived = new Promise<void>((resolve) => {
      ws.on('message', (m) => {
        const text = m.toString();
        if (text === '') return;
        for (const e of JSON.parse(text) as { id: string }[]) got.push(e.id);
        if (got.includes('ws-doc')) resolve();
      });
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ since }));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req(`${a.publicUrl}/db/ws-doc`, { method: 'PUT', json: {} })).status, 201);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([arrived, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`not delivered; got ${got}`)), 60_000); })])
      .finally(() => clearTimeout(timer));
    ws.close();
    assert.deepEqual(got, ['ws-doc']);
  });

  it('concurrent writers on both nodes race longpoll readers on both: every change once, in order', async () => {
    const since = await lastSeq(a);
    const WRITERS = 8;
    const PER_WRITER = 40;
    const ids: string[] = [];
    for (let w = 0; w < WRITERS; w++) for (let i = 0; i < PER_WRITER; i++) ids.push(`race-${w}-${i}`);
    // A reader stops when it has seen every id, or when the writers are done and a longpoll then
    // comes back empty (nothing more to come), or at a generous deadline: a missed change fails
    // below with the missing ids instead of hanging the suite.
    let writersDone = false;
    const deadline = Date.now() + 240_000;
    const follow = async (node: Node) => {
      const seen: { id: string; seq: number }[] = [];
      let cursor = since;
      while (seen.length < ids.length && Date.now() < deadline) {
        const done = writersDone;
        const r = await req(`${node.publicUrl}/db/_changes?feed=longpoll&since=${cursor}&timeout=10000&limit=37`);
        assert.equal(r.status, 200);
        const results = r.body.results as { id: string; seq: number }[];
        for (const e of results) seen.push(e);
        cursor = r.body.last_seq;
        if (done && results.length === 0) break;
      }
      return seen;
    };
    const readers = [follow(a), follow(b), follow(a), follow(b)];
    const writing = Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      const node = w % 2 ? b : a;
      for (let i = 0; i < PER_WRITER; i++) {
        // Bulk and single writes, so transactions of different sizes interleave.
        if (i % 4 === 0 && i + 1 < PER_WRITER) {
          const r = await req(`${node.publicUrl}/db/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: `race-${w}-${i}` }, { _id: `race-${w}-${i + 1}` }] } });
          assert.equal(r.status, 201);
          i++;
        } else {
          assert.equal((await req(`${node.publicUrl}/db/race-${w}-${i}`, { method: 'PUT', json: { w } })).status, 201);
        }
      }
    })).finally(() => { writersDone = true; });
    const [results] = await Promise.all([Promise.all(readers), writing]);
    for (const [r, seen] of results.entries()) {
      const got = new Set(seen.map((e) => e.id));
      const missing = ids.filter((id) => !got.has(id));
      assert.deepEqual(missing, [], `reader ${r} (node ${r % 2 ? 'B' : 'A'}) missed ${missing.length} changes`);
      const repeated = seen.map((e) => e.id).filter((id, i, all) => all.indexOf(id) !== i);
      assert.deepEqual(repeated, [], `reader ${r} saw changes twice`);
      assert.equal(seen.length, ids.length, 'nothing extra');
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i].seq > seen[i - 1].seq, 'sequences increase');
    }
  });
});

/**
 * Faults on a two-node PostgreSQL deployment: PostgreSQL restarted under load (503s while it is
 * down, reconnection by itself, feeds resume, nothing acknowledged lost) and a node killed with
 * SIGKILL in the middle of writes (nothing acknowledged lost).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Node, startNode, startPgCluster } from '../helpers/postgres.ts';

const cluster = await startPgCluster();
const dir = mkdtempSync(join(tmpdir(), 'syncgate-pg-faults-'));
const c = cluster.certs;
const nodes: Node[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

const dbConfig = (bucket: string) => ({
  server: cluster.url(), bucket, certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert,
  users: { GUEST: { disabled: false, admin_channels: ['*'] } },
});

async function start(bucket: string): Promise<Node> {
  const n = await startNode(dir, { db: dbConfig(bucket) });
  nodes.push(n);
  return n;
}

/** PUT without throwing on network errors: the status, or 0 when the connection failed. */
async function put(url: string, body: unknown): Promise<{ status: number; text: string }> {
  try {
    const r = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, text: await r.text() };
  } catch {
    return { status: 0, text: '' };
  }
}

/** Keeps writing new docs through `node` until stopped; records acknowledged (201) ids and other outcomes. */
function writer(node: Node, prefix: string) {
  const acked: string[] = [];
  const statuses = new Map<number, number>();
  const bodies: string[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const id = `${prefix}-${i}`;
      const r = await put(`${node.publicUrl}/db/${id}`, { i });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 201) acked.push(id);
      else {
        if (bodies.length < 3) bodies.push(r.text);
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  })();
  return { acked, statuses, bodies, stop: async () => { running = false; await done; } };
}

/** Follows the feed with longpolls, retrying failed requests (as PouchDB's `retry` does). */
function follower(node: Node) {
  const ids = new Set<string>();
  let failures = 0;
  let running = true;
  let since: string | number = 0;
  const done = (async () => {
    while (running) {
      try {
        const r = await fetch(`${node.publicUrl}/db/_changes?feed=longpoll&since=${since}&timeout=2000`);
        if (r.status !== 200) { failures++; await r.text(); await new Promise((res) => setTimeout(res, 100)); continue; }
        const body = await r.json() as { results: { id: string }[]; last_seq: string | number };
        for (const e of body.results) ids.add(e.id);
        since = body.last_seq;
      } catch {
        failures++;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  })();
  return { ids, failures: () => failures, stop: async () => { running = false; await done; } };
}

/** One continuous feed that must stay open throughout: it is never reconnected. */
async function continuousFollower(node: Node) {
  const ac = new AbortController();
  const res = await fetch(`${node.publicUrl}/db/_changes?feed=continuous&since=0&heartbeat=500`, { signal: ac.signal });
  const reader = res.body!.getReader();
  let text = '';
  let ended = false;
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) { ended = true; return; }
      text += Buffer.from(value!).toString();
    }
  })();
  return {
    has: (id: string) => text.includes(`"id":${JSON.stringify(id)}`),
    ended: () => ended,
    stop: async () => { ac.abort(); await pump; },
  };
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL faults', () => {
  it('PostgreSQL restarted under load: 503 while down, reconnects by itself, feeds resume, nothing acknowledged lost', async () => {
    const [a, b] = await Promise.all([start('restart'), start('restart')]);
    const writers = [writer(a, 'wa'), writer(b, 'wb'), writer(a, 'wa2')];
    const feed = follower(b);
    // Reads while PostgreSQL is down (the writers on A keep waking it): it rides the outage out.
    const live = await continuousFollower(b);
    await waitFor(() => writers.every((w) => w.acked.length >= 20), 20_000, 'writes before the restart');
    await cluster.pause('fast');
    const before = writers.map((w) => w.acked.length);
    await new Promise((r) => setTimeout(r, 1500));
    await cluster.resume();
    // Writes succeed again on both nodes, with no restart of Syncgate.
    await waitFor(() => writers.every((w, i) => w.acked.length >= before[i] + 20), 30_000, 'writes after the restart');
    await Promise.all(writers.map((w) => w.stop()));
    const acked = writers.flatMap((w) => w.acked);
    for (const w of writers) {
      assert.ok((w.statuses.get(503) ?? 0) > 0, `requests failed with 503 while PostgreSQL was down: ${JSON.stringify([...w.statuses])}`);
      assert.deepEqual([...w.statuses.keys()].filter((s) => s !== 201 && s !== 503), [], `only 201 or 503: ${JSON.stringify([...w.statuses])}`);
      assert.match(w.bodies[0], /"error":"Service Unavailable"/);
    }
    // The feed on B resumes and delivers every acknowledged write.
    await waitFor(() => acked.every((id) => feed.ids.has(id)), 20_000, 'the feed to deliver every acknowledged write');
    await feed.stop();
    await waitFor(() => acked.every((id) => live.has(id)), 20_000, 'the continuous feed to deliver every acknowledged write');
    assert.equal(live.ended(), false, 'the continuous feed stayed open through the outage');
    await live.stop();
    // Every acknowledged write is there, through either node.
    const all = await (await fetch(`${a.publicUrl}/db/_all_docs`)).json() as { rows: { id: string }[] };
    const present = new Set(all.rows.map((r) => r.id));
    assert.deepEqual(acked.filter((id) => !present.has(id)), []);
    assert.match(a.output() + b.output(), /change notifications restored/);
  });

  it('an idle continuous feed stays open across a PostgreSQL restart and delivers the next write', async () => {
    const [a, b] = await Promise.all([start('idle'), start('idle')]);
    const ac = new AbortController();
    const res = await fetch(`${b.publicUrl}/db/_changes?feed=continuous&since=0&heartbeat=500`, { signal: ac.signal });
    const reader = res.body!.getReader();
    let text = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        text += Buffer.from(value!).toString();
      }
    })();
    await cluster.pause('fast');
    await new Promise((r) => setTimeout(r, 1000));
    await cluster.resume();
    // The first write after the restart may still find the pool's dead connections: retry on 503.
    let status = 0;
    for (let i = 0; i < 50 && status !== 201; i++) {
      status = (await put(`${a.publicUrl}/db/after-restart`, {})).status;
      if (status !== 201) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 201);
    await waitFor(() => text.includes('"after-restart"'), 10_000, 'the write on the continuous feed');
    ac.abort();
    await pump;
  });

  it('a node killed with SIGKILL in the middle of writes loses nothing it acknowledged', async () => {
    const [a, b] = await Promise.all([start('sigkill'), start('sigkill')]);
    const writers = Array.from({ length: 4 }, (_, i) => writer(a, `k${i}`));
    const feed = follower(b);
    await waitFor(() => writers.every((w) => w.acked.length >= 25), 20_000, 'writes');
    await a.kill('SIGKILL');
    await Promise.all(writers.map((w) => w.stop()));
    const acked = writers.flatMap((w) => w.acked);
    const all = await (await fetch(`${b.publicUrl}/db/_all_docs`)).json() as { rows: { id: string }[] };
    const present = new Set(all.rows.map((r) => r.id));
    assert.deepEqual(acked.filter((id) => !present.has(id)), [], 'every acknowledged write survived');
    await waitFor(() => acked.every((id) => feed.ids.has(id)), 10_000, 'the other node\'s feed to deliver every acknowledged write');
    await feed.stop();
    // The survivor keeps working: B writes and A's in-flight transactions were rolled back cleanly.
    assert.equal((await put(`${b.publicUrl}/db/after-kill`, {})).status, 201);
  });
});

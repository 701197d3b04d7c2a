/**
 * Live feeds under a stream of concurrent writes: every feed sees every write, promptly. A feed
 * reads a page, then waits on the notifier; a commit notified while the read is still running (a
 * read shared with other feeds, a PostgreSQL round trip) must wake the next wait at once, or the
 * feed sleeps through it until some later write. Feeds without heartbeats (websocket, continuous,
 * longpoll with a long timeout) and BLIP's continuous pull have nothing to rescue them before the
 * test's deadline, so a missed wake-up is a missed change.
 *
 * Only the last writes can be lost that way (any later write wakes the feed), so this end-to-end
 * check rarely hits the race itself: test/unit/notifier.test.ts pins the mechanism; this one guards
 * the whole path (shared reads, rendering, both backends) against feeds that fall behind.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { type PgCluster, startPgCluster } from '../helpers/postgres.ts';

const FEEDS = 40;
const WRITES = 60;

async function startOn(db: Record<string, unknown>): Promise<TestGateway> {
  return startGateway({ databases: { db }, config: { limits: { max_changes_feeds_per_user: 0 } } });
}

type Kind = 'websocket' | 'continuous' | 'longpoll';

/** One live feed from `since=0`: the ids it has seen, a promise that it is live, and how to stop it. */
interface Feed { ids: Set<string>; live: Promise<void>; close(): void }

function openFeed(gw: TestGateway, kind: Kind, filtered: boolean): Feed {
  const ids = new Set<string>();
  const filter = filtered ? '&filter=sync_gateway/bychannel&channels=race' : '';
  if (kind === 'websocket') {
    const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`);
    const live = new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ since: 0, ...(filtered ? { filter: 'sync_gateway/bychannel', channels: 'race' } : {}) })));
      ws.on('message', (data) => {
        const text = data.toString();
        if (text === '[]') resolve(); // caught up: now live
        if (!text.startsWith('[')) return;
        for (const e of JSON.parse(text) as { id: string }[]) ids.add(e.id);
      });
      ws.on('error', reject);
    });
    return { ids, live, close: () => ws.close() };
  }
  if (kind === 'continuous') {
    let request: http.ClientRequest;
    const live = new Promise<void>((resolve, reject) => {
      // No heartbeat: only the notifier wakes this feed.
      request = http.get(`${gw.publicUrl}/db/_changes?feed=continuous&since=0${filter}`, { agent: false }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) ids.add((JSON.parse(line) as { id: string }).id);
          }
        });
        resolve();
      });
      request.on('error', (err) => (request.destroyed ? undefined : reject(err)));
    });
    return { ids, live, close: () => request.destroy() };
  }
  // Longpoll, re-polling from each answer's last_seq as a replicator does.
  const ac = new AbortController();
  const poll = async (since: unknown): Promise<void> => {
    while (!ac.signal.aborted) {
      const res = await fetch(`${gw.publicUrl}/db/_changes?feed=longpoll&since=${since}&timeout=30000${filter}`, { signal: ac.signal });
      const body = await res.json() as { results: { id: string }[]; last_seq: unknown };
      for (const e of body.results) ids.add(e.id);
      since = body.last_seq;
    }
  };
  poll(0).catch(() => { /* aborted at the end */ });
  return { ids, live: Promise.resolve(), close: () => ac.abort() };
}

/** Every feed sees every write; `gw` is read when the test runs (started in the caller's `before`). */
function raceTest(gateway: () => TestGateway, kind: Kind): void {
  test(`${FEEDS} ${kind} feeds without heartbeats each see all ${WRITES} writes`, async () => {
    const gw = gateway();
    const feeds = Array.from({ length: FEEDS }, (_, i) => openFeed(gw, kind, i % 2 === 1));
    await Promise.all(feeds.map((f) => f.live));
    // Bursts of concurrent writes with short, uneven gaps: commits land while feeds are mid-read.
    for (let i = 0; i < WRITES; i += 3) {
      await Promise.all([0, 1, 2].map((k) => req(`${gw.publicUrl}/db/${kind}-w${i + k}`, { method: 'PUT', json: { channels: ['race'] } })));
      await new Promise((r) => setTimeout(r, (i * 7) % 5));
    }
    const want = Array.from({ length: WRITES }, (_, i) => `${kind}-w${i}`);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !feeds.every((f) => want.every((id) => f.ids.has(id)))) await new Promise((r) => setTimeout(r, 50));
    for (const f of feeds) f.close();
    const short = feeds.map((f, i) => [i, want.filter((id) => !f.ids.has(id))] as const).filter(([, m]) => m.length > 0);
    assert.deepEqual(short, [], 'feeds that missed writes (feed index, missing ids)');
  });
}

const KINDS: Kind[] = ['websocket', 'continuous', 'longpoll'];

describe('live feeds under concurrent writes: SQLite', () => {
  let gw: TestGateway;
  before(async () => { gw = await startOn({ server: 'memory:' }); });
  after(() => gw.stop());
  for (const kind of KINDS) raceTest(() => gw, kind);
});

// PostgreSQL reads are network round trips: the window in which a commit can land mid-read is wide.
describe('live feeds under concurrent writes: PostgreSQL', () => {
  let cluster: PgCluster;
  let gw: TestGateway;
  before(async () => {
    cluster = await startPgCluster();
    const c = cluster.certs;
    gw = await startOn({ server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert });
  });
  after(async () => { await gw?.stop(); await cluster?.stop(); });
  for (const kind of KINDS) raceTest(() => gw, kind);
});

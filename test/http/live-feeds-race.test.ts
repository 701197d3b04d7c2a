/**
 * Live feeds under a stream of concurrent writes: every feed sees every write, promptly. A feed
 * reads a page, then waits on the notifier; a commit notified while the read is still running (a
 * read shared with other feeds, a PostgreSQL round trip) must wake the next wait at once, or the
 * feed sleeps through it until some later write. WebSocket feeds without heartbeats and BLIP's
 * continuous pull have no timeout to rescue them, so a missed wake-up is a missed change.
 *
 * Only the last writes can be lost that way (any later write wakes the feed), so this end-to-end
 * check rarely hits the race itself: test/unit/notifier.test.ts pins the mechanism; this one guards
 * the whole path (shared reads, rendering, both backends) against feeds that fall behind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { type PgCluster, startPgCluster } from '../helpers/postgres.ts';

const FEEDS = 40;
const WRITES = 60;

async function startOn(db: Record<string, unknown>): Promise<TestGateway> {
  return startGateway({ databases: { db }, config: { limits: { max_changes_feeds_per_user: 0 } } });
}

/** Every feed sees every write; `gw` is read when the test runs (started in the caller's `before`). */
function raceTest(gateway: () => TestGateway): void {
  test(`${FEEDS} websocket feeds without heartbeats each see all ${WRITES} writes`, async () => {
    const gw = gateway();
    const seen: Set<string>[] = [];
    const sockets: WebSocket[] = [];
    await Promise.all(Array.from({ length: FEEDS }, (_, i) => new Promise<void>((resolve, reject) => {
      const ids = new Set<string>();
      seen.push(ids);
      const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`);
      sockets.push(ws);
      ws.on('open', () => ws.send(JSON.stringify({ since: 0, filter: i % 2 ? 'sync_gateway/bychannel' : undefined, channels: i % 2 ? 'race' : undefined })));
      ws.on('message', (data) => {
        const text = data.toString();
        if (text === '[]') resolve(); // caught up: now live
        if (!text.startsWith('[')) return;
        for (const e of JSON.parse(text) as { id: string }[]) ids.add(e.id);
      });
      ws.on('error', reject);
    })));
    // Bursts of concurrent writes with short, uneven gaps: commits land while feeds are mid-read.
    for (let i = 0; i < WRITES; i += 3) {
      await Promise.all([0, 1, 2].map((k) => req(`${gw.publicUrl}/db/w${i + k}`, { method: 'PUT', json: { channels: ['race'] } })));
      await new Promise((r) => setTimeout(r, (i * 7) % 5));
    }
    const want = Array.from({ length: WRITES }, (_, i) => `w${i}`);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !seen.every((ids) => want.every((id) => ids.has(id)))) await new Promise((r) => setTimeout(r, 50));
    for (const ws of sockets) ws.close();
    const short = seen.map((ids, i) => [i, want.filter((id) => !ids.has(id))] as const).filter(([, m]) => m.length > 0);
    assert.deepEqual(short, [], 'feeds that missed writes (feed index, missing ids)');
  });
}

describe('live feeds under concurrent writes: SQLite', () => {
  let gw: TestGateway;
  before(async () => { gw = await startOn({ server: 'memory:' }); });
  after(() => gw.stop());
  raceTest(() => gw);
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
  raceTest(() => gw);
});

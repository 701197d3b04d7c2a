/**
 * At-least-once webhooks survive what best-effort ones lose:
 *  - the real CLI on SQLite while the receiver answers 500, then is down, and the gateway is
 *    SIGKILLed in between: afterwards each document's last acknowledged revision was delivered
 *    (2xx) and, per document, deliveries never went back to an older generation;
 *  - two nodes on one PostgreSQL: each change is delivered by one node only (no (id, rev) twice),
 *    and when the node delivering dies, the other takes over from the shared checkpoint.
 * Following the changes feed means a document changed several times while the receiver was away
 * is delivered with its latest revision (as `_changes` shows it), not once per revision.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { req } from '../helpers/gateway.ts';
import { freePort, startCli, stopCli } from '../helpers/cli-process.ts';
import { startNode, startPgCluster, type Node } from '../helpers/postgres.ts';
import { startReceiver, type Received, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const gen = (rev: string) => Number(rev.slice(0, rev.indexOf('-')));

const handler = (port: number) => ({
  handler: 'webhook', url: `http://127.0.0.1:${port}/hook`, delivery: 'at_least_once',
  // A 500 is an attempt; make sure the 500 phase cannot use them all up.
  max_attempts: 1_000_000, retry_initial_ms: 20, retry_max_ms: 300, timeout: 10,
});

/** Every (id, rev) answered 2xx, over all receiver incarnations. */
function delivered(all: Received[]): Received[] {
  return all.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300);
}

/** Per document, the generations of its POSTs in arrival order never go down. */
function assertOrderedPerDoc(all: Received[]): void {
  const last = new Map<string, number>();
  for (const r of all) {
    const g = gen(r.body._rev);
    assert.ok(g >= (last.get(r.body._id) ?? 0), `${r.body._id}: ${r.body._rev} arrived after generation ${last.get(r.body._id)}`);
    last.set(r.body._id, g);
  }
}

async function writeDocs(base: string, prefix: string, docs: number, revs: number, acked: Map<string, string>): Promise<void> {
  for (let i = 0; i < docs; i++) {
    let rev: string | undefined;
    for (let r = 0; r < revs; r++) {
      const res = await req(`${base}/db/${prefix}${i}${rev ? `?rev=${rev}` : ''}`, { method: 'PUT', json: { i, r } });
      assert.equal(res.status, 201, res.text);
      rev = res.body.rev as string;
      acked.set(`${prefix}${i}`, rev);
    }
  }
}

describe('at-least-once webhooks: receiver failing, then down, gateway SIGKILLed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-webhook-crash-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every document\'s last acknowledged revision is delivered, in order per document', async () => {
    const [pub, adm, met, rxPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({
      interface: `127.0.0.1:${pub}`, adminInterface: `127.0.0.1:${adm}`, metricsInterface: `127.0.0.1:${met}`,
      logging: { console: { log_level: 'warn' } },
      databases: { db: { server: `sqlite:${join(dir, 'db.sqlite3')}`, event_handlers: { document_changed: [handler(rxPort)] } } },
    }));
    const base = `http://127.0.0.1:${adm}`;
    const acked = new Map<string, string>();
    const all: Received[] = [];
    let rx: WebhookReceiver | undefined = await startReceiver(rxPort);
    let gw = await startCli([cfg], dir, pub);
    try {
      // 1. The receiver answers 500 to everything while documents are written.
      rx.answer = () => 500;
      await writeDocs(base, 'a', 10, 3, acked);
      await rx.until(() => rx!.received.length >= 20, '20 refused POSTs');
      // 2. It recovers for a while, then goes down in the middle of delivery.
      rx.answer = () => 200;
      await writeDocs(base, 'b', 10, 2, acked);
      await rx.until(() => delivered(rx!.received).length >= 5, 'some deliveries');
      all.push(...rx.received);
      await rx.close();
      rx = undefined;
      await writeDocs(base, 'c', 10, 2, acked);
      // 3. The gateway is killed while the receiver is down, and starts again.
      assert.equal(await stopCli(gw.child, 'SIGKILL'), 'SIGKILL');
      gw = await startCli([cfg], dir, pub);
      await writeDocs(base, 'd', 5, 2, acked);
      // 4. The receiver comes back on its address; delivery resumes from the checkpoint.
      rx = await startReceiver(rxPort);
      const missing = () => [...acked].filter(([id, rev]) => !delivered([...all, ...rx!.received]).some((r) => r.body._id === id && r.body._rev === rev));
      await rx.until(() => missing().length === 0, 'every last revision', 120_000).catch((err) => {
        throw new Error(`${(err as Error).message}; missing: ${missing().map(([id, rev]) => `${id}@${rev}`).join(' ')}\n${gw.output()}`);
      });
      all.push(...rx.received);
      assertOrderedPerDoc(all);
      const status = (await req(`${base}/db/_event_handlers`)).body.handlers[0];
      assert.equal(status.failed, 0, JSON.stringify(status));
    } finally {
      await stopCli(gw.child, 'SIGKILL');
      await rx?.close();
    }
  });
});

describe('at-least-once webhooks: two nodes on one PostgreSQL', () => {
  test('each change is delivered by one node; when that node dies the other goes on', async () => {
    const cluster = await startPgCluster();
    const dir = mkdtempSync(join(tmpdir(), 'syncgate-webhook-pg-'));
    const rx = await startReceiver();
    const c = cluster.certs;
    const db = {
      server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert,
      event_handlers: { document_changed: [handler(rx.port)] },
    };
    let nodes: Node[] = [];
    try {
      nodes = await Promise.all([startNode(dir, { db }), startNode(dir, { db })]);
      const acked = new Map<string, string>();
      // Writes through both nodes, interleaved.
      await Promise.all(nodes.map((n, k) => writeDocs(n.adminUrl, `n${k}-`, 20, 2, acked)));
      const deliveredAll = () => [...acked].every(([id, rev]) => delivered(rx.received).some((r) => r.body._id === id && r.body._rev === rev));
      await rx.until(deliveredAll, 'every document from both nodes', 120_000);
      const seen = new Set<string>();
      for (const r of delivered(rx.received)) {
        const key = `${r.body._id}@${r.body._rev}`;
        assert.ok(!seen.has(key), `${key} was delivered twice`);
        seen.add(key);
      }
      assertOrderedPerDoc(rx.received);
      // The checkpoint moves just after the last 2xx: wait for it to settle (pending 0 on both).
      let statuses: any[] = [];
      for (let tries = 0; ; tries++) {
        statuses = await Promise.all(nodes.map(async (n) => (await req(`${n.adminUrl}/db/_event_handlers`)).body.handlers[0]));
        if (statuses.every((s) => s.pending === 0) || tries > 600) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(statuses.map((s) => s.pending), [0, 0], JSON.stringify(statuses));
      assert.equal(statuses.filter((s) => s.leaseHeld).length, 1, JSON.stringify(statuses));
      assert.equal(statuses[0].checkpoint, statuses[1].checkpoint, 'one checkpoint, shared');
      assert.equal(statuses[0].delivered, delivered(rx.received).length, 'the shared count');
      // The node holding the lease dies; the other takes over once the lease runs out.
      const holder = statuses.findIndex((s) => s.leaseHeld);
      await nodes[holder].kill('SIGKILL');
      const survivor = nodes[1 - holder];
      await writeDocs(survivor.adminUrl, 'after-', 5, 1, acked);
      await rx.until(deliveredAll, 'the writes after the kill', 120_000);
      assert.equal((await req(`${survivor.adminUrl}/db/_event_handlers`)).body.handlers[0].leaseHeld, true);
    } finally {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await rx.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

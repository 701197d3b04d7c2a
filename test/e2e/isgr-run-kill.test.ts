/**
 * The remote as a real child process (SQLite file), SIGKILLed in the middle of a replication and
 * started again on the same data: the replicator goes `reconnecting`, resumes from its
 * checkpoints, and ends with every document on both sides under the same revision: nothing lost,
 * nothing written twice as a new revision (every document is still at generation 1).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type CliProcess, freePort, startCli, stopCli } from '../helpers/cli-process.ts';
import type { ActiveReplicator } from '../../src/replication/isgr/types.ts';
import { replicator, req, startDbGateway, waitState, winners, type TestGateway } from './isgr-run-helpers.ts';

const DOCS = 3000;

async function remoteProcess(dir: string): Promise<{ start(): Promise<CliProcess>; admin: string }> {
  const [pub, adm, met] = [await freePort(), await freePort(), await freePort()];
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({
    interface: `127.0.0.1:${pub}`, adminInterface: `127.0.0.1:${adm}`, metricsInterface: `127.0.0.1:${met}`,
    logging: { console: { log_level: 'warn' } },
    databases: { db: { server: `sqlite:${join(dir, 'db.sqlite3')}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } } } },
  }));
  return { start: () => startCli([cfg], dir, pub), admin: `http://127.0.0.1:${adm}/db` };
}

async function bulk(url: string, from: number, n: number, prefix: string): Promise<void> {
  for (let i = from; i < from + n; i += 500) {
    const docs = [];
    for (let k = i; k < Math.min(i + 500, from + n); k++) docs.push({ _id: `${prefix}${String(k).padStart(5, '0')}`, n: k, pad: 'x'.repeat(200) });
    const r = await req(`${url}/_bulk_docs`, { method: 'POST', json: { docs } });
    assert.equal(r.status, 201);
  }
}

/** Polls the replicator until `pred` holds (kills happen mid-run, not at a batch boundary we chose). */
async function until(rep: ActiveReplicator, pred: (n: ReturnType<ActiveReplicator['snapshot']>) => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!pred(rep.snapshot())) {
    if (Date.now() > deadline) throw new Error(`condition not reached: ${JSON.stringify(rep.snapshot())}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function remoteWinners(admin: string): Promise<Map<string, string>> {
  const r = await req(`${admin}/_changes`);
  return new Map((r.body.results as { id: string; changes: { rev: string }[] }[]).filter((e) => !e.id.startsWith('_user/')).map((e) => [e.id, e.changes[0].rev]));
}

describe('ISGR with the remote SIGKILLed mid-batch', () => {
  const dirs: string[] = [];
  const gws: TestGateway[] = [];
  const procs: CliProcess[] = [];
  after(async () => {
    for (const p of procs) await stopCli(p.child, 'SIGKILL');
    for (const g of gws) await g.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const direction of ['pull', 'push'] as const) {
    test(`${direction}: killed and restarted, it resumes; nothing lost, no duplicate revision`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'syncgate-isgr-kill-'));
      dirs.push(dir);
      const remote = await remoteProcess(dir);
      let proc = await remote.start();
      procs.push(proc);
      const a = await startDbGateway();
      gws.push(a);
      const source = direction === 'pull' ? remote.admin : `${a.adminUrl}/db`;
      await bulk(source, 0, DOCS, 'k');
      const { rep, logs } = replicator(a, { replication_id: `kill-${direction}`, remote: remote.admin, direction, batch_size: 50 });
      rep.start();
      const progress = direction === 'pull' ? 'docs_read' : 'docs_written';
      await until(rep, (s) => s.counters[progress] >= 200);
      await stopCli(proc.child, 'SIGKILL');
      const down = await waitState(rep, ['reconnecting', 'stopped'], 60_000, logs);
      assert.equal(down.state, 'reconnecting', `the kill came after the end: ${JSON.stringify(down.counters)}`);
      assert.ok(down.counters[progress] < DOCS);
      proc = await remote.start();
      procs.push(proc);
      const end = await waitState(rep, ['stopped', 'error'], 120_000, logs);
      assert.equal(end.state, 'stopped', end.error_message);

      const local = await winners(a);
      const far = await remoteWinners(remote.admin);
      let n = 0;
      for (const [id, rev] of far) {
        if (!id.startsWith('k')) continue;
        n++;
        assert.equal(local.get(id), rev, id);
        assert.match(rev, /^1-/, `${id} was written again as a new revision: ${rev}`);
      }
      assert.equal(n, DOCS);
      // Counted once each: a revision the remote (or we) already had is answered, not re-sent.
      assert.ok(end.counters[progress] >= DOCS - 50 && end.counters[progress] <= DOCS + 50, JSON.stringify(end.counters));
    });
  }
});

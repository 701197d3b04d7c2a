/**
 * Crash safety (issue 8, item 1): the real CLI process, with SQLite storage in a temp dir, is killed
 * with SIGKILL at random moments while clients write: a PouchDB live push (from one local database
 * that lives across all rounds), direct `PUT`s, `_bulk_docs` batches and updates of one document.
 * After each kill:
 *  - the SQLite file passes `PRAGMA integrity_check` and the server starts again on it;
 *  - every write that was acknowledged (a 201, a `_bulk_docs` row with a rev, a PouchDB `change`
 *    event, which fires once the target answered the batch) is there, with that revision;
 *  - the changes feed lists every acknowledged document and does not run past `update_seq`;
 *  - PouchDB resumes from its checkpoint: the next push reads no more than the documents created
 *    since the last push that completed (a lost `_local` checkpoint would make it read everything),
 *    and afterwards the server holds every local document.
 *
 * The seed (kill delays, batch sizes) is printed; replay with
 *   SEED=<n> node --import tsx --test test/e2e/crash.test.ts
 * The exact moment of each kill still depends on timing, so a replay is close, not identical.
 * CRASH_ROUNDS sets the number of kills (default 20); CRASH_DEBUG=1 prints each round's timings.
 * Most of the run time is the CLI starting 21 times (about 1 s each on an idle machine).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { req } from '../helpers/gateway.ts';
import { type CliProcess, freePort, startCli, stopCli } from '../helpers/cli-process.ts';
import { localDb, remoteDb } from '../helpers/pouchdb.ts';
import { seededRandom as rng } from '../helpers/random.ts';

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 20);


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`SIGKILL while clients write (SEED=${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-crash-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test(`${ROUNDS} kills: acknowledged writes survive, the database opens cleanly, replication resumes`, async () => {
    console.log(`crash seed: SEED=${SEED} (replay: SEED=${SEED} node --import tsx --test test/e2e/crash.test.ts)`);
    const next = rng(SEED);
    const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
    const [pub, adm, met] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'db.sqlite3');
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({
      interface: `127.0.0.1:${pub}`, adminInterface: `127.0.0.1:${adm}`, metricsInterface: `127.0.0.1:${met}`,
      logging: { console: { log_level: 'warn' } },
      databases: { db: { server: `sqlite:${file}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } } } },
    }));
    const url = `http://127.0.0.1:${pub}/db`;
    const admin = `http://127.0.0.1:${adm}/db`;

    /** id → the revision the server acknowledged for it (the latest one, for the updated doc). */
    const acked = new Map<string, string>();
    const local = localDb();
    local.setMaxListeners(0); // every replication adds a 'destroyed' listener while it runs
    let localCount = 0;
    let createdSinceCompletePush = 0;
    let resumedPushes = 0;
    let proc: CliProcess | undefined;
    const stats = { direct: 0, bulk: 0, pouch: 0, updates: 0, killedMidPush: 0 };
    /** Answers other than the acknowledgement a writer expects (a refused write, a 500): none are. */
    const refused: string[] = [];
    const refuse = async (what: string, r: Response) => { refused.push(`${what}: ${r.status} ${await r.text().catch(() => '')}`.slice(0, 300)); };

    const verify = async (round: number) => {
      const ids = [...acked.keys()];
      const all = await req(`${admin}/_all_docs`, { method: 'POST', json: { keys: ids } });
      assert.equal(all.status, 200, all.text);
      const lost: string[] = [];
      all.body.rows.forEach((row: { key: string; value?: { rev: string }; error?: string }) => {
        const want = acked.get(row.key)!;
        if (row.key === 'counter') {
          // Updated many times: the acknowledged revision is the current one or an ancestor of it.
          if (!row.value || Number(row.value.rev.split('-')[0]) < Number(want.split('-')[0])) lost.push(`${row.key} ${want} (now ${row.value?.rev ?? row.error})`);
        } else if (row.value?.rev !== want) lost.push(`${row.key} ${want} (now ${row.value?.rev ?? row.error})`);
      });
      assert.deepEqual(lost.slice(0, 20), [], `SEED=${SEED} round ${round}: ${lost.length} acknowledged writes lost`);
      if (acked.has('counter')) {
        const c = await req(`${admin}/counter?revs=true`);
        const want = acked.get('counter')!;
        const [gen, digest] = [Number(want.split('-')[0]), want.slice(want.indexOf('-') + 1)];
        assert.equal(c.body._revisions.ids[c.body._revisions.start - gen], digest, `SEED=${SEED}: counter ${want} is in the history`);
      }
      const info = await req(`${admin}/`);
      const feed = await req(`${admin}/_changes?since=0`);
      // The admin feed leaves out `_user/` entries, so its last_seq may trail update_seq, never pass it.
      assert.ok(Number(feed.body.last_seq) <= Number(info.body.update_seq), `last_seq ${feed.body.last_seq} <= update_seq ${info.body.update_seq}`);
      const inFeed = new Set(feed.body.results.map((r: { id: string }) => r.id));
      for (const id of ids) assert.ok(inFeed.has(id), `${id} is in the changes feed`);
    };

    try {
      for (let round = 0; round <= ROUNDS; round++) {
        const t0 = Date.now();
        proc = await startCli([cfg], dir, pub);
        const t1 = Date.now();
        await verify(round);
        const t2 = Date.now();
        // Resume: the push starts from the last checkpoint the server kept.
        const resumed = await local.replicate.to(remoteDb(url));
        assert.equal(resumed.ok, true);
        assert.ok(resumed.docs_read <= createdSinceCompletePush,
          `SEED=${SEED} round ${round}: the push re-read ${resumed.docs_read} docs, but only ${createdSinceCompletePush} were created since the last complete push`);
        if (round > 0 && localCount > createdSinceCompletePush) resumedPushes++;
        createdSinceCompletePush = 0;
        // Now every local document is on the server: the next round checks they survive too.
        for (const row of (await local.allDocs()).rows) acked.set(row.id, row.value.rev);
        const t3 = Date.now();
        if (process.env.CRASH_DEBUG) console.log(`round ${round}: start ${t1 - t0} ms, verify ${t2 - t1} ms, resume ${t3 - t2} ms`);
        if (round === ROUNDS) { await verify(round); break; }

        // The crash phase: several writers, then SIGKILL after a random delay.
        let stop = false;
        const writers: Promise<void>[] = [];
        const rep = local.replicate.to(remoteDb(url), { live: true, retry: false, batch_size: int(1, 40) });
        let flowing: () => void = () => {};
        const firstBatch = new Promise<void>((r) => { flowing = r; });
        rep.on('change', (info: { docs: { _id: string; _rev: string }[] }) => {
          for (const d of info.docs) { acked.set(d._id, d._rev); stats.pouch++; }
          flowing();
        });
        const repDone = new Promise<void>((r) => { rep.on('complete', () => r()); rep.on('error', () => r()); });
        writers.push((async () => { // local docs for PouchDB to push
          while (!stop) {
            const n = int(1, 3);
            await local.bulkDocs(Array.from({ length: n }, () => ({ _id: `p-${localCount++}`, round, pad: 'x'.repeat(int(0, 500)) })));
            createdSinceCompletePush += n;
            await sleep(int(10, 40));
          }
        })());
        writers.push((async () => { // direct PUTs
          for (let i = 0; !stop; i++) {
            const id = `d-${round}-${i}`;
            try {
              const r = await fetch(`${url}/${id}`, { method: 'PUT', body: JSON.stringify({ round, i }), headers: { 'Content-Type': 'application/json' } });
              if (r.status === 201) { acked.set(id, (await r.json()).rev); stats.direct++; } else await refuse(`PUT ${id}`, r);
            } catch { /* killed: no answer at all */ }
          }
        })());
        writers.push((async () => { // _bulk_docs batches
          for (let i = 0; !stop; i++) {
            const docs = Array.from({ length: int(1, 30) }, (_, k) => ({ _id: `b-${round}-${i}-${k}`, k }));
            try {
              const r = await fetch(`${url}/_bulk_docs`, { method: 'POST', body: JSON.stringify({ docs }), headers: { 'Content-Type': 'application/json' } });
              if (r.status !== 201) { await refuse(`_bulk_docs ${docs[0]._id}…`, r); continue; }
              for (const row of await r.json()) {
                if (row.rev) { acked.set(row.id, row.rev); stats.bulk++; } else refused.push(`_bulk_docs row ${JSON.stringify(row)}`);
              }
            } catch { /* killed: no answer at all */ }
          }
        })());
        writers.push((async () => { // one document updated over and over
          while (!stop) {
            try {
              const cur = await fetch(`${admin}/counter`);
              if (cur.status !== 200 && !(cur.status === 404 && !acked.has('counter'))) { await refuse('GET counter', cur); continue; }
              const rev = cur.status === 200 ? (await cur.json())._rev : undefined;
              const r = await fetch(`${url}/counter${rev ? `?rev=${rev}` : ''}`, { method: 'PUT', body: JSON.stringify({ at: Date.now() }), headers: { 'Content-Type': 'application/json' } });
              if (r.status === 201) { acked.set('counter', (await r.json()).rev); stats.updates++; } else await refuse(`PUT counter?rev=${rev}`, r);
            } catch { /* killed: no answer at all */ }
          }
        })());

        // Kill while PouchDB is pushing: once its first batch is in (or after 1.5 s), at a random moment.
        await Promise.race([firstBatch, sleep(1500)]);
        await sleep(int(0, 250));
        assert.notEqual(await stopCli(proc.child, 'SIGKILL'), 0);
        stop = true;
        const k0 = Date.now();
        rep.cancel();
        await Promise.all([...writers, repDone]);
        if (process.env.CRASH_DEBUG) console.log(`round ${round}: writers stopped in ${Date.now() - k0} ms`);
        // A writer that is answered at all is acknowledged: the kill only ever leaves requests unanswered.
        assert.deepEqual(refused.slice(0, 10), [], `SEED=${SEED} round ${round}: ${refused.length} writes answered but not acknowledged`);

        // The file must be sound on its own, before the server touches it again.
        const db = new Database(file);
        try {
          assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `SEED=${SEED} round ${round}: integrity_check`);
        } finally {
          db.close();
        }
      }
      console.log(`crash: ${ROUNDS} kills; acknowledged: ${stats.direct} PUTs, ${stats.bulk} _bulk_docs rows, ${stats.pouch} PouchDB docs, ${stats.updates} updates; ${localCount} local docs; ${resumedPushes} pushes resumed from a checkpoint`);
      assert.ok(resumedPushes > 0, 'some pushes resumed from a checkpoint');
      // Every kind of writer was acknowledged, so each kind's survival was checked, not assumed.
      for (const kind of ['direct', 'bulk', 'updates'] as const) assert.ok(stats[kind] > 0, `${kind} writes were acknowledged`);
    } finally {
      if (proc && proc.child.exitCode === null && proc.child.signalCode === null) assert.equal(await stopCli(proc.child, 'SIGTERM'), 0, proc.output());
    }
  });
});

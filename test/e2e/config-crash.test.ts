/**
 * A node killed (SIGKILL) while it writes database configs loses nothing and mixes nothing: after
 * each restart the config is the last acknowledged one or the one in flight, whole (its `revs_limit`
 * and its sync function come from the same request), and its version's generation matches it, so the
 * config and its version were written together. On SQLite (and the config file passes its integrity
 * check) and on PostgreSQL.
 * SEED picks the kill delays; CONFIG_CRASH_ROUNDS the number of kills (default 8).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { req } from '../helpers/gateway.ts';
import { type CliProcess, freePort, startCli, stopCli } from '../helpers/cli-process.ts';
import { seededRandom } from '../helpers/random.ts';
import { type PgCluster, startPgCluster } from '../helpers/postgres.ts';

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(process.env.CONFIG_CRASH_ROUNDS ?? 8);

for (const backend of ['sqlite', 'postgres'] as const) describe(`SIGKILL during config writes, ${backend} (SEED=${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-config-crash-'));
  let cluster: PgCluster | undefined;
  after(async () => { await cluster?.stop(); rmSync(dir, { recursive: true, force: true }); });

  test(`${ROUNDS} kills: the config is the old or the new one, never a mix`, async () => {
    const next = seededRandom(SEED);
    const [pub, adm, met] = [await freePort(), await freePort(), await freePort()];
    const data = join(dir, 'data');
    const cfg = join(dir, 'sg.json');
    let server: Record<string, unknown> = { server: `sqlite:${data}` };
    if (backend === 'postgres') {
      cluster = await startPgCluster();
      const c = cluster.certs;
      server = { server: cluster.url(), x509_cert_path: c.clientCert, x509_key_path: c.clientKey, ca_cert_path: c.caCert };
    }
    writeFileSync(cfg, JSON.stringify({
      bootstrap: server,
      api: { public_interface: `127.0.0.1:${pub}`, admin_interface: `127.0.0.1:${adm}`, metrics_interface: `127.0.0.1:${met}` },
      logging: { console: { log_level: 'warn' } },
    }));
    const admin = `http://127.0.0.1:${adm}/db`;
    const body = (k: number) => ({ guest: { disabled: false, admin_channels: ['*'] }, revs_limit: 100 + k, sync: `function(doc){ channel("k${k}"); }` });
    let acked = 0; // the k of the last acknowledged write (0: the create)
    let k = 0;
    let proc: CliProcess | undefined;
    try {
      proc = await startCli([cfg], dir, pub);
      assert.equal((await req(`${admin}/`, { method: 'PUT', json: body(0) })).status, 201);
      for (let round = 1; round <= ROUNDS; round++) {
        let stop = false;
        const writer = (async () => {
          while (!stop) {
            const sent = k + 1;
            k = sent;
            try {
              const r = await req(`${admin}/_config`, { method: 'PUT', json: body(sent) });
              if (r.status === 201) acked = sent;
              else { k = sent - 1; assert.fail(`write ${sent}: ${r.status} ${r.text}`); }
            } catch (err) {
              if ((err as Error).name === 'AssertionError') throw err;
              return; // the connection died with the process
            }
          }
        })();
        await new Promise((r) => setTimeout(r, 30 + Math.floor(next() * 400)));
        await stopCli(proc.child, 'SIGKILL');
        stop = true;
        await writer;
        if (backend === 'sqlite') {
          const file = new Database(join(data, '_config.sqlite3'));
          assert.equal(file.pragma('integrity_check', { simple: true }), 'ok');
          file.close();
        }
        proc = await startCli([cfg], dir, pub);
        const r = await req(`${admin}/_config`);
        assert.equal(r.status, 200, r.text);
        const got = r.body.revs_limit - 100;
        assert.ok(got === acked || got === k, `SEED=${SEED} round ${round}: config ${got}, acknowledged ${acked}, in flight ${k}`);
        assert.deepEqual(r.body, { ...body(got), name: 'db', bucket: 'db' }, 'one whole request, never a mix');
        assert.equal(Number(/^"(\d+)-/.exec(r.headers.get('etag')!)![1]), got + 1, 'the version was written with its config');
        assert.equal((await req(`${admin}/_config/sync`)).text, body(got).sync, 'the database runs that config');
        if (process.env.CRASH_DEBUG) console.log(`round ${round}: acknowledged ${acked}, in flight ${k}, found ${got}`);
        acked = got;
        k = got;
      }
    } finally {
      if (proc) await stopCli(proc.child, 'SIGKILL');
    }
  });
});

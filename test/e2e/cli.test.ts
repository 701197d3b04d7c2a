import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { req } from '../helpers/gateway.ts';
import { localDb, remoteDb } from '../helpers/pouchdb.ts';
import { BIN, freePort, startCli } from '../helpers/cli-process.ts';

function stopCli(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null) return res(child.exitCode);
    child.once('exit', (code) => res(code));
    child.kill(signal);
  });
}

describe('the syncgate CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--help and --version', () => {
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /-adminInterface/);
    const version = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0);
    assert.match(version.stdout, /^syncgate \d+\.\d+\.\d+/);
  });

  test('a config error is one line naming the key, and a non-zero exit', () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ databases: { db: { server: 'memory:', revs_limt: 5 } } }));
    const r = spawnSync(process.execPath, [BIN, cfg], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /databases\.db\.revs_limt/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  test('a 3.x start-up file: a bad key or an unset variable is one line; env values are used', async () => {
    const cfg = join(dir, 'sg3.json');
    const run = (env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [BIN, cfg], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
    writeFileSync(cfg, JSON.stringify({ bootstrap: { server: `sqlite:${join(dir, 'sg3')}`, grop_id: 'x' } }));
    let r = run();
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown key "grop_id" at bootstrap\.grop_id/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    writeFileSync(cfg, '{"bootstrap": {"server": "$SG_TEST_DATA_DIR"}, "api": {"public_interface": "127.0.0.1:${SG_TEST_PORT}"}}');
    r = run({ SG_TEST_DATA_DIR: '', SG_TEST_PORT: '' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /undefined environment variable '\$\{SG_TEST_DATA_DIR\}'/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const [pub, adm, met] = [await freePort(), await freePort(), await freePort()];
    writeFileSync(cfg, JSON.stringify({
      bootstrap: { server: '$SG_TEST_DATA_DIR' },
      api: { public_interface: '127.0.0.1:${SG_TEST_PORT}', admin_interface: `127.0.0.1:${adm}`, metrics_interface: `127.0.0.1:${met}` },
    }));
    const child = spawn(process.execPath, [BIN, cfg], { env: { ...process.env, SG_TEST_DATA_DIR: `sqlite:${join(dir, 'sg3')}`, SG_TEST_PORT: String(pub) }, stdio: 'ignore' });
    try {
      for (let i = 0; ; i++) {
        try { if ((await fetch(`http://127.0.0.1:${pub}/`)).status === 200) break; } catch { /* not yet */ }
        if (i > 300) throw new Error('did not start');
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal((await req(`http://127.0.0.1:${adm}/envdb/`, { method: 'PUT', json: {} })).status, 201);
    } finally {
      await stopCli(child);
    }
  });

  test('a sync function that does not compile stops start-up naming the database and the line', () => {
    const cfg = join(dir, 'badsync.json');
    writeFileSync(cfg, '{"databases": {"shop": {"server": "memory:", "sync": `function(doc) {\n  channel(doc.x;\n}`}}}');
    const r = spawnSync(process.execPath, [BIN, cfg], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /databases\.shop\.sync/);
    assert.match(r.stderr, /line 2/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  test('runs a Sync Gateway config file; PouchDB syncs; data survives a restart; SIGTERM exits cleanly', async () => {
    const [pub, admin] = [await freePort(), await freePort()];
    const cfg = join(dir, 'config.json');
    // Back-quoted sync function and case-insensitive keys, as Sync Gateway config files have them.
    writeFileSync(cfg, `{
      "Interface": "127.0.0.1:${pub}",
      "adminInterface": "127.0.0.1:${admin}",
      "metricsInterface": "127.0.0.1:${await freePort()}",
      "databases": {
        "todo": {
          "server": "sqlite:${join(dir, 'todo.sqlite3')}",
          "users": { "GUEST": { "disabled": false, "admin_channels": ["*"] } },
          "sync": \`function(doc) { channel(doc.channels); }\`
        }
      }
    }`);
    let { child, output } = await startCli([cfg], dir, pub);
    try {
      assert.match(output(), /Starting server on 127\.0\.0\.1:\d+/);
      const local = localDb();
      await local.bulkDocs(Array.from({ length: 20 }, (_, i) => ({ _id: `t${i}`, title: `task ${i}` })));
      const push = await local.replicate.to(remoteDb(`http://127.0.0.1:${pub}/todo`));
      assert.equal(push.docs_written, 20);
      assert.equal(await stopCli(child), 0);
      ({ child, output } = await startCli([cfg], dir, pub));
      const all = await req(`http://127.0.0.1:${pub}/todo/_all_docs`);
      assert.equal(all.body.rows.length, 20);
      const second = await local.replicate.to(remoteDb(`http://127.0.0.1:${pub}/todo`));
      assert.equal(second.docs_written, 0, 'checkpoint survived the restart');
      const dbs = await req(`http://127.0.0.1:${admin}/_all_dbs`);
      assert.deepEqual(dbs.body, ['todo']);
    } finally {
      assert.equal(await stopCli(child), 0);
    }
  });

  test('with no config it serves "db" from ./data/db.sqlite3', async () => {
    const [pub, admin] = [await freePort(), await freePort()];
    const metrics = `127.0.0.1:${await freePort()}`;
    const { child } = await startCli(['-interface', `127.0.0.1:${pub}`, '-adminInterface', `127.0.0.1:${admin}`, '-metricsInterface', metrics], dir, pub);
    try {
      const put = await req(`http://127.0.0.1:${pub}/db/hello`, { method: 'PUT', json: { a: 1 } });
      assert.equal(put.status, 201);
    } finally {
      await stopCli(child, 'SIGINT');
    }
    const again = await startCli(['-interface', `127.0.0.1:${pub}`, '-adminInterface', `127.0.0.1:${admin}`, '-metricsInterface', metrics], dir, pub);
    try {
      assert.equal((await req(`http://127.0.0.1:${pub}/db/hello`)).body.a, 1);
    } finally {
      await stopCli(again.child);
    }
  });
});

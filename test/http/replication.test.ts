/**
 * ISGR definitions and status over the admin API on SQLite (spec sg3-admin.md §5, checked against
 * Sync Gateway's db/sg_replicate_cfg.go and rest/admin_api.go): every validation message, defaults,
 * redaction, PUT/POST/GET/DELETE, the actions and their rules, adhoc removal, status options,
 * metrics and `/_status`. Replicators come from a test factory that reports what it is told.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { req, startGateway } from '../helpers/gateway.ts';
import { combinedState } from '../../src/replication/isgr/status.ts';
import { eventually, type IsgrGateway, startIsgrGateway, tempDir } from '../e2e/isgr-api-support.ts';

const tmp = tempDir('syncgate-isgr-');
const caFile = join(tmp.dir, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
let gw: IsgrGateway;
let admin: string;

before(async () => {
  gw = await startIsgrGateway({ db: { server: 'memory:' } });
  admin = `${gw.adminUrl}/db`;
});
after(async () => {
  await gw?.stop();
  tmp.remove();
});

const put = (id: string, json: unknown) => req(`${admin}/_replication/${id}`, { method: 'PUT', json });
const status = async (id: string, q = '') => (await req(`${admin}/_replicationStatus/${id}${q}`)).body;
const action = (id: string, a: string) => req(`${admin}/_replicationStatus/${id}?action=${a}`, { method: 'PUT' });
const waitStatus = (id: string, want: string) => eventually(`${id} to be ${want}`, async () => ((await status(id)).status === want ? true : undefined));
const REMOTE = 'http://remote.example:4984/db';

describe('ISGR definitions: validation (each refused body writes nothing)', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['no remote', { direction: 'pull' }, 'Replication remote must be specified'],
    ['no direction', { remote: REMOTE }, 'Replication direction must be specified'],
    ['bad direction', { remote: REMOTE, direction: 'sideways' }, 'Invalid replication direction "sideways", valid values are push/pull/pushAndPull'],
    ['credentials twice', { remote: 'http://u:p@remote.example:4984/db', remote_username: 'u2', direction: 'pull' },
      'Auth credentials can be specified using remote_username/remote_password config properties or remote URL, but not both'],
    ['username and remote_username', { remote: REMOTE, username: 'a', remote_username: 'b', direction: 'pull' },
      'Cannot set both remote_username and username config options. Please only use the remote_username and remote_password config options'],
    ['unparsable URL', { remote: 'not a url', direction: 'pull' }, 'Replication remote URL is invalid'],
    ['unknown filter', { remote: REMOTE, direction: 'pull', filter: 'mine' }, 'Unknown replication filter; try sync_gateway/bychannel'],
    ['bychannel without query_params', { remote: REMOTE, direction: 'pull', filter: 'sync_gateway/bychannel' },
      'Replication specifies sync_gateway/bychannel filter but is missing query_params'],
    ['channels not an array', { remote: REMOTE, direction: 'pull', filter: 'sync_gateway/bychannel', query_params: { channels: 'a' } },
      "query_params value for 'channels' must be an array of channels"],
    ['query_params a string', { remote: REMOTE, direction: 'pull', filter: 'sync_gateway/bychannel', query_params: 'a' },
      'Bad channels array in query_params for sync_gateway/bychannel filter'],
    ['a channel not a string', { remote: REMOTE, direction: 'pull', filter: 'sync_gateway/bychannel', query_params: ['a', 7] },
      'Expecting string channel but got 7 (number) in query_params for sync_gateway/bychannel filter'],
    ['bad conflict_resolution_type', { remote: REMOTE, direction: 'pull', conflict_resolution_type: 'mine' },
      'Conflict resolution type is invalid, valid values are localWins/remoteWins/default/custom'],
    ['custom without resolver', { remote: REMOTE, direction: 'pull', conflict_resolution_type: 'custom' },
      'Custom conflict resolution type has been set but no conflict resolution function has been defined'],
    ['adhoc with initial_state stopped', { remote: REMOTE, direction: 'pull', adhoc: true, initial_state: 'stopped' },
      'Setting initial_state=stopped is not valid for replications specifying adhoc=true'],
    ['bad initial_state', { remote: REMOTE, direction: 'pull', initial_state: 'paused' }, 'Replication initial_state must be running or stopped, not "paused"'],
    ['negative batch_size', { remote: REMOTE, direction: 'pull', batch_size: -1 }, 'Replication batch_size must not be negative'],
    ['negative max_backoff_time', { remote: REMOTE, direction: 'pull', max_backoff_time: -5 }, 'Replication max_backoff_time must not be negative'],
    ['wrong type', { remote: REMOTE, direction: 'pull', continuous: 'yes' }, 'Replication field "continuous" must be a boolean'],
    ['unreadable CA file', { remote: 'https://remote.example/db', direction: 'pull', remote_ca_file: join(tmp.dir, 'missing.pem') },
      `remote_ca_file: cannot read ${join(tmp.dir, 'missing.pem')}: ENOENT`],
    ['client cert without key', { remote: 'https://remote.example/db', direction: 'pull', remote_cert_file: caFile },
      "remote_cert_file needs remote_key_file (the client certificate's private key)"],
  ];
  for (const [name, body, reason] of cases) {
    test(name, async () => {
      const r = await put('bad', body);
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.body, { error: 'Bad Request', reason });
      assert.equal((await req(`${admin}/_replication/bad`)).status, 404);
    });
  }

  test('an id longer than 160 characters; a body id that differs from the path', async () => {
    const long = 'x'.repeat(161);
    assert.equal((await put(long, { remote: REMOTE, direction: 'pull' })).body.reason, 'Replication ID must be less than 160 characters');
    assert.equal((await put('x'.repeat(160), { remote: REMOTE, direction: 'pull', initial_state: 'stopped' })).status, 201);
    await req(`${admin}/_replication/${'x'.repeat(160)}`, { method: 'DELETE' });
    const r = await put('one', { replication_id: 'two', remote: REMOTE, direction: 'pull' });
    assert.deepEqual(r.body, { error: 'Bad Request', reason: 'Replication ID in body "two" does not match request URI' });
  });
});

describe('ISGR definitions: create, read, update, delete', () => {
  test('PUT creates (201, empty body) with the defaults; GET lists it redacted with assigned_node, target_state, cluster_uuid', async () => {
    const r = await put('r1', {
      remote: 'http://edge:secret@remote.example:4984/db', direction: 'pushAndPull', continuous: true,
      filter: 'sync_gateway/bychannel', query_params: ['a', 'b'],
    });
    assert.equal(r.status, 201);
    assert.equal(r.text, '');
    const list = (await req(`${admin}/_replication/`)).body;
    const node = gw.gateway.nodeId;
    assert.deepEqual(list.r1, {
      replication_id: 'r1', remote: 'http://edge:xxxxx@remote.example:4984/db', direction: 'pushAndPull', continuous: true,
      filter: 'sync_gateway/bychannel', query_params: { channels: ['a', 'b'] }, conflict_resolution_type: 'default',
      batch_size: 200, max_backoff_time: 5, initial_state: 'running',
      cluster_uuid: list.r1.cluster_uuid, assigned_node: `${node} (local)`, target_state: 'running',
    });
    assert.match(list.r1.cluster_uuid, /^[0-9a-f-]{36}$/);
    // The one replication GET shows the definition alone (Sync Gateway's getReplication).
    const one = (await req(`${admin}/_replication/r1`)).body;
    assert.equal(one.remote, 'http://edge:xxxxx@remote.example:4984/db');
    assert.equal(one.assigned_node, undefined);
    assert.equal(gw.factory.latest('r1')!.config.remote, 'http://edge:secret@remote.example:4984/db', 'the replicator gets the real password');
  });

  test('remote_password is redacted; the EE-only options are accepted (custom resolver in back-quotes, batch_size)', async () => {
    const body = '{"remote": "https://remote.example/db", "remote_username": "edge", "remote_password": "s3cret", "direction": "pull",'
      + ' "conflict_resolution_type": "custom", "custom_conflict_resolver": `function(c) { return c.LocalDocument; }`, "batch_size": 50,'
      + ` "initial_state": "stopped", "purge_on_removal": true, "run_as": "edge-user", "max_backoff_time": 0, "remote_ca_file": ${JSON.stringify(caFile)}}`;
    const r = await req(`${admin}/_replication/r2`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 201, r.text);
    const d = (await req(`${admin}/_replication/r2`)).body;
    assert.equal(d.remote_password, 'xxxxx');
    assert.equal(d.custom_conflict_resolver, 'function(c) { return c.LocalDocument; }');
    assert.equal(d.batch_size, 50);
    assert.equal(d.purge_on_removal, true);
    assert.equal(d.run_as, 'edge-user');
    assert.equal(d.remote_ca_file, caFile);
    assert.equal(d.max_backoff_time, undefined, 'omitted when 0, as Sync Gateway omits it');
    assert.equal(gw.factory.latest('r2')!.config.remote_password, 's3cret');
    assert.equal((await status('r2')).status, 'stopped', 'initial_state stopped: built, not started');
    assert.equal(gw.factory.starts.get('r2'), undefined);
  });

  test('POST takes the body id, or generates a uuid (Location names it)', async () => {
    const r = await req(`${admin}/_replication/`, { method: 'POST', json: { replication_id: 'posted', remote: REMOTE, direction: 'push', initial_state: 'stopped' } });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('location'), '/db/_replication/posted');
    const g = await req(`${admin}/_replication/`, { method: 'POST', json: { remote: REMOTE, direction: 'push', initial_state: 'stopped' } });
    assert.equal(g.status, 201);
    const id = g.headers.get('location')!.split('/').pop()!;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal((await req(`${admin}/_replication/${id}`)).body.replication_id, id);
    for (const x of ['posted', id]) assert.equal((await req(`${admin}/_replication/${x}`, { method: 'DELETE' })).status, 200);
  });

  test('an update needs the replication stopped; it merges onto the stored definition and rebuilds the replicator', async () => {
    await waitStatus('r1', 'running');
    const refused = await put('r1', { batch_size: 10 });
    assert.deepEqual(refused.body, { error: 'Bad Request', reason: 'Replication must be stopped before updating config' });
    const stop = await action('r1', 'stop');
    assert.equal(stop.status, 200);
    assert.equal(stop.body.status, 'stopping');
    await waitStatus('r1', 'stopped');
    const r = await put('r1', { batch_size: 10, remote: 'http://edge:other@remote.example:4984/db' });
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    const d = (await req(`${admin}/_replication/r1`)).body;
    assert.equal(d.batch_size, 10);
    assert.equal(d.direction, 'pushAndPull', 'fields left out keep their value');
    await eventually('the replicator rebuilt with the new definition', () => (gw.factory.latest('r1')!.config.batch_size === 10 ? true : undefined));
    assert.equal((await req(`${admin}/_replication/r1`)).body.remote, 'http://edge:xxxxx@remote.example:4984/db');
  });

  test('DELETE removes (and stops) it; unknown ids are 404', async () => {
    assert.equal((await put('gone', { remote: REMOTE, direction: 'pull', continuous: true })).status, 201);
    await waitStatus('gone', 'running');
    const stopsBefore = gw.factory.stops.filter((s) => s === 'gone').length;
    assert.equal((await req(`${admin}/_replication/gone`, { method: 'DELETE' })).status, 200);
    assert.equal(gw.factory.stops.filter((s) => s === 'gone').length, stopsBefore + 1, 'its replicator was stopped');
    assert.equal((await req(`${admin}/_replication/gone`)).status, 404);
    assert.equal((await req(`${admin}/_replication/gone`, { method: 'DELETE' })).status, 404);
    assert.equal((await req(`${admin}/_replicationStatus/gone`)).status, 404);
    assert.equal((await action('gone', 'start')).status, 404);
  });
});

describe('ISGR status and actions', () => {
  test('status omits zero counters and empty strings; includeConfig, activeOnly, localOnly, includeError', async () => {
    assert.equal((await put('s1', { remote: REMOTE, direction: 'pull', continuous: true })).status, 201);
    await waitStatus('s1', 'running');
    assert.deepEqual(await status('s1'), { replication_id: 's1', status: 'running' });
    gw.factory.latest('s1')!.report('running', { docs_read: 4, docs_checked_pull: 5, last_seq_pull: '12' });
    assert.deepEqual(await status('s1'), { replication_id: 's1', status: 'running', docs_read: 4, docs_checked_pull: 5, last_seq_pull: '12' });
    const withConfig = await status('s1', '?includeConfig=true');
    assert.deepEqual(Object.keys(withConfig).slice(0, 3), ['replication_id', 'config', 'status']);
    assert.equal(withConfig.config.remote, REMOTE);
    const all = (await req(`${admin}/_replicationStatus/`)).body as { replication_id: string; status: string }[];
    assert.ok(Array.isArray(all));
    assert.deepEqual(all.map((s) => s.replication_id), ['r1', 'r2', 's1']);
    const active = (await req(`${admin}/_replicationStatus/?activeOnly=true`)).body as { replication_id: string }[];
    assert.deepEqual(active.map((s) => s.replication_id), ['s1']);
    assert.equal(((await req(`${admin}/_replicationStatus/?localOnly=true`)).body as unknown[]).length, 3, 'every one runs here (one node)');
    gw.factory.latest('s1')!.report('error', {}, 'unexpected status code 401 from target database');
    assert.deepEqual(await status('s1'), {
      replication_id: 's1', status: 'error', error_message: 'unexpected status code 401 from target database', docs_read: 4, docs_checked_pull: 5, last_seq_pull: '12',
    });
    const noErrors = (await req(`${admin}/_replicationStatus/?includeError=false`)).body as { replication_id: string }[];
    assert.deepEqual(noErrors.map((s) => s.replication_id), ['r1', 'r2']);
    assert.equal((await req(`${admin}/_replicationStatus/s1?includeError=false`)).text, 'null');
  });

  test('action: missing or unknown; reset needs stopped; reset clears counters and checkpoints, start waits for it', async () => {
    assert.deepEqual((await req(`${admin}/_replicationStatus/s1`, { method: 'PUT' })).body, { error: 'Bad Request', reason: "Query parameter 'action' must be specified" });
    assert.deepEqual((await action('s1', 'pause')).body, { error: 'Bad Request', reason: 'Unrecognized action "pause".  Valid values are start/stop/reset.' });
    assert.deepEqual((await action('s1', 'reset')).body, { error: 'Bad Request', reason: 'Replication must be stopped before it can be reset' });
    assert.equal((await action('s1', 'stop')).body.status, 'stopping');
    await waitStatus('s1', 'stopped');
    // Hold the reset so the replication is seen while resetting.
    let release!: () => void;
    gw.factory.latest('s1')!.resetGate = new Promise((r) => { release = r; });
    const reset = await action('s1', 'reset');
    assert.equal(reset.status, 200);
    assert.equal(reset.body.status, 'resetting');
    assert.equal(reset.body.docs_read, 4);
    const list = (await req(`${admin}/_replication/`)).body;
    assert.equal(list.s1.target_state, 'resetting');
    assert.deepEqual((await action('s1', 'start')).body, { error: 'Bad Request', reason: 'Replication cannot be started until reset is complete' });
    release();
    await eventually('the reset to finish', async () => ((await req(`${admin}/_replication/`)).body.s1.target_state === 'stopped' ? true : undefined));
    assert.deepEqual(gw.factory.resets, ['s1']);
    assert.deepEqual(await status('s1'), { replication_id: 's1', status: 'stopped' }, 'counters and positions cleared');
    const starts = gw.factory.starts.get('s1')!;
    const start = await action('s1', 'start');
    assert.equal(start.body.status, 'starting');
    await waitStatus('s1', 'running');
    assert.equal(gw.factory.starts.get('s1'), starts + 1);
  });

  test('a one-shot replication stops by itself; start runs it again', async () => {
    assert.equal((await put('once', { remote: REMOTE, direction: 'pull' })).status, 201);
    await waitStatus('once', 'stopped');
    assert.deepEqual(await status('once'), { replication_id: 'once', status: 'stopped', docs_read: 3, last_seq_pull: '3' });
    assert.equal((await action('once', 'start')).body.status, 'starting');
    await eventually('a second run', () => (gw.factory.starts.get('once') === 2 ? true : undefined));
    await waitStatus('once', 'stopped');
    assert.equal((await status('once')).docs_read, 6);
  });

  test('start on a running replication leaves it alone (no second start)', async () => {
    assert.equal((await put('cont', { remote: REMOTE, direction: 'pull', continuous: true })).status, 201);
    await waitStatus('cont', 'running');
    const r = await action('cont', 'start');
    assert.equal(r.body.status, 'running');
    // An API change waits for the node's next round, which runs after the one the start asked for.
    assert.equal((await put('dummy', { remote: REMOTE, direction: 'pull', initial_state: 'stopped' })).status, 201);
    assert.equal((await req(`${admin}/_replication/dummy`, { method: 'DELETE' })).status, 200);
    assert.equal(gw.factory.starts.get('cont'), 1);
    assert.equal((await req(`${admin}/_replication/cont`, { method: 'DELETE' })).status, 200);
  });

  test('adhoc: stopping removes it; a one-shot adhoc replication is removed once finished', async () => {
    assert.equal((await put('adhoc1', { remote: REMOTE, direction: 'pull', continuous: true, adhoc: true })).status, 201);
    await waitStatus('adhoc1', 'running');
    const r = await action('adhoc1', 'stop');
    assert.deepEqual(r.body, { replication_id: 'adhoc1', status: 'removed' });
    assert.equal((await req(`${admin}/_replication/adhoc1`)).status, 404);
    assert.ok(gw.factory.stops.includes('adhoc1'));
    assert.equal((await put('adhoc2', { remote: REMOTE, direction: 'pull', adhoc: true })).status, 201);
    await eventually('the finished adhoc replication to go', async () => ((await req(`${admin}/_replication/adhoc2`)).status === 404 ? true : undefined));
    assert.equal(gw.factory.starts.get('adhoc2'), 1);
  });

  test('metrics per replication and GET /_status', async () => {
    gw.factory.latest('s1')!.report('running', { docs_written: 7, doc_write_conflict: 2 });
    const text = (await req(`${gw.metricsUrl}/metrics`)).text;
    assert.match(text, /^syncgate_replication_docs_written\{database="db",replication="s1"\} 7$/m);
    assert.match(text, /^syncgate_replication_doc_write_conflict\{database="db",replication="s1"\} 2$/m);
    assert.match(text, /^syncgate_replication_state\{database="db",replication="s1",state="running"\} 1$/m);
    const st = (await req(`${gw.adminUrl}/_status`)).body.databases.db;
    assert.deepEqual(st.replication_status, (await req(`${admin}/_replicationStatus/`)).body);
    assert.equal(st.cluster.replications.r1.remote, 'http://edge:xxxxx@remote.example:4984/db');
    assert.equal(st.cluster.replications.r1.assigned_node, gw.gateway.nodeId);
    assert.deepEqual(Object.keys(st.cluster.nodes), [gw.gateway.nodeId]);
  });

  test('the database must be Online: 503 offline; replications stop offline and start again online', async () => {
    const starts = gw.factory.starts.get('s1')!;
    assert.equal((await req(`${admin}/_offline`, { method: 'POST' })).status, 200);
    assert.equal((await req(`${admin}/_replication/`)).status, 503);
    assert.equal((await req(`${admin}/_replicationStatus/s1`)).status, 503);
    await eventually('s1 stopped with its database', () => (gw.factory.latest('s1')!.snapshot().state === 'stopped' ? true : undefined));
    assert.equal((await req(`${admin}/_online`, { method: 'POST' })).status, 200);
    await eventually('s1 running again', () => (gw.factory.starts.get('s1') === starts + 1 ? true : undefined));
    await waitStatus('s1', 'running');
  });
});

describe('ISGR replications in a database config', () => {
  test('created at load, kept across a restart, stopped with the database and started again with it', async () => {
    const data = tempDir('syncgate-isgr-cfg-');
    const db = {
      server: `sqlite:${join(data.dir, 'db.sqlite')}`,
      replications: {
        central: { remote: 'http://edge:pw@central.example:4984/db', direction: 'pushAndPull', continuous: true },
        later: { replication_id: 'later', remote: REMOTE, direction: 'push', initial_state: 'stopped' },
      },
    };
    try {
      const a = await startIsgrGateway({ db });
      await eventually('central running', async () => ((await req(`${a.adminUrl}/db/_replicationStatus/central`)).body.status === 'running' ? true : undefined));
      const list = (await req(`${a.adminUrl}/db/_replication/`)).body;
      assert.equal(list.central.remote, 'http://edge:xxxxx@central.example:4984/db');
      assert.equal(list.later.target_state, 'stopped');
      // Started over the API, then the gateway restarts: the definition and its target state persist.
      assert.equal((await req(`${a.adminUrl}/db/_replicationStatus/later?action=start`, { method: 'PUT' })).body.status, 'starting');
      await a.stop();
      assert.equal(a.factory.latest('central')!.snapshot().state, 'stopped', 'stopped with its database');
      const b = await startIsgrGateway({ db });
      try {
        await eventually('both started again on the new gateway', () => (b.factory.starts.get('central') === 1 && b.factory.starts.get('later') === 1 ? true : undefined));
        const after = (await req(`${b.adminUrl}/db/_replication/`)).body;
        assert.equal(after.later.target_state, 'running');
        assert.equal(after.central.assigned_node, `${b.gateway.nodeId} (local)`, 'the dead process\'s lease is taken at once on SQLite');
        // A reload (same config applied again) stops them and starts them again.
        await b.gateway.apply(b.gateway.running('db')!);
        await eventually('central restarted by the reload', () => (b.factory.starts.get('central') === 2 ? true : undefined));
      } finally {
        await b.stop();
      }
    } finally {
      data.remove();
    }
  });

  test('sgreplicate_enabled: false: definitions are served, but this node runs none (unassigned)', async () => {
    const g = await startIsgrGateway({ db: { server: 'memory:', sgreplicate_enabled: false, replications: { r: { remote: REMOTE, direction: 'pull', continuous: true } } } });
    try {
      assert.deepEqual((await req(`${g.adminUrl}/db/_replicationStatus/r`)).body, { replication_id: 'r', status: 'unassigned' });
      assert.equal((await req(`${g.adminUrl}/db/_replication/`)).body.r.assigned_node, ' (non-local)');
      assert.equal(g.factory.built.length, 0);
      assert.deepEqual((await req(`${g.adminUrl}/_status`)).body.databases.db.cluster.nodes, {});
    } finally {
      await g.stop();
    }
  });

  test('adhoc and a mismatched replication_id are refused in a config file', async () => {
    await assert.rejects(startIsgrGateway({ db: { server: 'memory:', replications: { x: { remote: REMOTE, direction: 'pull', adhoc: true } } } }),
      /replications\.x: adhoc=true is invalid for replication in Sync Gateway configuration/);
    await assert.rejects(startIsgrGateway({ db: { server: 'memory:', replications: { x: { replication_id: 'y', remote: REMOTE, direction: 'pull' } } } }),
      /replication_id "y" does not match replications key "x"/);
    await assert.rejects(startIsgrGateway({ db: { server: 'memory:', replications: { x: { remote: REMOTE } } } }),
      /replications\.x: Replication direction must be specified/);
  });
});

describe('ISGR in a database config over REST (persistent mode)', () => {
  test('PUT /{db}/ with replications stores them; a bad one refuses the database; a replication whose remote refuses it reports why', async () => {
    const g = await startGateway({ bootstrap: { logging: { console: { log_level: 'warn' } } } });
    try {
      const refused = await req(`${g.adminUrl}/bad/`, { method: 'PUT', json: { replications: { r: { remote: REMOTE } } } });
      assert.deepEqual(refused.body, { error: 'Bad Request', reason: 'database "bad": replications.r: Replication direction must be specified' });
      assert.equal((await req(`${g.adminUrl}/bad/`)).status, 404, 'nothing was created');
      // The remote is this gateway's own public port, which has no database "central": a fatal 404.
      const remote = `${g.publicUrl.replace('://', '://u:pw@')}/central`;
      const ok = await req(`${g.adminUrl}/edge/`, { method: 'PUT', json: { replications: { r: { remote, direction: 'pull', continuous: true } } } });
      assert.equal(ok.status, 201, ok.text);
      await eventually('the replicator to report', async () => ((await req(`${g.adminUrl}/edge/_replicationStatus/r`)).body.status === 'error' ? true : undefined));
      const status = (await req(`${g.adminUrl}/edge/_replicationStatus/r`)).body;
      assert.equal(status.replication_id, 'r');
      assert.match(status.error_message, /unexpected status code 404 from target database .*central \(no such database\)/);
      assert.doesNotMatch(status.error_message, /pw/, 'the password is not in the message');
      assert.equal((await req(`${g.adminUrl}/edge/_config`)).body.replications.r.remote, remote.replace(':pw@', ':xxxxx@'));
    } finally {
      await g.stop();
    }
  });
});

test('pushAndPull combines the two directions as Sync Gateway does', () => {
  assert.equal(combinedState('stopped', 'stopped'), 'stopped');
  assert.equal(combinedState('running', 'error'), 'running');
  assert.equal(combinedState('stopped', 'running'), 'running');
  assert.equal(combinedState('error', 'reconnecting'), 'error');
  assert.equal(combinedState('reconnecting', 'stopped'), 'reconnecting');
  assert.equal(combinedState('', 'running'), 'running');
});

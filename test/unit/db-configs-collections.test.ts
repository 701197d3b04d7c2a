/**
 * Database configs with named collections through DbConfigs, both modes: stored (a real SQLite
 * ConfigStore, versions, If-Match) and in memory (a 2.x file). The host here records the config
 * each database would run with instead of running it: what is under test is the config service
 * (what it accepts, stores, serves back and hands to the host), not the databases, which
 * test/http/config-collections.test.ts runs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type DatabaseConfig, type GatewayConfig, parseConfigText } from '../../src/config/index.ts';
import { type DatabaseHost, DbConfigs } from '../../src/db-configs.ts';
import { HttpError } from '../../src/errors.ts';
import { Logger } from '../../src/log/index.ts';
import { SqliteConfigStore } from '../../src/storage/sqlite/config-store.ts';

type Obj = Record<string, unknown>;
const inventory = (collections: Obj) => ({ scopes: { inventory: { collections } } });
const AIRLINE = 'function(doc){channel("air-" + doc.kind);}';
const airline = { scope: 'inventory', name: 'airline' };
const hotel = { scope: 'inventory', name: 'hotel' };

/** The gateway's side of DbConfigs, keeping the configs it is asked to run. */
class RecordingHost implements DatabaseHost {
  readonly runningConfigs = new Map<string, DatabaseConfig>();
  readonly logger = new Logger({ level: 'warn', write: () => {} });
  constructor(readonly config: GatewayConfig) {
    for (const db of Object.values(config.databases)) this.runningConfigs.set(db.name, db);
  }
  has(name: string) { return this.runningConfigs.has(name); }
  names() { return [...this.runningConfigs.keys()]; }
  running(name: string) { return this.runningConfigs.get(name); }
  async apply(config: DatabaseConfig) { this.runningConfigs.set(config.name, config); }
  async oidcProblems() { return []; }
  async unload(name: string) { return this.runningConfigs.delete(name); }
}

const refused = async (p: Promise<unknown>, status: number, reason: RegExp) => {
  await assert.rejects(p, (e: unknown) => e instanceof HttpError && e.status === status && reason.test(e.reason));
};

describe('named collections through DbConfigs (persistent mode, SQLite ConfigStore)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-dbconfigs-'));
  const host = new RecordingHost(parseConfigText(JSON.stringify({ bootstrap: { server: `sqlite:${dir}` } }), 'test bootstrap'));
  const configs = new DbConfigs(host, async () => new SqliteConfigStore(dir));
  before(() => configs.start());
  after(async () => { await configs.stop(); rmSync(dir, { recursive: true, force: true }); });

  const stored = (opts: { includeRuntime?: boolean; includeJavascript?: boolean } = {}) =>
    configs.get('travel', { includeRuntime: opts.includeRuntime ?? false, includeJavascript: opts.includeJavascript ?? true, refresh: false });
  const collectionsOf = async (opts = {}) => ((await stored(opts)).config.scopes as any).inventory.collections;

  test('created with its collections in configuration order; served as given; include_runtime shows each one\'s effective sync function', async () => {
    const body = { ...inventory({ route: {}, airline: { sync: AIRLINE, import_filter: 'function(doc){return true;}' }, '42': { sync: ' ' } }), sync: '' };
    await configs.create('travel', JSON.stringify(body));
    const running = host.running('travel')!;
    assert.deepEqual(running.collections, [
      { scope: 'inventory', name: '42' },
      { scope: 'inventory', name: 'route' },
      { scope: 'inventory', name: 'airline', sync: AIRLINE, importFilter: 'function(doc){return true;}' },
    ], 'JavaScript object order (a name of digits first), blank functions unset');
    assert.equal(running.sync, undefined);
    const { config, version } = await stored();
    assert.match(version!, /^1-/);
    assert.deepEqual(config.scopes, body.scopes, 'as given');
    const rt = await stored({ includeRuntime: true });
    assert.equal(rt.config.sync, undefined, 'no db-level default beside scopes');
    assert.deepEqual(await collectionsOf({ includeRuntime: true }), {
      '42': { sync: 'function(doc){channel("42");}' },
      route: { sync: 'function(doc){channel("route");}' },
      airline: { sync: AIRLINE, import_filter: 'function(doc){return true;}' },
    });
    assert.deepEqual(await collectionsOf({ includeJavascript: false }), { '42': {}, route: {}, airline: {} });
  });

  test('refused creations store nothing', async () => {
    await refused(configs.create('bad', JSON.stringify(inventory({ a: { sync: 'function(' } }))), 400, /^collection "a" sync function error/);
    await refused(configs.create('bad', JSON.stringify({ scopes: { a: { collections: { x: {} } }, b: { collections: { x: {} } } } })), 400, /^only one named scope is supported/);
    await refused(configs.get('bad', { includeRuntime: false, includeJavascript: true, refresh: false }), 404, /database config not found/);
    assert.equal(host.has('bad'), false);
  });

  test('updates: the scope is fixed; collections may be added (merge) and removed (replace)', async () => {
    const before = await stored();
    for (const [merge, body, reason] of [
      [false, { scopes: { other: { collections: { airline: {} } } } }, /^cannot change scopes after database creation$/],
      [false, {}, /^cannot change scopes after database creation$/],
      [true, { scopes: { other: { collections: { a: {} } } } }, /cannot change scopes after database creation/],
      [true, { sync: 'function(doc){}' }, /^cannot specify a database-level sync function with named scopes and collections$/],
      [false, inventory({}), /^must specify at least one collection in scope inventory$/],
    ] as const) {
      await refused(configs.update('travel', JSON.stringify(body), { merge }), 400, reason);
    }
    assert.deepEqual(await stored(), before, 'refusals change nothing');
    await refused(configs.update('travel', JSON.stringify(inventory({ hotel: {} })), { merge: true, ifMatch: '"1-0"' }), 412, /If-Match/);
    const v2 = await configs.update('travel', JSON.stringify(inventory({ hotel: { sync: 'function(doc){channel("h");}' } })), { merge: true, ifMatch: `"${before.version}"` });
    assert.match(v2!, /^2-/);
    assert.deepEqual(Object.keys(await collectionsOf()), ['42', 'route', 'airline', 'hotel'], 'merged in');
    assert.deepEqual(host.running('travel')?.collections?.map((c) => c.name), ['42', 'route', 'airline', 'hotel'], 'applied');
    // Sync Gateway 3.1 accepts dropping a collection (its keyspace is then 404; its documents stay).
    await configs.update('travel', JSON.stringify(inventory({ airline: { sync: AIRLINE }, hotel: {} })), { merge: false });
    assert.deepEqual(host.running('travel')?.collections, [{ ...airline, sync: AIRLINE }, hotel]);
  });

  test('a named collection\'s functions: read, set with If-Match, compiled (the message naming it), removed', async () => {
    const v0 = (await stored()).version!;
    assert.deepEqual(await configs.getFunction('travel', 'sync', airline), { source: AIRLINE, version: v0 });
    assert.deepEqual(await configs.getFunction('travel', 'sync', hotel), { source: '', version: v0 }, 'no function: empty, not the default');
    await refused(configs.setFunction('travel', 'sync', 'function(doc){}', '"1-00"', hotel), 412, /^Provided If-Match header does not match current config version$/);
    await refused(configs.setFunction('travel', 'sync', 'function(doc) {', undefined, hotel), 400, /^collection "hotel" sync function error: invalid javascript syntax/);
    await refused(configs.getFunction('travel', 'sync', { scope: 'inventory', name: 'route' }), 404, /^keyspace travel\.inventory\.route not found$/);
    await refused(configs.setFunction('travel', 'import_filter', 'function(doc){return true;}', undefined, { scope: 'inventory', name: 'route' }), 404, /^keyspace travel\.inventory\.route not found$/);
    await refused(configs.getFunction('travel', 'sync'), 404, /^keyspace travel\._default\._default not found$/);
    assert.equal((await stored()).version, v0, 'refusals change nothing');

    await configs.setFunction('travel', 'sync', 'function(doc){channel("hh");}', `"${v0}"`, hotel);
    assert.notEqual((await stored()).version, v0);
    assert.equal((await configs.getFunction('travel', 'sync', hotel)).source, 'function(doc){channel("hh");}');
    assert.deepEqual(host.running('travel')?.collections?.find((c) => c.name === 'hotel'), { ...hotel, sync: 'function(doc){channel("hh");}' }, 'applied');
    await configs.setFunction('travel', 'import_filter', 'function(doc){return false;}', undefined, hotel);
    assert.deepEqual((await collectionsOf()).hotel, { sync: 'function(doc){channel("hh");}', import_filter: 'function(doc){return false;}' });
    await configs.setFunction('travel', 'sync', undefined, undefined, airline);
    assert.deepEqual((await collectionsOf()).airline, {});
    assert.equal((await collectionsOf({ includeRuntime: true })).airline.sync, 'function(doc){channel("airline");}', 'back to its default');
    assert.deepEqual(host.running('travel')?.collections?.find((c) => c.name === 'airline'), airline);
  });
});

describe('named collections through DbConfigs (2.x file, configs in memory)', () => {
  const users = {
    GUEST: { disabled: false, admin_channels: ['*'] },
    ann: { password: 'secret', collection_access: { inventory: { airline: { admin_channels: ['a1'] } } } },
  };
  const gateway = parseConfigText(JSON.stringify({
    databases: { db: { server: 'memory:', users, ...inventory({ airline: { sync: AIRLINE }, hotel: {} }) } },
  }), 'test.json');
  const host = new RecordingHost(gateway);
  const configs = new DbConfigs(host);

  test('loaded with its collections and collection_access; the scope is fixed on update, collections may be added', async () => {
    const running = host.running('db')!;
    assert.deepEqual(running.collections, [{ ...airline, sync: AIRLINE }, hotel]);
    assert.deepEqual(running.users.ann.collection_access, { inventory: { airline: { admin_channels: ['a1'] } } });
    const { config } = await configs.get('db', { includeRuntime: false, includeJavascript: true, refresh: false });
    assert.deepEqual(config.scopes, inventory({ airline: { sync: AIRLINE }, hotel: {} }).scopes);
    await refused(configs.update('db', JSON.stringify({ users, scopes: { other: { collections: { a: {} } } } }), { merge: false }), 400,
      /^2 errors:\n.*users\.ann\.collection_access: keyspace specified in collection_access \(db\.inventory\.airline\) not found\ncannot change scopes after database creation$/);
    const bob = { password: 'secret', collection_access: { inventory: { route: {} } } };
    await refused(configs.update('db', JSON.stringify({ users: { ...users, bob }, ...inventory({ airline: {}, hotel: {} }) }), { merge: false }), 400,
      /users\.bob\.collection_access: keyspace specified in collection_access \(db\.inventory\.route\) not found/);
    assert.equal(host.running('db'), running, 'refusals change nothing');
    await configs.update('db', JSON.stringify({ users: { ...users, bob }, ...inventory({ airline: {}, hotel: {}, route: {} }) }), { merge: false });
    assert.deepEqual(host.running('db')?.collections?.map((c) => c.name), ['airline', 'hotel', 'route']);
    assert.deepEqual(host.running('db')?.users.bob.collection_access, { inventory: { route: { admin_channels: [] } } });
    assert.equal(host.running('db')?.server, 'memory:', 'the running storage is kept');
  });

  test('per-collection functions answer as Sync Gateway\'s non-persistent mode does', async () => {
    assert.deepEqual(await configs.getFunction('db', 'sync', airline), { source: '', version: '' });
    await refused(configs.setFunction('db', 'sync', 'function(doc){}', undefined, airline), 400, /^endpoint only supports persistent config mode$/);
  });
});

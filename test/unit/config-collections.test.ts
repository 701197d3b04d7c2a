/**
 * `scopes` in database configs (issue 14, Sync Gateway 3.1 `DbConfig.validate` / `validateChanges`):
 * the rules and their messages, configuration order, blank functions, Couchbase names, the scope
 * fixed on update, `collection_access`, default sync functions, the per-collection functions of a
 * stored config, and the 2.x start-up file accepting `scopes` (Sync Gateway refuses it there).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildCollectionAccess, defaultSyncSource, isValidCollectionName, parseScopes, scopeChangeProblem,
} from '../../src/config/collections.ts';
import { configFunction, runtimeDbConfig, withConfigFunction, withoutJavascript, withRuntimeFunctions } from '../../src/config/db-config.ts';
import { ConfigError, parseConfigText } from '../../src/config/index.ts';
import { HttpError } from '../../src/errors.ts';
import { compileCheck } from '../../src/db-configs.ts';
import { DEFAULT_SYNC_FUNCTION, SyncFunction } from '../../src/sync/index.ts';

type Obj = Record<string, unknown>;
const scoped = (scope: string, collections: Obj, extra: Obj = {}): Obj => ({ ...extra, scopes: { [scope]: { collections } } });

/** runtimeDbConfig's 400, its reason split into SG's MultiError lines. */
function refusal(config: Obj, previous?: Obj): string[] {
  try {
    runtimeDbConfig('db', config, undefined, process.cwd(), [], { compile: compileCheck('db'), previous });
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 400);
    const lines = err.reason.split('\n');
    return lines.length > 1 ? lines.slice(1) : lines;
  }
  assert.fail('expected a 400');
}
const accepted = (config: Obj, previous?: Obj) => runtimeDbConfig('db', { server: 'memory:', ...config }, undefined, process.cwd(), [], { compile: compileCheck('db'), previous });

describe('scopes: parsing', () => {
  it('collections in configuration order, import_filter kept, blank functions unset', () => {
    const { collections, problems } = parseScopes(scoped('inventory', {
      hotel: {}, airline: { sync: 'function(doc){channel("a");}', import_filter: 'function(doc){return true;}' }, route: { sync: '  \n', import_filter: '' },
    }));
    assert.deepEqual(problems, []);
    assert.deepEqual(collections, [
      { scope: 'inventory', name: 'hotel' },
      { scope: 'inventory', name: 'airline', sync: 'function(doc){channel("a");}', importFilter: 'function(doc){return true;}' },
      { scope: 'inventory', name: 'route' },
    ]);
  });

  it('no scopes, or an empty one, is the default collection alone (collections unset)', () => {
    assert.deepEqual(parseScopes({ sync: 'x' }), { problems: [] });
    assert.deepEqual(parseScopes({ scopes: {}, sync: 'x' }), { problems: [] });
    const c = accepted({ scopes: {}, sync: 'function(doc){channel("s");}' });
    assert.equal(c.collections, undefined);
    assert.equal(c.sync, 'function(doc){channel("s");}');
  });

  it('the default collection listed explicitly, beside named ones of the _default scope', () => {
    const c = accepted(scoped('_default', { _default: { sync: 'function(doc){channel("d");}' }, extra: {} }));
    assert.deepEqual(c.collections, [{ scope: '_default', name: '_default', sync: 'function(doc){channel("d");}' }, { scope: '_default', name: 'extra' }]);
    assert.equal(c.sync, 'function(doc){channel("d");}', 'mirrored for code that knows only the default collection');
    assert.equal(accepted(scoped('inventory', { a: { sync: 'function(doc){}' } })).sync, undefined);
  });
});

describe('scopes: Sync Gateway\'s rules and messages', () => {
  it('exactly one scope', () => {
    assert.deepEqual(refusal({ scopes: { a: { collections: { x: {} } }, b: { collections: { y: {} } } } }),
      ['only one named scope is supported, but had 2 (a, b)']);
  });

  it('at least one collection in the scope', () => {
    assert.deepEqual(refusal(scoped('inventory', {})), ['must specify at least one collection in scope inventory']);
    assert.deepEqual(refusal({ scopes: { inventory: {} } }), ['must specify at least one collection in scope inventory']);
  });

  it('no database-level sync or import_filter beside scopes; blank ones are as unset', () => {
    assert.deepEqual(refusal(scoped('inventory', { a: {} }, { sync: 'function(doc){}', import_filter: 'function(doc){return true;}' })), [
      'cannot specify a database-level sync function with named scopes and collections',
      'cannot specify a database-level import filter with named scopes and collections',
    ]);
    assert.deepEqual(accepted(scoped('inventory', { a: {} }, { sync: ' ', import_filter: '' })).collections, [{ scope: 'inventory', name: 'a' }]);
  });

  it('names as Couchbase Server allows them (sg-bucket IsValidDataStoreName)', () => {
    for (const [s, c] of [['inventory', 'airline'], ['ABCabc123_-%', 'ABCabc123_-%'], ['_default', 'x'], ['_default', '_default'], ['1', '-'], ['s', 'x'.repeat(251)]]) {
      assert.ok(isValidCollectionName(s, c), `${s}.${c}`);
    }
    for (const [s, c] of [['a:1', 'a'], ['_a', 'b'], ['a', '_b'], ['%a', 'b'], ['a', '%b'], ['inventory', '_default'], ['_default', 'a:1'], ['s', 'x'.repeat(252)], ['s', ''], ['_system', '_mobile']]) {
      assert.ok(!isValidCollectionName(s, c), `${s}.${c}`);
    }
    assert.deepEqual(refusal(scoped('inventory', { _default: {}, 'bad.name': {}, ok: {} })), [
      "invalid scope/collection name 'inventory._default'",
      "invalid scope/collection name 'inventory.bad.name'",
    ]);
    assert.deepEqual(refusal(scoped('_inv', { a: {} })), ["invalid scope/collection name '_inv.a'"]);
  });

  it('every collection\'s functions must compile, the message naming the collection', () => {
    const lines = refusal(scoped('inventory', { good: { sync: 'function(doc){}' }, bad: { sync: 'function(doc) {' }, worse: { import_filter: 'function(' } }));
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0], /^collection "bad" sync function error: invalid javascript syntax/);
    assert.match(lines[1], /^collection "worse" import filter error: invalid javascript syntax/);
    assert.match(refusal({ sync: 'function(doc) {' })[0], /^sync function error: invalid javascript syntax/);
  });

  it('use_views is incompatible with collections', () => {
    assert.deepEqual(refusal(scoped('inventory', { a: {} }, { use_views: true })), ['useViews=true is incompatible with collections which requires GSI']);
    assert.ok(accepted(scoped('inventory', { a: {} }, { use_views: false })).collections);
    assert.equal(accepted({ use_views: true }).collections, undefined);
  });

  it('every problem at once, as one MultiError', () => {
    const lines = refusal(scoped('inventory', { '%x': {}, c: { sync: 'nope nope' } }, { sync: 'function(doc){}' }));
    assert.equal(lines.length, 3, lines.join('\n'));
  });
});

describe('scopes: updates (validateChanges)', () => {
  const inv = scoped('inventory', { airline: {} });
  it('the scope is fixed; collections may be added and removed', () => {
    assert.equal(scopeChangeProblem(inv, scoped('inventory', { airline: {}, hotel: {} })), undefined, 'added');
    assert.equal(scopeChangeProblem(scoped('inventory', { airline: {}, hotel: {} }), scoped('inventory', { hotel: {} })), undefined, 'removed (SG 3.1 accepts it)');
    assert.equal(scopeChangeProblem(inv, scoped('other', { airline: {} })), 'cannot change scopes after database creation');
    assert.equal(scopeChangeProblem(inv, {}), 'cannot change scopes after database creation');
    assert.equal(scopeChangeProblem({}, inv), 'cannot change scopes after database creation');
    assert.equal(scopeChangeProblem({}, {}), undefined);
  });

  it('the one exception: from no scopes to the explicit _default scope (and not back)', () => {
    const explicit = scoped('_default', { _default: {}, extra: {} });
    assert.equal(scopeChangeProblem({}, explicit), undefined);
    assert.equal(scopeChangeProblem(explicit, {}), 'cannot change scopes after database creation');
  });

  it('runtimeDbConfig checks it against the previous config, beside the other problems', () => {
    assert.deepEqual(refusal(scoped('other', { a: {} }), inv), ['cannot change scopes after database creation']);
    assert.equal(refusal(scoped('other', { a: { sync: 'function(' } }), inv).length, 2);
    assert.deepEqual(accepted(scoped('inventory', { airline: {}, hotel: {} }), inv).collections?.map((c) => c.name), ['airline', 'hotel']);
  });
});

describe('default sync functions', () => {
  it('channel(doc.channels) for _default._default, the collection\'s name for a named one; both compile', () => {
    assert.equal(defaultSyncSource('_default', '_default'), 'function(doc){channel(doc.channels);}');
    assert.equal(defaultSyncSource('_default', '_default'), DEFAULT_SYNC_FUNCTION);
    assert.equal(defaultSyncSource('inventory', 'airline'), 'function(doc){channel("airline");}');
    assert.equal(defaultSyncSource('_default', 'extra'), 'function(doc){channel("extra");}');
    const r = new SyncFunction(defaultSyncSource('inventory', 'air-line%1'), 'db').run(JSON.stringify({ _id: 'd', _rev: '1-a' }), null, null);
    assert.deepEqual(r.channels, ['air-line%1']);
  });
});

describe('collection_access', () => {
  const colls = [{ scope: 'inventory', name: 'airline' }, { scope: 'inventory', name: 'hotel' }];
  it('keeps grants in the database\'s collections; any other keyspace is refused as SG words it', () => {
    const errors: string[] = [];
    const out = buildCollectionAccess({ inventory: { airline: { admin_channels: ['a', 'b'] }, hotel: {}, gone: { admin_channels: [] } }, other: { x: {} } }, 'db', colls, (m) => errors.push(m));
    assert.deepEqual(out, { inventory: { airline: { admin_channels: ['a', 'b'] }, hotel: { admin_channels: [] } } });
    assert.deepEqual(errors, [
      'keyspace specified in collection_access (db.inventory.gone) not found',
      'keyspace specified in collection_access (db.other.x) not found',
    ]);
    const noScopes: string[] = [];
    assert.deepEqual(buildCollectionAccess({ _default: { _default: { admin_channels: ['x'] }, c: {} } }, 'db', undefined, (m) => noScopes.push(m)),
      { _default: { _default: { admin_channels: ['x'] } } });
    assert.deepEqual(noScopes, ['keyspace specified in collection_access (db._default.c) not found']);
  });

  it('a scope named like an Object.prototype member is an ordinary name', () => {
    const out = buildCollectionAccess({ constructor: { c: { admin_channels: ['x'] } } }, 'db', [{ scope: 'constructor', name: 'c' }], assert.fail);
    assert.deepEqual(out, { constructor: { c: { admin_channels: ['x'] } } });
    assert.equal(typeof ({} as Obj).constructor, 'function', 'Object.prototype untouched');
  });
});

describe('the 2.x start-up file accepts scopes (Sync Gateway answers 400 there)', () => {
  const load = (db: Obj) => parseConfigText(JSON.stringify({ databases: { db: { server: 'memory:', ...db } } }), 'test.json').databases.db;
  const fails = (db: Obj): string => {
    try { load(db); } catch (err) { assert.ok(err instanceof ConfigError, String(err)); return err.message; }
    assert.fail('expected a ConfigError');
  };

  it('collections in order, with their functions and users\' and roles\' collection_access', () => {
    const c = load({
      ...scoped('inventory', { hotel: { import_filter: 'function(doc){return true;}' }, airline: { sync: 'function(doc){channel(doc.x);}' } }),
      users: { ann: { password: 'secret', admin_channels: ['d'], collection_access: { inventory: { airline: { admin_channels: ['a'] } } } } },
      roles: { crew: { collection_access: { inventory: { hotel: { admin_channels: ['h'] } } } } },
    });
    assert.deepEqual(c.collections, [
      { scope: 'inventory', name: 'hotel', importFilter: 'function(doc){return true;}' },
      { scope: 'inventory', name: 'airline', sync: 'function(doc){channel(doc.x);}' },
    ]);
    assert.equal(c.sync, undefined);
    assert.deepEqual(c.users.ann.collection_access, { inventory: { airline: { admin_channels: ['a'] } } });
    assert.deepEqual(c.users.ann.admin_channels, ['d']);
    assert.deepEqual(c.roles.crew, { admin_channels: [], collection_access: { inventory: { hotel: { admin_channels: ['h'] } } } });
    assert.equal(load({ users: { bob: { password: 'secret' } } }).users.bob.collection_access, undefined);
  });

  it('the same rules, each problem naming its key path', () => {
    assert.match(fails(scoped('inventory', {}, { sync: 'function(doc){}' })), /test\.json: databases\.db\.scopes: must specify at least one collection in scope inventory/);
    assert.match(fails(scoped('inventory', { a: {} }, { sync: 'function(doc){}' })), /databases\.db\.scopes: cannot specify a database-level sync function with named scopes and collections/);
    assert.match(fails(scoped('inventory', { _x: {} })), /databases\.db\.scopes: invalid scope\/collection name 'inventory\._x'/);
    assert.match(fails(scoped('inventory', { a: {} }, { users: { ann: { password: 'secret', collection_access: { inventory: { b: {} } } } } })),
      /databases\.db\.users\.ann\.collection_access: keyspace specified in collection_access \(db\.inventory\.b\) not found/);
    assert.match(fails({ roles: { r: { collection_access: { _default: { _default: { admin_channels: 'a' } } } } } }),
      /databases\.db\.roles\.r\.collection_access\._default\._default\.admin_channels: expected an array of strings, got a string/);
    assert.match(fails({ scopes: { s: { collections: { a: { sync: 1 } } } } }), /databases\.db\.scopes\.s\.collections\.a\.sync: expected a string/);
    assert.match(fails({ scopes: { s: { colections: {} } } }), /unknown key "colections"/);
  });

  it('a collection listed as null is listed, with nothing set (Sync Gateway: a nil *CollectionConfig)', () => {
    assert.deepEqual(load({ scopes: { s: { collections: { a: null, b: { sync: null } } } } }).collections, [{ scope: 's', name: 'a' }, { scope: 's', name: 'b' }]);
  });
});

describe('a collection\'s functions in a stored config', () => {
  const stored = { name: 'db', ...scoped('inventory', { airline: { sync: 'A', import_filter: 'I' }, hotel: {} }) };
  it('read, set and removed per collection; the implicit default collection is the db level', () => {
    const airline = { scope: 'inventory', name: 'airline' };
    const hotel = { scope: 'inventory', name: 'hotel' };
    assert.equal(configFunction(stored, 'sync', airline), 'A');
    assert.equal(configFunction(stored, 'import_filter', airline), 'I');
    assert.equal(configFunction(stored, 'sync', hotel), '', 'unset: empty, not the default');
    const next = withConfigFunction(stored, 'sync', 'H', hotel);
    assert.equal(configFunction(next, 'sync', hotel), 'H');
    assert.equal(configFunction(stored, 'sync', hotel), '', 'a copy');
    assert.deepEqual(withConfigFunction(stored, 'sync', undefined, airline).scopes, scoped('inventory', { airline: { import_filter: 'I' }, hotel: {} }).scopes);
    assert.equal(configFunction({ sync: 'S' }, 'sync'), 'S');
    assert.equal(configFunction({ sync: 'S' }, 'sync', { scope: '_default', name: '_default' }), 'S');
  });

  it('a keyspace the config does not have is 404 naming it', () => {
    const notFound = (fn: () => unknown, ks: string) => assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === 404 && e.reason === `keyspace ${ks} not found`);
    notFound(() => configFunction(stored, 'sync'), 'db._default._default');
    notFound(() => withConfigFunction(stored, 'sync', 'x', { scope: 'inventory', name: 'route' }), 'db.inventory.route');
    notFound(() => configFunction({ name: 'db' }, 'sync', { scope: 'inventory', name: 'airline' }), 'db.inventory.airline');
    notFound(() => configFunction(stored, 'sync', { scope: 'inventory', name: 'constructor' }), 'db.inventory.constructor');
  });

  it('include_javascript=false strips every collection\'s; include_runtime shows each one\'s effective sync function', () => {
    assert.deepEqual(withoutJavascript(stored).scopes, scoped('inventory', { airline: {}, hotel: {} }).scopes);
    const rt = withRuntimeFunctions({ sync: 'function(doc){channel(doc.channels);}', ...stored });
    assert.equal(rt.sync, undefined, 'no db-level default beside scopes');
    assert.deepEqual(rt.scopes, scoped('inventory', { airline: { sync: 'A', import_filter: 'I' }, hotel: { sync: 'function(doc){channel("hotel");}' } }).scopes);
    assert.deepEqual(withRuntimeFunctions({ sync: 'S' }), { sync: 'S' });
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpError } from '../../src/errors.ts';
import { parseExpiry, SyncFunction, SyncFunctionError } from '../../src/sync/index.ts';

const doc = (o: object) => JSON.stringify({ _id: 'd', _rev: '1-a', ...o });
const alice = { name: 'alice', roles: ['editor'], channels: ['!', 'news'] };

function rejects(fn: () => unknown, status: number, reason?: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === status && (!reason || reason.test(e.reason)));
}

describe('the sync function', () => {
  test('the default routes doc.channels', () => {
    const f = new SyncFunction(undefined, 'db');
    assert.deepEqual(f.run(doc({ channels: ['a', 'b', 'a'] }), null, null).channels, ['a', 'b']);
    assert.deepEqual(f.run(doc({ channels: 'solo' }), null, null).channels, ['solo']);
    assert.deepEqual(f.run(doc({}), null, null).channels, []);
    assert.deepEqual(f.run(doc({ channels: ['x', '*'] }), null, null).channels, ['*']);
  });

  test('channel, access and role, with oldDoc and _deleted as Sync Gateway passes them', () => {
    const f = new SyncFunction(`function(doc, oldDoc) {
      channel(doc.type, [doc.extra]);
      if (oldDoc) channel('had-old');
      if (doc._deleted) channel('tomb');
      access(doc.members, ['room-' + doc._id, '*']);
      access('role:editor', 'drafts');
      role(doc.members, 'role:member');
    }`, 'db');
    const r = f.run(doc({ type: 'post', extra: 'x', members: ['u1', 'u2'] }), null, null);
    assert.deepEqual(r.channels, ['post', 'x']);
    assert.deepEqual(r.access, { u1: ['room-d'], u2: ['room-d'], 'role:editor': ['drafts'] });
    assert.deepEqual(r.roles, { u1: ['member'], u2: ['member'] });
    const d = f.run(JSON.stringify({ _id: 'd', _rev: '2-b', _deleted: true }), doc({ type: 'post' }), null);
    assert.ok(d.channels.includes('had-old') && d.channels.includes('tomb'));
  });

  test('role() values must start with role:', () => {
    const f = new SyncFunction(`function(doc) { role('u', 'editor'); }`, 'db');
    rejects(() => f.run(doc({}), null, null), 500, /Exception in JS sync function/);
  });

  test('throw forbidden is 403, unauthorized 401, anything else 500', () => {
    const f = new SyncFunction(`function(doc) {
      if (doc.kind === 'f') throw({forbidden: 'no way'});
      if (doc.kind === 'u') throw({unauthorized: 'who are you'});
      if (doc.kind === 'e') null.boom;
    }`, 'db');
    rejects(() => f.run(doc({ kind: 'f' }), null, null), 403, /^no way$/);
    rejects(() => f.run(doc({ kind: 'u' }), null, null), 401, /^who are you$/);
    rejects(() => f.run(doc({ kind: 'e' }), null, null), 500, /^Exception in JS sync function$/);
    assert.deepEqual(f.run(doc({ kind: 'ok' }), null, null).channels, []);
  });

  test('require* helpers check users and are bypassed by the admin', () => {
    const f = new SyncFunction(`function(doc) {
      if (doc.need === 'user') requireUser(['bob', 'alice']);
      if (doc.need === 'otheruser') requireUser('bob');
      if (doc.need === 'role') requireRole('editor');
      if (doc.need === 'badrole') requireRole(['role:admin']);
      if (doc.need === 'access') requireAccess('news');
      if (doc.need === 'noaccess') requireAccess(['secret']);
      if (doc.need === 'admin') requireAdmin();
    }`, 'db');
    for (const need of ['user', 'role', 'access']) f.run(doc({ need }), null, alice);
    rejects(() => f.run(doc({ need: 'otheruser' }), null, alice), 403, /sg wrong user/);
    rejects(() => f.run(doc({ need: 'badrole' }), null, alice), 403, /sg missing role/);
    rejects(() => f.run(doc({ need: 'noaccess' }), null, alice), 403, /sg missing channel access/);
    rejects(() => f.run(doc({ need: 'admin' }), null, alice), 403, /sg admin required/);
    for (const need of ['otheruser', 'badrole', 'noaccess', 'admin']) f.run(doc({ need }), null, null);
  });

  test('expiry: relative seconds, absolute times, ISO strings', () => {
    const now = 1_700_000_000;
    assert.equal(parseExpiry(60, now), now + 60);
    assert.equal(parseExpiry(2_000_000_000, now), 2_000_000_000);
    assert.equal(parseExpiry('2030-01-01T00:00:00Z', now), Date.parse('2030-01-01T00:00:00Z') / 1000);
    const f = new SyncFunction(`function(doc) { expiry(doc.ttl); }`, 'db');
    const r = f.run(doc({ ttl: 100 }), null, null);
    assert.ok(r.expiry! > Date.now() / 1000 + 90);
  });

  test('a function that does not compile names the database and the line', () => {
    assert.throws(() => new SyncFunction('function(doc) {\n  channel(doc.x;\n}', 'mydb'),
      (e: unknown) => e instanceof SyncFunctionError && /databases\.mydb\.sync/.test(e.message) && /line 2/.test(e.message));
    assert.throws(() => new SyncFunction('42', 'mydb'), SyncFunctionError);
    assert.throws(() => new SyncFunction("function(doc) { import('fs'); }", 'mydb'), /may not use import\(\)/);
  });

  test('sandbox: no process, require, host globals, eval or Function constructor escapes', () => {
    const attempts = [
      `this.constructor.constructor('return process')()`,
      `(function(){ return this })().constructor.constructor('return process')()`,
      `doc.constructor.constructor('return process')()`,
      `channel.constructor('return process')()`,
      `eval('1+1')`,
      `require('fs')`,
      `process.exit(1)`,
      `globalThis.process.exit(1)`,
      `Buffer.from('x')`,
      `setTimeout(function(){}, 1)`,
      `Object.getPrototypeOf(async function(){}).constructor('return process')()`,
    ];
    for (const a of attempts) {
      const f = new SyncFunction(`function(doc) { var r = ${a}; if (r && r.pid) channel('escaped'); }`, 'db');
      let result;
      try {
        result = f.run(doc({}), null, null);
      } catch (e) {
        assert.ok(e instanceof HttpError && e.status === 500, `${a}: ${e}`);
        continue;
      }
      assert.ok(!result.channels.includes('escaped'), `escaped with ${a}`);
    }
  });

  test('an endless loop is stopped by the time limit', () => {
    const f = new SyncFunction(`function(doc) { while (true) {} }`, 'db', 50);
    const t0 = Date.now();
    rejects(() => f.run(doc({}), null, null), 500, /Exception in JS sync function/);
    assert.ok(Date.now() - t0 < 2000);
    // The function still runs normally afterwards.
    const g = new SyncFunction(`function(doc) { if (doc.loop) while (true) {} channel('ok'); }`, 'db', 50);
    rejects(() => g.run(doc({ loop: true }), null, null), 500);
    assert.deepEqual(g.run(doc({}), null, null).channels, ['ok']);
  });

  test('each database has its own context: one cannot see or change another\'s state', () => {
    const a = new SyncFunction(`function(doc) { globalThis.secret = 'from a'; channel = null; }`, 'a');
    const b = new SyncFunction(`function(doc) { channel(typeof secret === 'undefined' ? 'clean' : 'leaked'); }`, 'b');
    a.run(doc({}), null, null);
    assert.deepEqual(b.run(doc({}), null, null).channels, ['clean']);
    // Helpers cannot be replaced from inside either.
    const c = new SyncFunction(`function(doc) { try { channel = function(){}; } catch (e) {} channel('still'); }`, 'c');
    assert.deepEqual(c.run(doc({}), null, null).channels, ['still']);
  });

  test('mutating doc has no effect outside; illegal channel names are refused', () => {
    const f = new SyncFunction(`function(doc) { doc.channels = ['mutated']; channel(doc.channels); }`, 'db');
    assert.deepEqual(f.run(doc({ channels: ['orig'] }), null, null).channels, ['mutated']);
    const bad = new SyncFunction(`function(doc) { channel('a,b'); }`, 'db');
    rejects(() => bad.run(doc({}), null, null), 400, /Illegal channel name/);
  });
});

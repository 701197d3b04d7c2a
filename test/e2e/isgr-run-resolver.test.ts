/** The conflict resolvers and checkpoint ordering as plain functions (no gateways). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeResolver, ResolverError } from '../../src/replication/active/resolver.ts';
import { earlierSeq } from '../../src/replication/active/checkpoints.ts';

const doc = (rev: string, extra: Record<string, unknown> = {}) => ({ _id: 'd', _rev: rev, ...extra });

describe('ISGR conflict resolvers (Sync Gateway db/conflict_resolver.go)', () => {
  test('default: a deletion wins over a live revision, whichever side it is on', () => {
    const r = makeResolver('default', undefined);
    assert.equal(r({ LocalDocument: doc('2-a', { _deleted: true }), RemoteDocument: doc('9-z') }).kind, 'local');
    assert.equal(r({ LocalDocument: doc('9-z'), RemoteDocument: doc('2-a', { _deleted: true }) }).kind, 'remote');
  });

  test('default: otherwise the greater revision (generation, then digest); the local one on a tie', () => {
    const r = makeResolver('default', undefined);
    assert.equal(r({ LocalDocument: doc('3-a'), RemoteDocument: doc('2-z') }).kind, 'local');
    assert.equal(r({ LocalDocument: doc('2-a'), RemoteDocument: doc('2-b') }).kind, 'remote');
    assert.equal(r({ LocalDocument: doc('10-a'), RemoteDocument: doc('9-b') }).kind, 'local', 'generations compare as numbers');
    assert.equal(r({ LocalDocument: doc('2-a', { _deleted: true }), RemoteDocument: doc('2-b', { _deleted: true }) }).kind, 'remote');
  });

  test('localWins / remoteWins', () => {
    const c = { LocalDocument: doc('1-a', { v: 1 }), RemoteDocument: doc('5-b', { v: 2 }) };
    assert.deepEqual(makeResolver('localWins', undefined)(c), { kind: 'local', body: c.LocalDocument });
    assert.deepEqual(makeResolver('remoteWins', undefined)(c), { kind: 'remote', body: c.RemoteDocument });
  });

  test('custom: one side by _rev, a merge without _rev, null as a deletion, a foreign _rev as a merge', () => {
    const c = { LocalDocument: doc('1-a', { v: 1 }), RemoteDocument: doc('5-b', { v: 2 }) };
    assert.equal(makeResolver('custom', 'function(c) { return c.RemoteDocument; }')(c).kind, 'remote');
    assert.equal(makeResolver('custom', 'function(c) { return c.LocalDocument; }')(c).kind, 'local');
    assert.deepEqual(makeResolver('custom', 'function(c) { return { v: c.LocalDocument.v + c.RemoteDocument.v }; }')(c), { kind: 'merge', body: { v: 3 } });
    assert.deepEqual(makeResolver('custom', 'function(c) { return null; }')(c), { kind: 'merge', body: { _deleted: true } });
    assert.equal(makeResolver('custom', 'function(c) { return { _rev: "7-x" }; }')(c).kind, 'merge');
  });

  test('custom: isolated (no host objects, no eval, no import) and time-limited', () => {
    const c = { LocalDocument: doc('1-a'), RemoteDocument: doc('2-b') };
    assert.throws(() => makeResolver('custom', 'function(c) { return process.env; }')(c), ResolverError);
    assert.throws(() => makeResolver('custom', 'function(c) { return eval("c"); }')(c), ResolverError);
    assert.throws(() => makeResolver('custom', 'function(c) { return import("fs"); }'), ResolverError);
    assert.throws(() => makeResolver('custom', 'function(c) { while (true) {} }', 50)(c), /timed out/);
    assert.throws(() => makeResolver('custom', 'function(c) { return 42; }')(c), /non-document/);
    assert.throws(() => makeResolver('custom', '42'), /must be a function/);
    assert.throws(() => makeResolver('custom', undefined), /required/);
  });
});

describe('ISGR checkpoints: resuming from the earlier of two positions', () => {
  test('equal, missing, ordered, backfill before its grant, unreadable', () => {
    assert.equal(earlierSeq('12', '12'), '12');
    assert.equal(earlierSeq(undefined, '12'), '');
    assert.equal(earlierSeq('12', undefined), '');
    assert.equal(earlierSeq('9', '12'), '9');
    assert.equal(earlierSeq('12', '100'), '12');
    assert.equal(earlierSeq('5:120', '5'), '5:120');
    assert.equal(earlierSeq('5', '4:300'), '4:300');
    assert.equal(earlierSeq('abc', '5'), '');
  });
});

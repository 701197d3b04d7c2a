/**
 * explainAccess (src/auth/access-explain.ts): every path to each channel and role, and a `since`
 * that always equals computeAccess's (a property over random users, roles and grants).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { GRANTED_BY_OWN_SAVE, computeAccess } from '../../src/auth/access.ts';
import { explainAccess } from '../../src/auth/access-explain.ts';
import type { GrantRow, PrincipalRecord } from '../../src/storage/store.ts';

const rec = (kind: 'user' | 'role', name: string, seq: number, adminChannels: Record<string, number> = {}, adminRoles: Record<string, number> = {}, extra: Partial<PrincipalRecord> = {}): PrincipalRecord =>
  ({ kind, name, seq, adminChannels, adminRoles, disabled: false, ...extra });
const grant = (grantee: string, kind: 'channel' | 'role', value: string, seq: number, docId: string, collection?: string): GrantRow =>
  ({ grantee, kind, value, seq, docId, ...(collection ? { collection } : {}) });

describe('explainAccess examples', () => {
  test('every kind of source, named, with its sequence', () => {
    const bob = rec('user', 'bob', 10, { news: GRANTED_BY_OWN_SAVE }, { editors: 4 }, { jwtChannels: { sso: 8 }, jwtRoles: { auditors: 8 } });
    const roles = new Map([
      ['editors', rec('role', 'editors', 3, { drafts: 2 })],
      ['staff', rec('role', 'staff', 5, { staffroom: 5 })],
      ['auditors', rec('role', 'auditors', 1, {})],
    ]);
    const grants = [
      grant('bob', 'channel', 'room-1', 12, 'grant-1'),
      grant('bob', 'role', 'staff', 14, 'team'),
      grant('role:staff', 'channel', 'memo', 20, 'staffgrant'),
      grant('role:editors', 'channel', 'news', 30, 'later'),
      grant('bob', 'channel', 'flights', 16, 'f1', 'travel.airline'),
      grant('alice', 'channel', 'other', 1, 'x'),
    ];
    const e = explainAccess(bob, roles, grants);
    assert.equal(e.name, 'bob');
    assert.deepEqual(e.channels['!'], { since: 1, sources: [{ type: 'public', since: 1 }] });
    assert.deepEqual(e.channels.news, { since: 10, sources: [{ type: 'admin', since: 10 }, { type: 'role', role: 'editors', since: 30, via: { type: 'document', doc_id: 'later', since: 30 } }] });
    assert.deepEqual(e.channels.sso, { since: 8, sources: [{ type: 'jwt', since: 8 }] });
    assert.deepEqual(e.channels.drafts, { since: 4, sources: [{ type: 'role', role: 'editors', since: 4, via: { type: 'admin', since: 2 } }] });
    assert.deepEqual(e.channels['room-1'], { since: 12, sources: [{ type: 'document', doc_id: 'grant-1', since: 12 }] });
    assert.deepEqual(e.channels.staffroom, { since: 14, sources: [{ type: 'role', role: 'staff', since: 14, via: { type: 'admin', since: 5 } }] });
    assert.deepEqual(e.channels.memo, { since: 20, sources: [{ type: 'role', role: 'staff', since: 20, via: { type: 'document', doc_id: 'staffgrant', since: 20 } }] });
    assert.equal(e.channels.other, undefined, 'another user\'s grant');
    assert.equal(e.channels.flights, undefined, 'a named collection\'s channel is not a default-collection channel');
    assert.deepEqual(e.collections, { 'travel.airline': {
      '!': { since: 1, sources: [{ type: 'public', since: 1 }] },
      flights: { since: 16, sources: [{ type: 'document', doc_id: 'f1', since: 16, collection: 'travel.airline' }] },
    } });
    assert.deepEqual(e.roles, {
      auditors: { since: 8, sources: [{ type: 'jwt', since: 8 }] },
      editors: { since: 4, sources: [{ type: 'admin', since: 4 }] },
      staff: { since: 14, sources: [{ type: 'document', doc_id: 'team', since: 14 }] },
    });
  });

  test('the default GUEST (no record) has only the public channel and its own grants', () => {
    const e = explainAccess(undefined, new Map(), [grant('GUEST', 'channel', 'open', 3, 'd')]);
    assert.deepEqual(Object.keys(e.channels), ['!', 'open']);
    assert.equal(e.name, 'GUEST');
  });
});

const CHANNELS = ['a', 'b', 'c', '!'];
const ROLES = ['r1', 'r2', 'r3'];
const COLLS = ['s.one', 's.two', '_default._default'];
const seqArb = fc.integer({ min: 1, max: 60 });
const chanMap = fc.dictionary(fc.constantFrom(...CHANNELS), fc.oneof(seqArb, fc.constant(GRANTED_BY_OWN_SAVE)), { maxKeys: 3 });
const scenario = fc.record({
  userSeq: seqArb,
  adminChannels: chanMap,
  adminRoles: fc.dictionary(fc.constantFrom(...ROLES), fc.oneof(seqArb, fc.constant(GRANTED_BY_OWN_SAVE)), { maxKeys: 3 }),
  jwtChannels: chanMap,
  collectionChannels: fc.dictionary(fc.constantFrom(...COLLS), chanMap, { maxKeys: 2 }),
  roles: fc.array(fc.record({ name: fc.constantFrom(...ROLES), seq: seqArb, adminChannels: chanMap, collectionChannels: fc.dictionary(fc.constantFrom(...COLLS), chanMap, { maxKeys: 2 }) }), { maxLength: 3 }),
  grants: fc.array(fc.record({
    grantee: fc.constantFrom('alice', 'bob', ...ROLES.map((r) => `role:${r}`)),
    kind: fc.constantFrom('channel' as const, 'role' as const),
    value: fc.constantFrom(...CHANNELS, ...ROLES),
    seq: seqArb,
    collection: fc.option(fc.constantFrom(...COLLS), { nil: undefined }),
  }), { maxLength: 12 }),
});

describe('explainAccess properties', () => {
  test('same channels, roles and since as computeAccess; every document source is a real grant', () => {
    fc.assert(fc.property(scenario, (s) => {
      const named = (m: Record<string, Record<string, number>>) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== '_default._default'));
      const u = rec('user', 'alice', s.userSeq, s.adminChannels, s.adminRoles, { jwtChannels: s.jwtChannels, collectionChannels: named(s.collectionChannels) });
      const roles = new Map<string, PrincipalRecord>();
      for (const r of s.roles) roles.set(r.name, rec('role', r.name, r.seq, r.adminChannels, {}, { collectionChannels: named(r.collectionChannels) }));
      // A role grant's value is a role, a channel grant's a channel (as the sync function makes them).
      const grants = s.grants
        .filter((g) => (g.kind === 'role') === ROLES.includes(g.value) && !(g.kind === 'role' && g.grantee.startsWith('role:')))
        .map((g, i) => grant(g.grantee, g.kind, g.value, g.seq, `doc${i}`, g.collection));
      const a = computeAccess(u, roles, grants, new Map());
      const e = explainAccess(u, roles, grants);
      assert.deepEqual(Object.fromEntries(Object.entries(e.channels).map(([k, v]) => [k, v.since])), Object.fromEntries([...a.channels].sort(([x], [y]) => (x < y ? -1 : 1))));
      assert.deepEqual(Object.fromEntries(Object.entries(e.roles).map(([k, v]) => [k, v.since])), Object.fromEntries([...a.roles].sort(([x], [y]) => (x < y ? -1 : 1))));
      const sinces = (m: Record<string, { since: number }>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.since]));
      const byKey = (m: Map<string, number>) => Object.fromEntries([...m].sort(([x], [y]) => (x < y ? -1 : 1)));
      assert.deepEqual(Object.fromEntries(Object.entries(e.collections).map(([k, m]) => [k, sinces(m)])),
        Object.fromEntries([...a.collections].sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, m]) => [k, byKey(m)])), 'named collections too');
      for (const [ch, p] of Object.entries(e.channels)) {
        assert.equal(p.since, Math.min(...p.sources.map((x) => x.since)));
        for (const src of p.sources) {
          const doc = src.type === 'document' ? src : src.type === 'role' && src.via.type === 'document' ? src.via : undefined;
          if (!doc) continue;
          const grantee = src.type === 'role' ? `role:${src.role}` : 'alice';
          assert.ok(grants.some((g) => g.docId === doc.doc_id && g.grantee === grantee && g.value === ch && g.kind === 'channel'), `${ch} from ${doc.doc_id}`);
        }
      }
    }), { numRuns: 300 });
  });
});

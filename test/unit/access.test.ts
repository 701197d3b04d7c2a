import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { GRANTED_BY_OWN_SAVE, computeAccess, computeRoleAccess } from '../../src/auth/access.ts';
import type { GrantRow, PrincipalRecord } from '../../src/storage/store.ts';

function user(name: string, seq: number, adminChannels: Record<string, number> = {}, adminRoles: Record<string, number> = {}): PrincipalRecord {
  return { kind: 'user', name, seq, adminChannels, adminRoles, disabled: false };
}
function role(name: string, seq: number, adminChannels: Record<string, number> = {}): PrincipalRecord {
  return { kind: 'role', name, seq, adminChannels, adminRoles: {}, disabled: false };
}
function grant(grantee: string, kind: 'channel' | 'role', value: string, seq: number, docId = 'd'): GrantRow {
  return { grantee, kind, value, seq, docId };
}
const obj = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

describe('computeAccess examples', () => {
  test('the default GUEST sees only ! at 1', () => {
    const a = computeAccess(undefined, new Map(), [], new Map());
    assert.deepEqual(obj(a.channels), { '!': 1 });
    assert.equal(a.roles.size, 0);
    assert.equal(a.seq, 0);
  });

  test('admin channels, document grants and the earliest path', () => {
    const u = user('alice', 9, { a: 3, b: 9 });
    const a = computeAccess(u, new Map(), [grant('alice', 'channel', 'b', 5), grant('alice', 'channel', 'c', 12), grant('bob', 'channel', 'z', 2)], new Map([['alice', 12], ['bob', 20]]));
    assert.deepEqual(obj(a.channels), { '!': 1, a: 3, b: 5, c: 12 });
    assert.equal(a.seq, 12);
  });

  test('a channel through a role counts from max(role granted, channel granted to role)', () => {
    const u = user('alice', 4, {}, { staff: 10 });
    const roles = new Map([['staff', role('staff', 6, { x: 5, y: 15 })]]);
    const grants = [grant('role:staff', 'channel', 'z', 2), grant('role:staff', 'channel', 'x', 1)];
    const a = computeAccess(u, roles, grants, new Map([['role:staff', 2]]));
    assert.deepEqual(obj(a.channels), { '!': 1, x: 10, y: 15, z: 10 });
    assert.deepEqual(obj(a.roles), { staff: 10 });
    assert.equal(a.seq, 6);
  });

  test('a role granted by a document and by the admin counts from the earlier', () => {
    const u = user('alice', 20, {}, { staff: 20 });
    const roles = new Map([['staff', role('staff', 3, { x: 3 })]]);
    const a = computeAccess(u, roles, [grant('alice', 'role', 'staff', 8)], new Map([['alice', 8], ['role:staff', 30]]));
    assert.deepEqual(obj(a.channels), { '!': 1, x: 8 });
    assert.equal(a.seq, 30, 'a change to a role\'s grants changes its users');
  });

  test('a missing role is listed but grants nothing', () => {
    const a = computeAccess(user('u', 1, {}, { ghost: 1 }), new Map(), [grant('role:ghost', 'channel', 'g', 1)], new Map());
    assert.deepEqual(obj(a.channels), { '!': 1 });
    assert.deepEqual(obj(a.roles), { ghost: 1 });
  });

  test('granted-by-own-save entries read as the record\'s sequence', () => {
    const u = user('u', 42, { a: GRANTED_BY_OWN_SAVE, b: 7 }, { r: GRANTED_BY_OWN_SAVE });
    const roles = new Map([['r', role('r', 50, { c: GRANTED_BY_OWN_SAVE })]]);
    const a = computeAccess(u, roles, [], new Map());
    assert.deepEqual(obj(a.channels), { '!': 1, a: 42, b: 7, c: 50 });
    assert.deepEqual(obj(a.roles), { r: 42 });
    assert.equal(a.seq, 50);
  });

  test('* is an ordinary key: it means every channel to canSee', () => {
    const a = computeAccess(user('u', 3, { '*': 3 }), new Map(), [], new Map());
    assert.equal(a.channels.get('*'), 3);
  });

  test('role access: !, admin channels and grants to role:<name>', () => {
    const r = role('staff', 5, { a: 2 });
    const a = computeRoleAccess(r, [grant('role:staff', 'channel', 'b', 9), grant('staff', 'channel', 'no', 1)], new Map([['role:staff', 9]]));
    assert.deepEqual(obj(a.channels), { '!': 1, a: 2, b: 9 });
    assert.equal(a.seq, 9);
  });
});

// ---- properties against an independent oracle: enumerate every path, keep the minimum ----

const CHANNELS = ['a', 'b', 'c', 'd', '*', '!'];
const ROLES = ['r1', 'r2', 'r3'];
const USERS = ['alice', 'bob'];
const seqArb = fc.integer({ min: 1, max: 60 });
const chanMap = fc.dictionary(fc.constantFrom(...CHANNELS), fc.oneof(seqArb, fc.constant(GRANTED_BY_OWN_SAVE)), { maxKeys: 4 });

const scenario = fc.record({
  userSeq: seqArb,
  adminChannels: chanMap,
  adminRoles: fc.dictionary(fc.constantFrom(...ROLES), fc.oneof(seqArb, fc.constant(GRANTED_BY_OWN_SAVE)), { maxKeys: 3 }),
  roles: fc.array(fc.record({ name: fc.constantFrom(...ROLES), seq: seqArb, adminChannels: chanMap }), { maxLength: 3 }),
  grants: fc.array(fc.oneof(
    fc.record({ grantee: fc.constantFrom(...USERS), kind: fc.constant('channel' as const), value: fc.constantFrom(...CHANNELS), seq: seqArb }),
    fc.record({ grantee: fc.constantFrom(...USERS), kind: fc.constant('role' as const), value: fc.constantFrom(...ROLES), seq: seqArb }),
    fc.record({ grantee: fc.constantFrom(...ROLES.map((r) => `role:${r}`)), kind: fc.constant('channel' as const), value: fc.constantFrom(...CHANNELS), seq: seqArb }),
  ), { maxLength: 12 }),
  changed: fc.dictionary(fc.constantFrom(...USERS, ...ROLES.map((r) => `role:${r}`)), seqArb),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function build(s: Scenario) {
  const u = user('alice', s.userSeq, s.adminChannels, s.adminRoles);
  const roles = new Map<string, PrincipalRecord>();
  for (const r of s.roles) roles.set(r.name, role(r.name, r.seq, r.adminChannels));
  const grants = s.grants.map((g, i) => ({ ...g, docId: `doc${i}` }));
  return { u, roles, grants, changed: new Map(Object.entries(s.changed)) };
}

function oracle(s: Scenario): { channels: Record<string, number>; roles: Record<string, number>; seq: number } {
  const { u, roles, grants, changed } = build(s);
  const at = (v: number, own: number) => (v === 0 ? own : v);
  const paths: [string, number][] = [['!', 1]];
  const rolePaths: [string, number][] = [];
  for (const [c, v] of Object.entries(u.adminChannels)) paths.push([c, at(v, u.seq)]);
  for (const [r, v] of Object.entries(u.adminRoles)) rolePaths.push([r, at(v, u.seq)]);
  for (const g of grants) {
    if (g.grantee !== 'alice') continue;
    (g.kind === 'channel' ? paths : rolePaths).push([g.value, g.seq]);
  }
  let seq = Math.max(u.seq, changed.get('alice') ?? 0);
  for (const [r, rs] of rolePaths) {
    const rec = roles.get(r);
    if (!rec) continue;
    seq = Math.max(seq, rec.seq, changed.get(`role:${r}`) ?? 0);
    for (const [c, v] of Object.entries(rec.adminChannels)) paths.push([c, Math.max(rs, at(v, rec.seq))]);
    for (const g of grants) if (g.grantee === `role:${r}` && g.kind === 'channel') paths.push([g.value, Math.max(rs, g.seq)]);
  }
  const min = (list: [string, number][]) => {
    const out: Record<string, number> = {};
    for (const [k, v] of list) if (!(k in out) || v < out[k]) out[k] = v;
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
  };
  return { channels: min(paths), roles: min(rolePaths), seq };
}

describe('computeAccess properties', () => {
  test('matches the path-enumerating oracle', () => {
    fc.assert(fc.property(scenario, (s) => {
      const { u, roles, grants, changed } = build(s);
      const a = computeAccess(u, roles, grants, changed);
      const want = oracle(s);
      assert.deepEqual(obj(a.channels), want.channels);
      assert.deepEqual(obj(a.roles), want.roles);
      assert.equal(a.seq, want.seq);
    }), { numRuns: 500 });
  });

  test('! is always visible at 1, and every sequence is positive', () => {
    fc.assert(fc.property(scenario, (s) => {
      const { u, roles, grants, changed } = build(s);
      const a = computeAccess(u, roles, grants, changed);
      assert.equal(a.channels.get('!'), 1);
      for (const v of a.channels.values()) assert.ok(v >= 1);
      assert.ok(a.seq >= u.seq);
    }), { numRuns: 300 });
  });

  test('adding a grant never hides a channel nor makes one later', () => {
    const extra = fc.record({
      grantee: fc.constantFrom('alice', ...ROLES.map((r) => `role:${r}`)),
      kind: fc.constantFrom('channel' as const, 'role' as const),
      value: fc.constantFrom(...CHANNELS, ...ROLES), seq: seqArb,
    });
    fc.assert(fc.property(scenario, extra, (s, g) => {
      if (g.kind === 'role' && (g.grantee !== 'alice' || !ROLES.includes(g.value))) return;
      if (g.kind === 'channel' && !CHANNELS.includes(g.value)) return;
      const { u, roles, grants, changed } = build(s);
      const before = computeAccess(u, roles, grants, changed);
      const after = computeAccess(u, roles, [...grants, { ...g, docId: 'extra' }], changed);
      for (const [ch, seq] of before.channels) {
        assert.ok(after.channels.has(ch), `lost ${ch}`);
        assert.ok(after.channels.get(ch)! <= seq, `${ch} became later`);
      }
    }), { numRuns: 300 });
  });

  test('grants to other users and unheld roles change nothing', () => {
    fc.assert(fc.property(scenario, fc.constantFrom('a', 'b', '*'), seqArb, (s, ch, seq) => {
      const { u, roles, grants, changed } = build(s);
      const held = new Set([...Object.keys(u.adminRoles), ...grants.filter((g) => g.grantee === 'alice' && g.kind === 'role').map((g) => g.value)]);
      const noise: GrantRow[] = [grant('bob', 'channel', ch, seq, 'n1'), grant('bob', 'role', 'r1', seq, 'n2')];
      for (const r of ROLES) if (!held.has(r)) noise.push(grant(`role:${r}`, 'channel', ch, seq, `n-${r}`));
      const noisyChanged = new Map(changed);
      noisyChanged.set('bob', 999);
      for (const r of ROLES) if (!held.has(r)) noisyChanged.set(`role:${r}`, 999);
      const a = computeAccess(u, roles, grants, changed);
      const b = computeAccess(u, roles, [...grants, ...noise], noisyChanged);
      assert.deepEqual(obj(b.channels), obj(a.channels));
      assert.deepEqual(obj(b.roles), obj(a.roles));
      assert.equal(b.seq, a.seq);
    }), { numRuns: 300 });
  });
});

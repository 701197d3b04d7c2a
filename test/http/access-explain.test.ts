/**
 * Admin `GET /{db}/_user/{name}/_access` through a real gateway: each channel and role of a user
 * with where it comes from (admin grant, role and how the role has it, the document whose
 * `access()`/`role()` granted it) and since which sequence; the same channels as `all_channels`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const SYNC = `function (doc) {
  channel(doc.channels);
  if (doc.members) access(doc.members, doc.room);
  if (doc.staff) role(doc.staff, 'role:staff');
}`;

describe('GET /{db}/_user/{name}/_access', () => {
  let gw: TestGateway;
  const admin = (path: string, init: Parameters<typeof req>[1] = {}) => req(`${gw.adminUrl}${path}`, init);
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', sync: SYNC, users: { GUEST: { disabled: true } } } } });
  });
  after(async () => { await gw.stop(); });

  test('names the admin grant, the role (and its grant), and the granting documents with their sequences', async () => {
    assert.equal((await admin('/db/_role/editors', { method: 'PUT', json: { admin_channels: ['drafts'] } })).status, 201);
    assert.equal((await admin('/db/_role/staff', { method: 'PUT', json: { admin_channels: ['staffroom'] } })).status, 201);
    assert.equal((await admin('/db/_user/bob', { method: 'PUT', json: { password: 'pw-bob-1', admin_channels: ['news'], admin_roles: ['editors'] } })).status, 201);
    const grant = await admin('/db/room-grant', { method: 'PUT', json: { members: ['bob'], room: 'room-1' } });
    assert.equal(grant.status, 201);
    assert.equal((await admin('/db/team', { method: 'PUT', json: { staff: 'bob' } })).status, 201);
    assert.equal((await admin('/db/memo-grant', { method: 'PUT', json: { members: ['role:staff'], room: 'memo' } })).status, 201);
    const seqOf = async (id: string) => (await admin(`/db/_raw/${id}`)).body._sync.sequence as number;
    const [grantSeq, teamSeq, memoSeq] = [await seqOf('room-grant'), await seqOf('team'), await seqOf('memo-grant')];

    const r = await admin('/db/_user/bob/_access');
    assert.equal(r.status, 200, r.text);
    const user = (await admin('/db/_user/bob')).body;
    assert.deepEqual(Object.keys(r.body.channels), user.all_channels, 'the same channels as all_channels');
    assert.deepEqual(Object.keys(r.body.roles), user.roles);
    const c = r.body.channels;
    assert.deepEqual(c['!'].sources, [{ type: 'public', since: 1 }]);
    assert.equal(c.news.sources.length, 1);
    assert.equal(c.news.sources[0].type, 'admin');
    assert.equal(c.drafts.sources[0].type, 'role');
    assert.equal(c.drafts.sources[0].role, 'editors');
    assert.equal(c.drafts.sources[0].via.type, 'admin');
    assert.deepEqual(c['room-1'], { since: grantSeq, sources: [{ type: 'document', doc_id: 'room-grant', since: grantSeq }] });
    assert.equal(c.staffroom.sources[0].role, 'staff');
    assert.equal(c.staffroom.since, teamSeq, 'a role\'s channel counts from when the user got the role');
    assert.deepEqual(c.memo.sources, [{ type: 'role', role: 'staff', since: memoSeq, via: { type: 'document', doc_id: 'memo-grant', since: memoSeq } }]);
    assert.deepEqual(r.body.roles.staff, { since: teamSeq, sources: [{ type: 'document', doc_id: 'team', since: teamSeq }] });
    assert.equal(r.body.roles.editors.sources[0].type, 'admin');

    // A later revision that drops the grant revokes it: the explanation follows.
    assert.equal((await admin(`/db/room-grant?rev=${grant.body.rev}`, { method: 'PUT', json: {} })).status, 201);
    assert.equal((await admin('/db/_user/bob/_access')).body.channels['room-1'], undefined);
  });

  test('GUEST always answers; an unknown user is 404; admin port only', async () => {
    const g = await admin('/db/_user/GUEST/_access');
    assert.equal(g.status, 200);
    assert.deepEqual(Object.keys(g.body.channels), ['!']);
    assert.equal((await admin('/db/_user/nobody/_access')).status, 404);
    assert.equal((await req(`${gw.publicUrl}/db/_user/bob/_access`)).status, 404);
  });
});

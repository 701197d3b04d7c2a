/**
 * Which replaced bodies a Database keeps, and for how long (spec collections-delta.md §2.6, issue 15
 * point 4): `rev_max_age_seconds` with delta sync on, `old_rev_expiry_seconds` with it off or with
 * `rev_max_age_seconds: 0`, nothing with a 0 expiry; the expiry sweep removes them, purge too.
 * A real Database on a real SQLite store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Database, type DatabaseOptions } from '../../src/db/database.ts';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';

function open(extra: Partial<DatabaseOptions>): Database {
  return new Database({ name: 'db', store: new SqliteStore({ path: ':memory:' }), revsLimit: 1000, allowConflicts: true, ...extra });
}

async function edit(db: Database): Promise<{ r1: string; r2: string; before: number; after: number }> {
  const before = Math.floor(Date.now() / 1000);
  const { rev: r1 } = await db.put({ id: 'd', body: { v: 1 }, newEdits: true });
  const { rev: r2 } = await db.put({ id: 'd', body: { v: 2 }, newEdits: true, parentRev: r1 });
  return { r1, r2, before, after: Math.floor(Date.now() / 1000) };
}

/** The retention of the replaced body, in seconds from the edit (within the test's clock skew). */
async function keptFor(db: Database, r1: string, before: number, after: number): Promise<number | undefined> {
  if (!(await db.store.getOldRevision('d', r1, after))) return undefined;
  // Binary search of the expiry: the last second at which the body is still there.
  let lo = after, hi = after + 10 * 86_400;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (await db.store.getOldRevision('d', r1, mid)) lo = mid; else hi = mid - 1;
  }
  return lo + 1 - before;
}

describe('Database: old revision bodies', () => {
  const cases: [string, Partial<DatabaseOptions>, number | undefined][] = [
    ['delta sync on: rev_max_age_seconds', { deltaSync: { enabled: true, revMaxAgeSecs: 3600 } }, 3600],
    ['delta sync off: old_rev_expiry_seconds', { deltaSync: { enabled: false, revMaxAgeSecs: 3600 }, oldRevExpirySecs: 600 }, 600],
    ['delta sync on with rev_max_age_seconds 0: old_rev_expiry_seconds', { deltaSync: { enabled: true, revMaxAgeSecs: 0 } }, 300],
    ['defaults (no delta sync): 300 s', {}, 300],
    ['old_rev_expiry_seconds 0 and delta sync off: not kept', { oldRevExpirySecs: 0 }, undefined],
  ];
  for (const [name, opts, expected] of cases) {
    it(name, async () => {
      const db = open(opts);
      try {
        const { r1, r2, before, after } = await edit(db);
        assert.equal(await db.store.getRevision('d', r1), undefined, 'not a leaf body any more');
        assert.equal((await db.store.getRevision('d', r2))?.body, '{"v":2}');
        const kept = await keptFor(db, r1, before, after);
        if (expected === undefined) assert.equal(kept, undefined);
        else {
          assert.ok(kept !== undefined, 'kept');
          assert.ok(kept >= expected && kept <= expected + (after - before) + 1, `kept ${kept} s, expected ${expected}`);
          assert.equal((await db.store.getOldRevision('d', r1, after))?.body, '{"v":1}');
        }
      } finally {
        await db.close();
      }
    });
  }

  it('the expiry sweep drops them once their time is up; purge drops them with the document', async () => {
    const db = open({ deltaSync: { enabled: true, revMaxAgeSecs: 3600 } });
    try {
      const { r1, after } = await edit(db);
      await db.sweepExpired(after);
      assert.ok(await db.store.getOldRevision('d', r1, after), 'still within its time');
      await db.sweepExpired(after + 3601);
      assert.deepEqual(await db.store.oldRevisionUsage(), { count: 0, bytes: 0 });
      const { rev: r3 } = await db.put({ id: 'd', body: { v: 3 }, newEdits: true, parentRev: (await db.store.getDoc('d'))!.rev });
      assert.equal((await db.store.oldRevisionUsage()).count, 1);
      assert.equal(await db.purge('d'), true);
      assert.deepEqual(await db.store.oldRevisionUsage(), { count: 0, bytes: 0 });
      void r3;
    } finally {
      await db.close();
    }
  });
});

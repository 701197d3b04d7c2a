import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Database } from '../../src/db/database.ts';
import { DbJobs } from '../../src/db/jobs/index.ts';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';

test('tombstone compaction runs by itself every compact_interval_days, only while online', async () => {
  const db = new Database({ name: 'db', store: new SqliteStore({ path: ':memory:' }), revsLimit: 100, allowConflicts: true });
  const logs: string[] = [];
  // Half a second between runs, tombstones purged at once (the config allows 0.04 days at least; the job takes any).
  const jobs = new DbJobs(db, { compactIntervalDays: 0.5 / 86400, purgeIntervalDays: 0, hooks: { log: (_l, m) => logs.push(m) } });
  try {
    const { rev } = await db.put({ id: 'a', body: {}, newEdits: true });
    db.setState('Offline');
    await db.delete('a', rev);
    await sleep(1500);
    assert.equal((await db.store.getDoc('a'))?.deleted, true, 'no scheduled run while offline');
    db.setState('Online');
    for (let i = 0; i < 400 && (await db.store.getDoc('a')) !== undefined; i++) await sleep(50);
    assert.equal(await db.store.getDoc('a'), undefined, 'purged by a scheduled run');
    assert.ok(logs.some((l) => l.startsWith('tombstone_compaction: run')), logs.join('\n'));
  } finally {
    await jobs.close();
    await db.close();
  }
});

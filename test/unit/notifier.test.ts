import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Notifier } from '../../src/db/notifier.ts';

test('a wait sleeps until a commit on its channels', async () => {
  const n = new Notifier();
  const seen = n.version;
  let woke: boolean | undefined;
  const p = n.wait(['a'], 0, undefined, seen).then((v) => { woke = v; });
  n.notify(['b']);
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, undefined, 'another channel does not wake it');
  n.notify(['a']);
  await p;
  assert.equal(woke, true);
});

test('a commit notified between the read and the wait is not slept through', async () => {
  const n = new Notifier();
  const seen = n.version; // noted before the read
  n.notify(['a']); // a commit lands while the read runs
  // Without `seen` this would wait for the next commit, however long that is (here: time out, false).
  assert.equal(await n.wait(['a'], 1000, undefined, seen), true);
  assert.equal(n.waiting, 0);
});

test('a wait times out; closing wakes the waiters and refuses new waits', async () => {
  const n = new Notifier();
  assert.equal(await n.wait(['a'], 20), false);
  const p = n.wait(null, 0);
  n.close();
  assert.equal(await p, true);
  assert.equal(await n.wait(['a'], 0), false);
});

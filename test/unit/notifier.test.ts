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

test('a listener remembers a notification that arrives while its feed is busy', async () => {
  const n = new Notifier();
  const l = n.listener();
  l.follow(['a']);
  l.reading();
  n.notify(['a']); // lands during the read
  assert.equal(await l.wait(1000), true, 'not slept through');
  l.reading();
  n.notify(['b']); // another channel
  assert.equal(await l.wait(20), false, 'times out: b is not followed');
  const p = l.wait(0);
  n.notify(['a']);
  assert.equal(await p, true);
  l.end();
});

test('a listener notified before its read began does not wake after it', async () => {
  const n = new Notifier();
  const l = n.listener();
  l.follow(['a']);
  n.notify(['a']);
  l.reading(); // the read covers that change
  assert.equal(await l.wait(20), false);
  l.end();
});

test('a listener follows new keys, and ending it unregisters it and ends its wait', async () => {
  const n = new Notifier();
  const l = n.listener();
  const keys = ['a'];
  l.follow(keys);
  l.follow(keys); // the same array: nothing to do
  assert.equal(n.waiting, 1);
  l.follow(['b']);
  const p = l.wait(0);
  n.notify(['a']);
  n.notify(['b']);
  assert.equal(await p, true);
  const q = l.wait(0);
  l.end();
  assert.equal(await q, false);
  assert.equal(n.waiting, 0);
  assert.equal(await l.wait(0), false, 'an ended listener does not wait');
});

test('closing the notifier wakes listeners, then their waits answer false', async () => {
  const n = new Notifier();
  const l = n.listener();
  l.follow(null);
  const p = l.wait(0);
  n.close();
  assert.equal(await p, true);
  assert.equal(await l.wait(0), false);
});

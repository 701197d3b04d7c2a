/**
 * An at-least-once webhook's run of announced commits (src/events/tip.ts): it may only hand out
 * sequences that follow the checkpoint with no gap, in order, rendered as the feed renders them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DocumentChange } from '../../src/db/database.ts';
import { renderDoc } from '../../src/db/render.ts';
import { AnnouncedTip } from '../../src/events/tip.ts';

const change = (seq: number, id = `d${seq}`, winnerHere = true): DocumentChange => ({
  collection: '_default._default', id, rev: `1-${seq}`, seq, winner: `1-${seq}`, winnerChanged: winnerHere, oldDoc: null,
  winnerRevision: winnerHere ? { rev: `1-${seq}`, deleted: false, body: `{"n":${seq}}`, attachments: null } : undefined,
});
const seqs = (t: AnnouncedTip, since: number, limit = 100) => t.after(since, limit).map((i) => i.seq);

describe('AnnouncedTip', () => {
  it('hands out the run after the checkpoint, as the feed renders it', () => {
    const t = new AnnouncedTip();
    t.add([change(5), change(6)]);
    t.add([change(7)]);
    const items = t.after(4, 100);
    assert.deepEqual(items.map((i) => i.seq), [5, 6, 7]);
    assert.deepEqual(items[0], { seq: 5, id: 'd5', rev: '1-5', doc: renderDoc({ id: 'd5', rev: '1-5', deleted: false, body: '{"n":5}', attachments: null }) });
    assert.deepEqual(JSON.parse(items[2].doc), { _id: 'd7', _rev: '1-7', n: 7 });
    assert.deepEqual(seqs(t, 5, 1), [6], 'at most the limit');
  });

  it('stops at a gap, and gives nothing when the next sequence is not held', () => {
    const t = new AnnouncedTip();
    t.add([change(2), change(3), change(5), change(6)]);
    assert.deepEqual(seqs(t, 1), [2, 3]);
    assert.deepEqual(seqs(t, 3), [], 'sequence 4 was never announced: read the feed');
    assert.deepEqual(seqs(t, 4), [5, 6], 'after the feed covered 4');
    assert.deepEqual(seqs(t, 0), [], 'the checkpoint before anything held');
  });

  it('leaves a gap for an edit that did not change the winner (its body is not at hand)', () => {
    const t = new AnnouncedTip();
    t.add([change(1), change(2, 'x', false), change(3)]);
    assert.deepEqual(seqs(t, 0), [1]);
  });

  it('keeps sequence order when commits are announced out of order, without duplicates', () => {
    const t = new AnnouncedTip();
    t.add([change(3)]);
    t.add([change(1)]);
    t.add([change(2), change(2)]);
    assert.deepEqual(seqs(t, 0), [1, 2, 3]);
    assert.equal(t.size, 3);
  });

  it('forgets what is at or before the checkpoint, and the oldest beyond its bound', () => {
    const t = new AnnouncedTip(3);
    t.add([1, 2, 3, 4, 5].map((s) => change(s)));
    assert.equal(t.size, 3);
    assert.deepEqual(seqs(t, 0), [], '1 and 2 were dropped: the feed covers them');
    assert.deepEqual(seqs(t, 2), [3, 4, 5]);
    assert.deepEqual(seqs(t, 4), [5]);
    assert.equal(t.size, 1);
    t.clear();
    assert.deepEqual(seqs(t, 4), []);
  });
});

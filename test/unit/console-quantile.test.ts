import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Latency, quantileBetween } from '../../console/quantile.ts';

const h = (counts: number[], count: number): Latency => ({ buckets: [0.01, 0.1, 1].map((le, i) => ({ le, count: counts[i] })), count, sum_seconds: 0 });

describe('quantileBetween (the console\'s p95)', () => {
  test('interpolates inside the bucket holding the rank, over the requests between the samples', () => {
    const prev = h([100, 100, 100], 100); // 100 fast requests before: not part of the answer
    // 100 new requests: 50 under 10 ms, 40 in 10-100 ms, 10 in 100 ms-1 s.
    const cur = h([150, 190, 200], 200);
    assert.equal(quantileBetween(prev, cur, 0.5), 0.01);
    assert.ok(Math.abs(quantileBetween(prev, cur, 0.95)! - (0.1 + 0.9 * 0.5)) < 1e-9);
    assert.ok(Math.abs(quantileBetween(prev, cur, 0.7)! - (0.01 + 0.09 * 0.5)) < 1e-9);
  });
  test('no requests: undefined; beyond the last bound: that bound', () => {
    assert.equal(quantileBetween(h([1, 1, 1], 1), h([1, 1, 1], 1), 0.95), undefined);
    assert.equal(quantileBetween(h([0, 0, 0], 0), h([0, 0, 0], 10), 0.95), 1);
  });
});

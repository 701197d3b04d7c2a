/**
 * A percentile of the requests between two samples of a cumulative histogram (`/_expvar`'s
 * `http_request_duration`), the way Prometheus' histogram_quantile reads buckets: find the bucket
 * holding the wanted rank, interpolate linearly inside it. Pure, so it is unit-tested in node.
 */
export interface Latency { buckets: { le: number; count: number }[]; count: number; sum_seconds: number }

/**
 * Seconds, or undefined when no request finished between the samples. Past the last bound the
 * answer is that bound (the histogram cannot say more).
 */
export function quantileBetween(prev: Latency, cur: Latency, q: number): number | undefined {
  const total = cur.count - prev.count;
  if (!(total > 0)) return undefined;
  const before = new Map(prev.buckets.map((b) => [b.le, b.count]));
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of cur.buckets) {
    const n = b.count - (before.get(b.le) ?? 0);
    if (n >= rank) return lower + (b.le - lower) * (n === below ? 1 : (rank - below) / (n - below));
    lower = b.le;
    below = n;
  }
  return lower;
}

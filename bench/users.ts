/**
 * Target 5, many users: 1,000 users, each with 3 of 1,000 channels (admin_channels, no password,
 * logged in through admin-created sessions), and D (default 20,000) 1 KB docs, one channel each, so
 * every user sees ~60 docs. All users pull at once (cookie auth): `_changes?since=0&limit=100`
 * pages and `_bulk_get` for each page, on up to 200 connections. Prints docs/s over the whole
 * run and per-request latency percentiles. pouchdb-server has no users or channels: no peer.
 *
 *   npm run bench -- users           BENCH_USERS=200 npm run bench -- users
 */
import { runIfMain } from './main.ts';
import { replayPush } from './push.ts';
import { client, fmt, getJson, machine, percentile, postJson, replicatedDoc, startSyncgate, timed } from './servers.ts';

const CHANNELS = 1_000;
const PER_USER = 3;

export async function run(): Promise<void> {
  const users = Number(process.env.BENCH_USERS ?? 1_000);
  const n = Number(process.env.BENCH_USER_DOCS ?? 20_000);
  console.log(`many users: ${fmt(users)} users x ${PER_USER} of ${fmt(CHANNELS)} channels, ${fmt(n)} docs of ~1 KB; ${machine()}`);
  const server = await startSyncgate({ allow_empty_password: true, users: { GUEST: { disabled: true } } });
  const admin = client(server.adminUrl!, 8);
  const pub = client(server.url, 200);
  try {
    const channelOf = (i: number) => `ch-${i % CHANNELS}`;
    await replayPush(server.adminUrl!, Array.from({ length: n }, (_, i) => replicatedDoc(i, { channel: channelOf(i) })));
    const cookies: string[] = [];
    const expected: number[] = [];
    for (let u = 0; u < users; u++) {
      const chs = Array.from({ length: PER_USER }, (_, k) => (u * PER_USER + k) % CHANNELS);
      const res = await admin.pool.request({ method: 'PUT', path: `${admin.path}/_user/u${u}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ admin_channels: chs.map(channelOf) }) });
      await res.body.text();
      if (res.statusCode >= 300) throw new Error(`PUT _user/u${u}: ${res.statusCode}`);
      const s = await postJson(admin.pool, `${admin.path}/_session`, { name: `u${u}` });
      cookies.push(`${s.cookie_name}=${s.session_id}`);
      expected.push(chs.reduce((sum, c) => sum + Math.floor(n / CHANNELS) + (c < n % CHANNELS ? 1 : 0), 0));
    }
    const latencies: number[] = [];
    const time = async <T>(fn: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try { return await fn(); } finally { latencies.push(performance.now() - t0); }
    };
    const pullAs = async (u: number): Promise<number> => {
      const headers = { cookie: cookies[u]! };
      let since: unknown = 0;
      let got = 0;
      for (;;) {
        const page = await time(() => getJson(pub.pool, `${pub.path}/_changes?style=all_docs&since=${encodeURIComponent(String(since))}&limit=100`, headers));
        since = page.last_seq;
        const docs = page.results.filter((r: any) => !r.id.startsWith('_user/')).map((r: any) => ({ id: r.id, rev: r.changes[0].rev }));
        if (docs.length) {
          const res = await time(() => postJson(pub.pool, `${pub.path}/_bulk_get?revs=true&attachments=true`, { docs }, headers));
          for (const r of res.results) if (r.docs[0]?.ok) got++;
        }
        if (page.results.length < 100) return got;
      }
    };
    const [secs, counts] = await timed(() => Promise.all(Array.from({ length: users }, (_, u) => pullAs(u))));
    const total = counts.reduce((a, b) => a + b, 0);
    const wrong = counts.filter((c, u) => c !== expected[u]).length;
    if (wrong) throw new Error(`${wrong} users got the wrong number of docs`);
    const p = (q: number) => percentile(latencies, q).toFixed(1);
    console.log(`${fmt(users)} users pulling at once: ${fmt(total)} docs in ${secs.toFixed(2)} s = ${fmt(total / secs)} docs/s; ${fmt(latencies.length)} requests, p50 ${p(50)} ms, p99 ${p(99)} ms per request (no peer: pouchdb-server has no users or channels)`);
  } finally {
    await admin.pool.close();
    await pub.pool.close();
    await server.stop();
  }
}

runIfMain(import.meta.url, run);

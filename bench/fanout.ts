/**
 * Target 4, fan-out: L (default 10,000) live listeners on Syncgate, longpoll, continuous and
 * websocket in turn, each following one of 100 channels (`filter=sync_gateway/bychannel`), held by
 * 4 client processes. Then K writes, each to a document in all 100 channels: the time from the
 * write's request to each listener seeing it, p50/p99/max over every (write, listener). Resident
 * memory of the server is read with every listener connected and idle, beside the same server
 * before any listener (bytes per connection = the difference / L).
 *
 * The floor: the same L listeners and client processes on a bare node:http + ws server that only
 * holds them (fanout-floor-child.ts); Syncgate's p99 is printed as a ratio to it.
 *
 * The peer, for scale (it has no channels, and no websocket feed): both servers with 200 longpoll
 * listeners on the whole database.
 *
 *   npm run bench -- fanout        BENCH_FANOUT=2000 npm run bench -- fanout
 *   BENCH_FANOUT_PEER=0 BENCH_FANOUT_KINDS=websocket npm run bench -- fanout   # one kind, no peer run
 *   BENCH_FANOUT_USERS=1 npm run bench -- fanout     # one user per listener (sessions), not all GUEST
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runIfMain } from './main.ts';
import { type BenchServer, client, cpuMs, fmt, getJson, machine, percentile, rssBytes, startFloor, startPeer, startSyncgate } from './servers.ts';

const CHANNELS = 100;
/** Every listener here is GUEST from one address: lift the per-user cap on open feeds (default 100). */
const UNLIMITED_FEEDS = { top: { limits: { max_changes_feeds_per_user: 0 } } };
/** Writes per run; each waits until every listener saw it (or 30 s). */
const WRITES = 5;
const PEER_WRITES = 2;
const BIG_WRITES = 3;
const KINDS = ['longpoll', 'continuous', 'websocket'];
const channelList = Array.from({ length: CHANNELS }, (_, i) => `fan-${i}`);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FanoutResult { latencies: number[]; missing: number; idleRss: number; baseRss: number; cpuPerWrite: number; lost: Record<string, number> }

async function openFeeds(server: BenchServer): Promise<number> {
  if (!server.metricsUrl) return NaN;
  const text = await (await fetch(`${server.metricsUrl}/_metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^syncgate_changes_feeds_open\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/**
 * One user per listener (`BENCH_FANOUT_USERS=1`), as real devices are: user u<i> may read channel
 * fan-(i % 100) only, and logs in with a session made on the admin port (users have no password,
 * so no bcrypt). Returns each listener's session id.
 */
async function makeUsers(server: BenchServer, listeners: number): Promise<string[]> {
  const { pool, path } = client(server.adminUrl!, 8);
  try {
    const sessions: string[] = new Array(listeners);
    const one = async (i: number) => {
      const put = await pool.request({ method: 'PUT', path: `${path}/_user/u${i}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ admin_channels: [channelList[i % CHANNELS]] }) });
      await put.body.text();
      if (put.statusCode >= 300) throw new Error(`PUT _user/u${i}: ${put.statusCode}`);
      const res = await pool.request({ method: 'POST', path: `${path}/_session`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `u${i}`, ttl: 86_400 }) });
      const body = JSON.parse(await res.body.text()) as { session_id: string };
      sessions[i] = body.session_id;
    };
    for (let i = 0; i < listeners; i += 64) await Promise.all(Array.from({ length: Math.min(64, listeners - i) }, (_, k) => one(i + k)));
    return sessions;
  } finally {
    await pool.close();
  }
}

async function fanout(server: BenchServer, listeners: number, procs: number, kinds: string[], filter: boolean, writes = WRITES, users = false): Promise<FanoutResult> {
  // With one user per listener GUEST is disabled: writes and the start position go through the admin port.
  const { pool, path } = client(users ? server.adminUrl! : server.url);
  const sessions = users ? await makeUsers(server, listeners) : undefined;
  const put = async (id: string) => {
    const res = await pool.request({ method: 'PUT', path: `${path}/${id}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: channelList, text: 'x'.repeat(800) }) });
    await res.body.text();
    if (res.statusCode !== 201) throw new Error(`PUT ${id}: ${res.statusCode}`);
  };
  const children: ChildProcess[] = [];
  try {
    await put('warm-up');
    await sleep(500);
    const baseRss = rssBytes(server.pid);
    const since = (await getJson(pool, `${path}/`)).update_seq;
    const per = Math.ceil(listeners / procs);
    const opened: Promise<unknown>[] = [];
    for (let p = 0; p < procs; p++) {
      const count = Math.min(per, listeners - p * per);
      const spec = { url: server.url, since, from: p * per, count, channels: CHANNELS, kinds, filter, sessions: sessions?.slice(p * per, p * per + count) };
      const child = fork(fileURLToPath(new URL('./fanout-client.ts', import.meta.url)), [JSON.stringify(spec)], { execArgv: ['--import', 'tsx'] });
      children.push(child);
      opened.push(new Promise((r) => child.once('message', r)));
    }
    await Promise.all(opened);
    // Syncgate counts its waiting feeds; the peer does not, so it gets a fixed pause instead.
    const deadline = Date.now() + 60_000;
    if (server.metricsUrl) while ((await openFeeds(server)) < listeners && Date.now() < deadline) await sleep(250);
    await sleep(2000);
    const idleRss = rssBytes(server.pid);
    const latencies: number[] = [];
    let missing = 0;
    let cpu = 0;
    let lost: Record<string, number> = {};
    for (let k = 0; k < writes; k++) {
      const id = `write-${k}`;
      // Every longpoll re-armed after the previous write (10,000 re-requests take the server a while):
      // otherwise the time a poll spent queued behind the others would be counted as this write's.
      if (server.metricsUrl && k > 0) {
        for (const stop = Date.now() + 30_000; (await openFeeds(server)) < listeners && Date.now() < stop;) await sleep(100);
      }
      const cpu0 = cpuMs(server.pid);
      const t0 = now();
      await put(id);
      let times: number[] = [];
      for (const stop = Date.now() + 30_000; Date.now() < stop;) {
        await sleep(250);
        const reports = await Promise.all(children.map((c) => new Promise<{ times: number[]; lost: Record<string, number> }>((r) => {
          c.once('message', (m: any) => r(m));
          c.send({ report: id });
        })));
        times = reports.flatMap((m) => m.times);
        lost = {};
        for (const m of reports) for (const [why, n] of Object.entries(m.lost)) lost[why] = (lost[why] ?? 0) + n;
        if (times.length >= listeners) break;
      }
      cpu += cpuMs(server.pid) - cpu0; // includes the longpolls re-arming, and the report polls' 250 ms
      missing += listeners - times.length;
      for (const t of times) latencies.push(t - t0);
      await sleep(300); // longpoll listeners re-arm (Syncgate: checked above; the peer has no count)
    }
    return { latencies, missing, idleRss, baseRss, cpuPerWrite: cpu / writes, lost };
  } finally {
    for (const c of children) c.kill();
    await pool.close();
  }
}

function describe(label: string, r: FanoutResult, listeners: number): { p99: number } {
  const p = (q: number) => percentile(r.latencies, q);
  const perConn = (r.idleRss - r.baseRss) / listeners;
  console.log(`${label.padEnd(44)} p50 ${p(50).toFixed(0).padStart(5)} ms  p99 ${p(99).toFixed(0).padStart(5)} ms  max ${Math.max(...r.latencies).toFixed(0).padStart(5)} ms  missed ${r.missing}`);
  if (Object.keys(r.lost).length) console.log(`${''.padEnd(44)} feeds lost: ${JSON.stringify(r.lost)}`);
  console.log(`${''.padEnd(44)} server CPU per write ${r.cpuPerWrite.toFixed(0)} ms (${((1000 * r.cpuPerWrite) / listeners).toFixed(0)} µs per listener, re-arming included)`);
  console.log(`${''.padEnd(44)} RSS ${fmt(r.baseRss / 2 ** 20)} MB -> ${fmt(r.idleRss / 2 ** 20)} MB idle with listeners: ${fmt(perConn)} bytes per connection`);
  return { p99: p(99) };
}

async function withServer<T>(start: () => Promise<BenchServer>, fn: (s: BenchServer) => Promise<T>): Promise<T> {
  const server = await start();
  try { return await fn(server); } finally { await server.stop(); }
}

export async function run(): Promise<void> {
  const listeners = Number(process.env.BENCH_FANOUT ?? 10_000);
  const small = 200;
  const kinds = (process.env.BENCH_FANOUT_KINDS ?? KINDS.join(',')).split(',');
  console.log(`fan-out: ${WRITES} writes (peer ${PEER_WRITES}, ${fmt(listeners)} listeners ${BIG_WRITES}), each to a doc in all of ${CHANNELS} channels; ${machine()}`);
  if (process.env.BENCH_FANOUT_PEER !== '0') {
    const oursSmall = await withServer(() => startSyncgate({}, UNLIMITED_FEEDS), (s) => fanout(s, small, 1, ['longpoll'], true));
    const peerSmall = await withServer(startPeer, (s) => fanout(s, small, 1, ['longpoll'], false, PEER_WRITES));
    const a = describe(`Syncgate, ${small} longpoll (by channel)`, oursSmall, small);
    const b = describe(`peer, ${small} longpoll (whole db)`, peerSmall, small);
    console.log(`  p99 ratio Syncgate/peer: ${(a.p99 / b.p99).toFixed(2)} (lower is better)`);
  }
  const users = process.env.BENCH_FANOUT_USERS === '1';
  const dbConfig = users ? { users: { GUEST: { disabled: true } }, allow_empty_password: true } : {};
  const big = await withServer(() => startSyncgate(dbConfig, UNLIMITED_FEEDS), (s) => fanout(s, listeners, 4, kinds, true, BIG_WRITES, users));
  const c = describe(`Syncgate, ${fmt(listeners)} ${kinds.join('/')}${users ? ', one user each' : ''}`, big, listeners);
  // The same listeners and client processes on a bare node:http + ws server that only holds them.
  const floor = await withServer(startFloor, (s) => fanout(s, listeners, 4, kinds, false, BIG_WRITES));
  const f = describe(`floor (bare node:http + ws), ${fmt(listeners)}`, floor, listeners);
  console.log(`  p99 ratio Syncgate/floor: ${(c.p99 / f.p99).toFixed(2)} (lower is better; 1 = all of it is the machine, Node's HTTP stack and the clients)`);
  console.log(`  target p99 < 250 ms: ${c.p99 < 250 && big.missing === 0 ? 'met' : 'NOT met'};  RSS < 1 GB: ${big.idleRss < 2 ** 30 ? 'met' : 'NOT met'}`);
}

runIfMain(import.meta.url, run);

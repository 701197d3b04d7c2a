/**
 * A config change under load: L (default 1,000) longpoll feed clients wait on database `db` of a
 * persistent-mode Syncgate (3.x start-up file, SQLite); then `PUT /db/_config/sync` changes its sync
 * function, which reloads the database (a new Database swapped in; the old one's feeds end). Printed
 * per round, from the moment the PUT is sent:
 *  - the PUT's own answer (the new database is online when it returns);
 *  - until the new database (its new `instance_start_time`) answers a document read, a client
 *    polling all along (its 503s "DB is Starting" counted);
 *  - until every feed has ended, and until every feed client is back waiting on the new database
 *    (the server's open-feed gauge is back to L, every client having re-requested; a client that
 *    gets 503 "DB is Starting" tries again 50 ms later).
 * Beside it, in the same run, the floor of that last figure: one write waking all L feeds, which end
 * and come back the same way, with no reload.
 *
 *   npm run bench -- config        BENCH_CONFIG_FEEDS=300 BENCH_ROUNDS=2 npm run bench -- config
 */
import http from 'node:http';
import { runIfMain } from './main.ts';
import { type BenchServer, fmt, machine, median, startSyncgatePersistent } from './servers.ts';

const FEEDS = Number(process.env.BENCH_CONFIG_FEEDS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function request(agent: http.Agent, url: string, method = 'GET', body?: string, type = 'application/json'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body !== undefined ? { 'content-type': type } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function openFeeds(server: BenchServer): Promise<number> {
  const text = await (await fetch(`${server.metricsUrl}/_metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^syncgate_changes_feeds_open\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** L clients, each a longpoll loop: re-requests at once after an answer, 50 ms after a 503. */
class Feeds {
  ended = 0;
  lastEnd = 0;
  stopped = false;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly loops: Promise<void>[] = [];
  constructor(private readonly url: string) {}
  start(since: number): void {
    for (let i = 0; i < FEEDS; i++) this.loops.push(this.loop(since));
  }
  private async loop(since: number): Promise<void> {
    while (!this.stopped) {
      try {
        const r = await request(this.agent, `${this.url}/_changes?feed=longpoll&since=${since}&timeout=300000`);
        if (r.status === 200) {
          since = JSON.parse(r.text).last_seq;
          this.ended++;
          this.lastEnd = now();
        } else await sleep(50);
      } catch {
        if (!this.stopped) await sleep(50);
      }
    }
  }
  async stop(): Promise<void> {
    this.stopped = true;
    this.agent.destroy();
    await Promise.allSettled(this.loops);
  }
}

async function until(what: string, check: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = now() + ms;
  while (!(await check())) {
    if (now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
}

export async function run(): Promise<void> {
  console.log(machine());
  const server = await startSyncgatePersistent({ limits: { max_changes_feeds_per_user: 0 }, logging: { console: { log_level: 'warn' } } });
  const agent = new http.Agent({ keepAlive: true });
  try {
    const admin = server.adminUrl!;
    let r = await request(agent, `${admin}/`, 'PUT', JSON.stringify({ guest: { disabled: false, admin_channels: ['*'] } }));
    if (r.status !== 201) throw new Error(`PUT /db/: ${r.status} ${r.text}`);
    await request(agent, `${server.url}/probe`, 'PUT', '{}');
    const seq = JSON.parse((await request(agent, `${admin}/`)).text).update_seq as number;
    const feeds = new Feeds(server.url);
    feeds.start(seq);
    await until('every feed is open', async () => (await openFeeds(server)) === FEEDS);
    console.log(`${FEEDS} longpoll feeds open`);
    const reloadBack: number[] = [];
    const writeBack: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Floor: one write wakes every feed; they end and come back.
      let ended0 = feeds.ended;
      let t0 = now();
      await request(agent, `${server.url}/w-${round}`, 'PUT', '{}');
      await until('every feed woken by the write', async () => feeds.ended - ended0 >= FEEDS);
      await until('every feed back', async () => (await openFeeds(server)) === FEEDS);
      writeBack.push(now() - t0);

      ended0 = feeds.ended;
      const oldStart = JSON.parse((await request(agent, `${admin}/`)).text).instance_start_time;
      t0 = now();
      let answered = 0;
      let refused = 0;
      // Until the new database (a new instance_start_time) answers a document read.
      const probe = (async () => {
        for (;;) {
          const p = await request(agent, `${server.url}/probe`);
          if (p.status === 503) { refused++; continue; }
          const info = JSON.parse((await request(agent, `${admin}/`)).text);
          if (p.status === 200 && info.instance_start_time !== oldStart && info.state === 'Online') {
            const again = await request(agent, `${server.url}/probe`);
            if (again.status === 200) { answered = now() - t0; return; }
          }
        }
      })();
      r = await request(agent, `${admin}/_config/sync`, 'PUT', `function(doc){ channel("round-${round}"); }`, 'application/javascript');
      const putMs = now() - t0;
      if (r.status !== 200) throw new Error(`PUT _config/sync: ${r.status} ${r.text}`);
      await until('every feed ended by the reload', async () => feeds.ended - ended0 >= FEEDS);
      const allEnded = feeds.lastEnd - t0;
      await until('every feed back on the new database', async () => (await openFeeds(server)) === FEEDS);
      const back = now() - t0;
      await probe;
      reloadBack.push(back);
      console.log(`round ${round}: PUT answered ${fmt(putMs)} ms; the new database answers ${fmt(answered)} ms (${refused} reads got 503 meanwhile); all ${FEEDS} feeds ended ${fmt(allEnded)} ms; all reconnected ${fmt(back)} ms (one write waking all, the floor: ${fmt(writeBack[round - 1])} ms)`);
    }
    console.log(`median: all ${FEEDS} feeds reconnected after a config change ${fmt(median(reloadBack))} ms; after one write ${fmt(median(writeBack))} ms (${(median(reloadBack) / median(writeBack)).toFixed(2)}x)`);
    await feeds.stop();
  } finally {
    agent.destroy();
    await server.stop();
  }
}

runIfMain(import.meta.url, run);

/**
 * Webhooks (issue 17): push throughput with one document_changed webhook against the same push
 * with none, in the same run, and the events per second each delivery mode gets to a receiver
 * that answers at once (204). The push is push.ts's replay (`_revs_diff` + `_bulk_docs`
 * new_edits=false, 100 a batch) of N (default 10,000) new 1 KB documents per round into one
 * Syncgate child process per mode, started once and warmed up with an unmeasured push; each
 * receiver is a child process of its own (webhook-receiver-child.ts: a lean TCP one by default,
 * BENCH_WEBHOOK_RECEIVER=http for a node:http server).
 *
 *   modes: none | best_effort (Sync Gateway's queue) | at_least_once | at_least_once, batch_size 100
 *   ratio: each round pushes into every mode's gateway back to back (the order alternates between
 *     rounds), each push waiting for its events to be delivered before the next starts; a mode's
 *     ratio is the median over rounds of its push docs/s / that round's push without handlers.
 *     Pushes seconds apart share the machine's conditions; a single ratio still swings with
 *     whatever else takes the cores (these are shared VMs: steal time).
 *   events/s: documents received by the receiver / time from the push's start to the last one.
 *
 * CPU per document (Linux /proc, from the push's start to the last event): the gateway process (and
 * its main thread alone), the receiver process, and this process, which pushes. BENCH_THREADS=1
 * also prints each gateway thread's CPU seconds (the main thread's id is the pid; the delivery
 * thread is the busiest other one; the rest are V8's GC helpers).
 *
 *   npm run bench -- webhooks        BENCH_WEBHOOK_DOCS=5000 BENCH_WEBHOOK_ROUNDS=3 BENCH_WEBHOOK_MODES=best_effort npm run bench -- webhooks
 */
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runIfMain } from './main.ts';
import { replayPush } from './push.ts';
import { fmt, machine, median, replicatedDoc, startSyncgate } from './servers.ts';

type Mode = 'none' | 'best_effort' | 'at_least_once' | 'at_least_once_batch';
const ALL_MODES: Mode[] = ['none', 'best_effort', 'at_least_once', 'at_least_once_batch'];
/** BENCH_WEBHOOK_MODES=none,best_effort runs only those (`none` is always measured: it is the reference). */
const MODES: Mode[] = process.env.BENCH_WEBHOOK_MODES
  ? ALL_MODES.filter((m) => m === 'none' || process.env.BENCH_WEBHOOK_MODES!.split(',').includes(m)) : ALL_MODES;

interface Receiver { url: string; pid: number; counts(): Promise<{ count: number; lastAt: number }>; close(): Promise<void> }

/** The receiver in its own process (webhook-receiver-child.ts). */
async function startReceiver(): Promise<Receiver> {
  const execArgv = ['--import', 'tsx', '--no-warnings'];
  if (process.env.BENCH_CPU_PROF) execArgv.push('--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/receiver`);
  const child = fork(fileURLToPath(new URL('./webhook-receiver-child.ts', import.meta.url)), [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: any) => (m?.ready ? resolve(m.public) : reject(new Error(JSON.stringify(m)))));
    child.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });
  const counts = () => new Promise<{ count: number; lastAt: number }>((resolve) => {
    child.once('message', (m: any) => resolve(m));
    child.send({ count: true });
  });
  return {
    url: `http://127.0.0.1:${port}/hook`,
    pid: child.pid!,
    counts,
    close: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.send({ stop: true }); }),
  };
}

function handlerFor(mode: Mode, url: string): Record<string, unknown> | undefined {
  switch (mode) {
    case 'none': return undefined;
    case 'best_effort': return { handler: 'webhook', url };
    case 'at_least_once': return { handler: 'webhook', url, delivery: 'at_least_once' };
    case 'at_least_once_batch': return { handler: 'webhook', url, delivery: 'at_least_once', batch_size: 100 };
  }
}

interface Round {
  pushDocsPerSec: number; eventsPerSec?: number; received?: number; dropped?: number;
  /** CPU seconds (user + system) from the push's start to the last event: gateway (all its threads), receiver, this pushing process. */
  cpu: { gateway: number; gatewayMain: number; receiver: number; pusher: number };
}

/** utime + stime of a process (or with `tid`, of one of its threads), in seconds (Linux /proc; 0 elsewhere). */
function cpuSecs(pid: number, tid?: number): number {
  try {
    const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { return 0; }
}

/** One mode's gateway (and receiver), kept running for every round: each push after the first is into a warm process. */
interface Setup {
  mode: Mode;
  server: Awaited<ReturnType<typeof startSyncgate>>;
  rx?: Receiver;
  /** Events the receiver counted and the gateway dropped, up to the last push. */
  received: number;
  dropped: number;
}

async function setUp(mode: Mode): Promise<Setup> {
  const rx = mode === 'none' ? undefined : await startReceiver();
  const handler = rx && handlerFor(mode, rx.url);
  // A gateway that fails to start must not leave the receiver running (it holds the bench's stdout).
  const server = await startSyncgate(handler ? { event_handlers: { document_changed: [handler] } } : {}).catch(async (err) => { await rx?.close(); throw err; });
  return { mode, server, rx, received: 0, dropped: 0 };
}

async function tearDown(s: Setup): Promise<void> {
  await s.server.stop();
  await s.rx?.close();
}

/** Pushes `docs` into a running set-up and waits until every event is delivered (or dropped). */
async function measure(s: Setup, docs: Record<string, unknown>[]): Promise<Round> {
  const { server, rx, mode } = s;
  // The main thread's id is the process id; the rest are V8's GC helpers and libuv's pool.
  const rxPid = rx?.pid ?? 0;
  const cpu0 = { gateway: cpuSecs(server.pid), gatewayMain: cpuSecs(server.pid, server.pid), receiver: rx ? cpuSecs(rxPid) : 0, pusher: process.cpuUsage() };
  const cpu = () => ({
    gateway: cpuSecs(server.pid) - cpu0.gateway, gatewayMain: cpuSecs(server.pid, server.pid) - cpu0.gatewayMain, receiver: rx ? cpuSecs(rxPid) - cpu0.receiver : 0,
    pusher: ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cpu0.pusher)),
  });
  const tasks = () => Object.fromEntries(readdirSync(`/proc/${server.pid}/task`).map((t) => [t, cpuSecs(server.pid, Number(t))]));
  const tasks0 = process.env.BENCH_THREADS ? tasks() : {};
  const t0 = Date.now();
  const pushDocsPerSec = await replayPush(server.url, docs);
  if (!rx) return { pushDocsPerSec, cpu: cpu() };
  // Every event of this push is delivered (or dropped, best effort with a full queue) before the
  // next push anywhere starts, so no push is slowed by another mode's delivery still going on.
  const droppedSoFar = async () => ((await (await fetch(`${server.adminUrl}/_event_handlers`)).json()) as { handlers: { dropped: number }[] }).handlers[0]?.dropped ?? 0;
  const deadline = Date.now() + 120_000;
  let got: { count: number; lastAt: number };
  let dropped: number;
  for (;;) {
    got = await rx.counts();
    dropped = (await droppedSoFar()) - s.dropped;
    if (got.count - s.received + dropped >= docs.length) break;
    if (Date.now() > deadline) throw new Error(`${mode}: ${got.count - s.received} of ${docs.length} events arrived and ${dropped} were dropped`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const used = cpu();
  if (process.env.BENCH_THREADS) console.log(mode, 'CPU s per thread:', Object.entries(tasks()).map(([k, v]) => `${k}:${(v - (tasks0[k] ?? 0)).toFixed(2)}`).join(' '));
  const received = got.count - s.received;
  s.received = got.count;
  s.dropped += dropped;
  return { pushDocsPerSec, eventsPerSec: received / ((got.lastAt - t0) / 1000), received, dropped, cpu: used };
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_WEBHOOK_DOCS ?? 10_000);
  const rounds = Number(process.env.BENCH_WEBHOOK_ROUNDS ?? 7);
  const receiver = process.env.BENCH_WEBHOOK_RECEIVER === 'http' ? 'node:http' : 'lean TCP';
  console.log(`webhooks: push replay of ${fmt(n)} docs of ~1 KB (100/batch) per round into warm gateways, ${receiver} receiver answers 204 at once; ${rounds} rounds, modes alternated; ${machine()}`);
  const setups: Setup[] = [];
  try {
    for (const m of MODES) setups.push(await setUp(m));
    // One unmeasured push each: JIT warm-up, first connections, the receiver's first POSTs.
    for (const s of setups) await measure(s, Array.from({ length: 2000 }, (_, i) => replicatedDoc(i, { prefix: 'warm' })));
    const results = new Map<Mode, Round[]>(MODES.map((m) => [m, []]));
    for (let r = 0; r < rounds; r++) {
      const docs = Array.from({ length: n }, (_, i) => replicatedDoc(i, { prefix: `r${r}` }));
      for (const s of r % 2 === 0 ? setups : [...setups].reverse()) results.get(s.mode)!.push(await measure(s, docs));
    }
    report(n, results);
  } finally {
    for (const s of setups) await tearDown(s);
  }
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

function report(n: number, results: Map<Mode, Round[]>): void {
  const noneRounds = results.get('none')!;
  const none = median(noneRounds.map((x) => x.pushDocsPerSec));
  const cpuLine = (rs: Round[]) => {
    const per = (k: keyof Round['cpu']) => fmt(median(rs.map((x) => x.cpu[k] / n * 1e6)));
    return `CPU µs per doc: gateway ${per('gateway')} (main thread ${per('gatewayMain')}), receiver ${per('receiver')}, pusher ${per('pusher')}`;
  };
  console.log(`push without handlers: ${fmt(none)} docs/s (rounds ${noneRounds.map((x) => fmt(x.pushDocsPerSec)).join(', ')}); ${cpuLine(noneRounds)}`);
  for (const mode of MODES.slice(1)) {
    const rs = results.get(mode)!;
    const push = median(rs.map((x) => x.pushDocsPerSec));
    const ratios = rs.map((x, r) => x.pushDocsPerSec / noneRounds[r]!.pushDocsPerSec);
    const ratio = median(ratios);
    const events = median(rs.map((x) => x.eventsPerSec!));
    const dropped = rs.map((x) => x.dropped ?? 0);
    console.log(`${mode.padEnd(20)} push ${fmt(push)} docs/s; ${ratio.toFixed(2)} of without (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')})  target ≥0.80: ${ratio >= 0.8 ? 'met' : 'NOT met'}; `
      + `delivered ${fmt(events)} events/s (rounds ${rs.map((x) => fmt(x.eventsPerSec!)).join(', ')}); dropped ${dropped.join(', ')}; ${cpuLine(rs)}`);
  }
}

runIfMain(import.meta.url, run);

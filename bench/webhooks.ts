/**
 * Webhooks (issue 17): push throughput with one document_changed webhook against the same push
 * with none, in the same run, and the events per second each delivery mode gets to a receiver
 * that answers at once (204). The push is push.ts's replay (`_revs_diff` + `_bulk_docs`
 * new_edits=false, 100 a batch) of N (default 20,000) 1 KB documents into a Syncgate child process;
 * the receiver is a child process of its own (webhook-receiver-child.ts: a lean TCP one by
 * default, BENCH_WEBHOOK_RECEIVER=http for a node:http server).
 *
 *   modes: none | best_effort (Sync Gateway's queue) | at_least_once | at_least_once, batch_size 100
 *   ratio: each round measures every mode back to back (the order alternates between rounds); a
 *     mode's ratio is the median over rounds of its push docs/s / that round's push without handlers.
 *     A single ratio swings with whatever else shares the machine's cores during the round.
 *   events/s: documents received by the receiver / time from the push's start to the last one.
 *
 * CPU per document (Linux /proc, from the push's start to the last event): the gateway process (and
 * its main thread alone), the receiver process, and this process, which pushes. BENCH_THREADS=1
 * also prints each gateway thread's CPU seconds (the main thread's id is the pid; the delivery
 * thread is the busiest other one; the rest are V8's GC helpers).
 *
 *   npm run bench -- webhooks        BENCH_WEBHOOK_DOCS=5000 BENCH_WEBHOOK_ROUNDS=1 BENCH_WEBHOOK_MODES=best_effort npm run bench -- webhooks
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

interface Receiver { url: string; pid: number; counts(): Promise<{ count: number; lastAt: number }>; until(n: number, ms: number): Promise<{ count: number; lastAt: number }>; close(): Promise<void> }

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
    async until(n, ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const c = await counts();
        if (c.count >= n || Date.now() > deadline) return c;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
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

async function measure(mode: Mode, docs: Record<string, unknown>[]): Promise<Round> {
  const rx = await startReceiver();
  const handler = handlerFor(mode, rx.url);
  // A gateway that fails to start must not leave the receiver running (it holds the bench's stdout).
  const server = await startSyncgate(handler ? { event_handlers: { document_changed: [handler] } } : {}).catch(async (err) => { await rx.close(); throw err; });
  // The main thread's id is the process id; the rest is the delivery thread, GC helpers, libuv's pool.
  const cpu0 = { gateway: cpuSecs(server.pid), gatewayMain: cpuSecs(server.pid, server.pid), receiver: cpuSecs(rx.pid), pusher: process.cpuUsage() };
  const cpu = () => ({
    gateway: cpuSecs(server.pid) - cpu0.gateway, gatewayMain: cpuSecs(server.pid, server.pid) - cpu0.gatewayMain, receiver: cpuSecs(rx.pid) - cpu0.receiver,
    pusher: ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cpu0.pusher)),
  });
  const tasks = () => Object.fromEntries(readdirSync(`/proc/${server.pid}/task`).map((t) => [t, cpuSecs(server.pid, Number(t))]));
  const tasks0 = process.env.BENCH_THREADS ? tasks() : {};
  try {
    const t0 = Date.now();
    const pushDocsPerSec = await replayPush(server.url, docs);

    if (!handler) return { pushDocsPerSec, cpu: cpu() };
    // Best effort may drop when its queue is full: then not every document arrives; wait for what does.
    const got = await rx.until(docs.length, 120_000);
    const used = cpu();
    if (process.env.BENCH_THREADS) console.log(mode, 'CPU s per thread:', Object.entries(tasks()).map(([k, v]) => `${k}:${(v - (tasks0[k] ?? 0)).toFixed(2)}`).join(' '));
    const status = await (await fetch(`${server.adminUrl}/_event_handlers`)).json() as { handlers: { dropped: number }[] };
    const dropped = status.handlers[0]?.dropped ?? 0;
    if (got.count < docs.length && dropped === 0) throw new Error(`${mode}: ${got.count} of ${docs.length} events arrived and none was dropped`);
    return { pushDocsPerSec, eventsPerSec: got.count / ((got.lastAt - t0) / 1000), received: got.count, dropped, cpu: used };
  } finally {
    await server.stop();
    await rx.close();
  }
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_WEBHOOK_DOCS ?? 20_000);
  const rounds = Number(process.env.BENCH_WEBHOOK_ROUNDS ?? 3);
  const receiver = process.env.BENCH_WEBHOOK_RECEIVER === 'http' ? 'node:http' : 'lean TCP';
  console.log(`webhooks: push replay of ${fmt(n)} docs of ~1 KB (100/batch), ${receiver} receiver answers 204 at once; ${rounds} rounds, modes alternated; ${machine()}`);
  const docs = Array.from({ length: n }, (_, i) => replicatedDoc(i));
  const results = new Map<Mode, Round[]>(MODES.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) results.get(mode)!.push(await measure(mode, docs));
  }
  const none = median(results.get('none')!.map((x) => x.pushDocsPerSec));
  const cpuLine = (rs: Round[]) => {
    const per = (k: keyof Round['cpu']) => fmt(median(rs.map((x) => x.cpu[k] / n * 1e6)));
    return `CPU µs per doc: gateway ${per('gateway')} (main thread ${per('gatewayMain')}), receiver ${per('receiver')}, pusher ${per('pusher')}`;
  };
  console.log(`push without handlers: ${fmt(none)} docs/s (rounds ${results.get('none')!.map((x) => fmt(x.pushDocsPerSec)).join(', ')}); ${cpuLine(results.get('none')!)}`);
  for (const mode of MODES.slice(1)) {
    const rs = results.get(mode)!;
    const push = median(rs.map((x) => x.pushDocsPerSec));
    const ratios = rs.map((x, r) => x.pushDocsPerSec / results.get('none')![r]!.pushDocsPerSec);
    const ratio = median(ratios);
    const events = median(rs.map((x) => x.eventsPerSec!));
    const dropped = rs.map((x) => x.dropped ?? 0);
    console.log(`${mode.padEnd(20)} push ${fmt(push)} docs/s; ${ratio.toFixed(2)} of without (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')})  target ≥0.80: ${ratio >= 0.8 ? 'met' : 'NOT met'}; `
      + `delivered ${fmt(events)} events/s (rounds ${rs.map((x) => fmt(x.eventsPerSec!)).join(', ')}); dropped ${dropped.join(', ')}; ${cpuLine(rs)}`);
  }
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

runIfMain(import.meta.url, run);

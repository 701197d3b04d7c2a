/**
 * Summarises `.cpuprofile` files written with BENCH_CPU_PROF=<dir> (node --cpu-prof): the top
 * functions by self time, and the share of time spent under a few named frames (inclusive).
 *
 *   BENCH_CPU_PROF=/tmp/prof npm run bench -- push && node --import tsx bench/profile.ts /tmp/prof/syncgate/CPU*.0.001.cpuprofile
 *   LAST=10 TOP=40 node --import tsx bench/profile.ts FILE     # only the last 10 s, 40 lines
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

function summarise(file: string, top: number): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // LAST=<s> keeps only the last s seconds of samples (e.g. the measured phase after a long setup).
  const times: number[] = [];
  let clock = 0;
  for (const d of p.timeDeltas) times.push((clock += d));
  const from = process.env.LAST ? clock - Number(process.env.LAST) * 1e6 : -Infinity;
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => { if (times[i]! >= from) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)); });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const label = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const selfBy = new Map<string, number>();
  const inclBy = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    selfBy.set(label(n), (selfBy.get(label(n)) ?? 0) + t);
    // Inclusive: count once per distinct label on the stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclBy.set(l, (inclBy.get(l) ?? 0) + t);
    }
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
  console.log(`\n${basename(file)}: ${(total / 1e6).toFixed(2)} s sampled`);
  console.log('  self:');
  for (const [l, t] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${l}`);
  console.log('  inclusive (our code and libraries, not node internals):');
  const ours = [...inclBy].filter(([l]) => /\.ts:|better-sqlite3|undici|express|pouchdb|level/.test(l));
  for (const [l, t] of ours.sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${l}`);
}

const files = process.argv.slice(2);
for (const f of files) summarise(f, Number(process.env.TOP ?? 25));

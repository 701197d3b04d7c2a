/**
 * `npm run bench`: every benchmark in sequence, each printing its figures beside a peer measured in
 * the same run (see BENCHMARKS.md). Name some to run only those: `npm run bench -- auth feed`.
 *
 *   npm run bench                          # pouchdb (BENCH_DOCS, 10,000), auth, feed (BENCH_FEED_DOCS, 1,000,000)
 *   BENCH_DOCS=2000 BENCH_FEED_DOCS=200000 npm run bench
 */
import { run as pouchdb } from './pouchdb.ts';
import { run as auth } from './auth.ts';
import { run as feed } from './channel-feed.ts';

const BENCHES: Record<string, () => Promise<void>> = { pouchdb, auth, feed };

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const name of wanted) if (!BENCHES[name]) throw new Error(`unknown benchmark "${name}" (have: ${Object.keys(BENCHES).join(', ')})`);
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (wanted.length && !wanted.includes(name)) continue;
    console.log(`\n== ${name} ==`);
    await bench();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

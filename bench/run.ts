/**
 * `npm run bench`: every benchmark in sequence, each printing its figures beside a peer measured in
 * the same run (see BENCHMARKS.md). Name some to run only those: `npm run bench -- auth feed`.
 *
 *   npm run bench                          # every one below, in order
 *   npm run bench -- push pull             # only these
 *   BENCH_DOCS=2000 BENCH_FEED_DOCS=200000 npm run bench   # smaller (each file lists its variables)
 */
import { run as push } from './push.ts';
import { run as pull } from './pull.ts';
import { run as pouchdb } from './pouchdb.ts';
import { run as fanout } from './fanout.ts';
import { run as users } from './users.ts';
import { run as growth } from './growth.ts';
import { run as auth } from './auth.ts';
import { run as feed } from './channel-feed.ts';
import { run as postgres } from './postgres.ts';
import { run as blip } from './blip.ts';
import { run as attachments } from './attachments.ts';
import { run as config } from './config-reload.ts';
import { run as resync } from './resync.ts';
import { run as delta } from './delta.ts';
import { run as webhooks } from './webhooks.ts';
import { run as collections } from './blip-collections.ts';
import { run as isgr } from './isgr.ts';

const BENCHES: Record<string, () => Promise<void>> = { push, pull, pouchdb, fanout, users, growth, auth, feed, postgres, blip, attachments, config, resync, delta, webhooks, collections, isgr };

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

/**
 * Issue 20: does PouchDB download an attachment it already has? A writer PouchDB pushes N (default
 * 1,000) documents with one 4 KB attachment each; a reader PouchDB pulls them (the first pull, which
 * must fetch every attachment); the writer then changes every body, keeping the attachment, and
 * pushes; the reader pulls again (the second pull). PouchDB's replicator fetches an attachment of a
 * pulled revision with `GET /{db}/{doc}/{att}` unless its local winner holds one with the same
 * `digest` (pouchdb-replication getDocAttachmentsFromTargetOrSource), so the second pull needs none
 * when the server's digests are the `md5-` ones PouchDB computes. Printed for each pull: attachment
 * GETs the client sent (and, for Syncgate, the ones its metrics say it answered) and wall time,
 * against the peer (pouchdb-server, md5 digests) in the same run.
 *
 *   npm run bench -- attachments       BENCH_ATT_DOCS=200 npm run bench -- attachments
 */
import { localDb, PouchDB } from '../test/helpers/pouchdb.ts';
import { runIfMain } from './main.ts';
import { alternate, type BenchServer, docId, fmt, machine, median, startPeer, startSyncgate, timed } from './servers.ts';

const ATT_BYTES = 4096;

interface Pull { secs: number; clientGets: number; serverGets?: number; docs: number }
interface Run { first: Pull; second: Pull }

/** A remote PouchDB whose requests go through a counting fetch (the real one underneath). */
function countingRemote(url: string, counter: { attGets: number }): any {
  const dbPath = new URL(url).pathname.replace(/\/$/, '');
  return new PouchDB(url, {
    skip_setup: true,
    fetch: (u: string, opts: any) => {
      const path = new URL(u).pathname;
      // /{db}/{doc}/{att}: one segment more than a document, and not a special endpoint.
      const rest = path.startsWith(dbPath + '/') ? path.slice(dbPath.length + 1) : '';
      if ((opts?.method ?? 'GET') === 'GET' && rest.split('/').length >= 2 && !rest.startsWith('_')) counter.attGets++;
      return (PouchDB as any).fetch(u, opts);
    },
  });
}

/** Syncgate's own count of answered attachment GETs (its Prometheus counter). */
async function serverAttachmentGets(server: BenchServer): Promise<number | undefined> {
  if (!server.metricsUrl) return undefined;
  const text = await (await fetch(`${server.metricsUrl}/_metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('syncgate_http_requests_total{') && line.includes('route="/{db}/{doc}/{att+}"') && line.includes('method="GET"')) {
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return n;
}

function attachmentOf(i: number): Buffer {
  const b = Buffer.alloc(ATT_BYTES);
  for (let k = 0; k < ATT_BYTES; k++) b[k] = (i * 31 + k * 7) & 0xff;
  return b;
}

async function pullOnce(reader: any, server: BenchServer): Promise<Pull> {
  const counter = { attGets: 0 };
  const before = await serverAttachmentGets(server);
  const [secs, res] = await timed<any>(() => reader.replicate.from(countingRemote(server.url, counter), { batch_size: 100 }));
  const after = await serverAttachmentGets(server);
  return { secs, clientGets: counter.attGets, serverGets: before === undefined ? undefined : after! - before, docs: res.docs_written };
}

async function pullTwice(start: () => Promise<BenchServer>, n: number): Promise<Run> {
  const server = await start();
  const writer = localDb();
  const reader = localDb();
  try {
    for (let i = 0; i < n; i += 250) {
      await writer.bulkDocs(Array.from({ length: Math.min(250, n - i) }, (_, k) => ({
        _id: docId(i + k), v: 1, _attachments: { 'blob.bin': { content_type: 'application/octet-stream', data: attachmentOf(i + k) } },
      })));
    }
    await writer.replicate.to(countingRemote(server.url, { attGets: 0 }), { batch_size: 100 });
    const first = await pullOnce(reader, server);
    const all = await writer.allDocs({ include_docs: true });
    await writer.bulkDocs(all.rows.map((r: any) => ({ ...r.doc, v: 2 })));
    await writer.replicate.to(countingRemote(server.url, { attGets: 0 }), { batch_size: 100 });
    const second = await pullOnce(reader, server);
    if (first.docs !== n || second.docs !== n) throw new Error(`${server.name}: pulls wrote ${first.docs} and ${second.docs} of ${n}`);
    const check = await reader.getAttachment(docId(n - 1), 'blob.bin');
    if (!Buffer.from(check).equals(attachmentOf(n - 1))) throw new Error(`${server.name}: wrong attachment bytes after the pulls`);
    return { first, second };
  } finally {
    await Promise.all([writer.destroy(), reader.destroy()]);
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_ATT_DOCS ?? 1_000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  console.log(`PouchDB pull of documents with attachments: ${fmt(n)} docs with one ${ATT_BYTES / 1024} KB attachment each; ${machine()}`);
  const { ours, theirs } = await alternate(rounds, (side) => pullTwice(side === 'syncgate' ? () => startSyncgate() : startPeer, n));
  for (const which of ['first', 'second'] as const) {
    const o = ours.map((r) => r[which]);
    const t = theirs.map((r) => r[which]);
    const gets = (xs: Pull[]) => xs.map((x) => x.clientGets).join('/');
    console.log(`  ${which} pull: Syncgate ${median(o.map((x) => x.secs)).toFixed(2)} s, ${gets(o)} attachment GETs (server counted ${o.map((x) => x.serverGets).join('/')}); ` +
      `peer ${median(t.map((x) => x.secs)).toFixed(2)} s, ${gets(t)} attachment GETs; ratio ${(median(t.map((x) => x.secs)) / median(o.map((x) => x.secs))).toFixed(2)}x`);
  }
}

runIfMain(import.meta.url, run);

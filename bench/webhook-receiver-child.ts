/**
 * Child process of the webhook benchmark: a receiver that answers every POST with 204 at once and
 * counts the documents it got (an array counts its elements). Kept lean so that it is not what the
 * bench measures: a plain node:http server that drains each body and keeps and parses only arrays. In its own process so that it does
 * not take event-loop time from the client pushing documents. Reports its port over IPC; answers
 * `{count: true}` with `{count, lastAt}` (lastAt: Date.now() of the last POST); exits on "stop".
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

let count = 0;
let lastAt = 0;
const server = http.createServer((req, res) => {
  // One document per POST unless the body is an array (at-least-once batch_size): only those are kept and parsed.
  let array: boolean | undefined;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => { array ??= c[0] === 0x5b; /* [ */ if (array) chunks.push(c); });
  req.on('end', () => {
    count += array ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[]).length : 1;
    lastAt = Date.now();
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send!({ ready: true, public: (server.address() as AddressInfo).port }));
process.on('message', (m: any) => {
  if (m?.count) process.send!({ count, lastAt });
  if (m?.stop) { server.closeAllConnections(); server.close(() => process.exit(0)); }
});

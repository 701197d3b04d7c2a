/**
 * Child process of the webhook benchmark: a receiver that answers every POST with 204 at once and
 * counts the documents it got (an array counts its elements). It shares the machine's two cores
 * with the gateway and the pushing client, so whatever it spends per POST is taken from the push
 * being measured: a receiver elsewhere costs the gateway nothing. Two kinds, by
 * BENCH_WEBHOOK_RECEIVER:
 *
 *   raw  (default) a TCP server that frames HTTP/1.1 requests by Content-Length (webhooks always
 *        send one) and answers all the requests a read completed with one write: a few µs per POST.
 *   http a plain node:http server that drains each body: 20-60 µs per POST on these machines,
 *        about as much as the handler's whole cost in the gateway.
 *
 * Both count a POST only once its whole body has arrived, and parse only arrays (at-least-once
 * batch_size). In its own process so that it does not take event-loop time from the pushing client.
 * Reports its port over IPC; answers `{count: true}` with `{count, lastAt}` (lastAt: Date.now() of
 * the last POST); exits on "stop".
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

let count = 0;
let lastAt = 0;

function received(body: Buffer | undefined): void {
  count += body ? (JSON.parse(body.toString('utf8')) as unknown[]).length : 1;
  lastAt = Date.now();
}

function httpServer(): net.Server {
  const server = http.createServer((req, res) => {
    let array: boolean | undefined;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { array ??= c[0] === 0x5b; /* [ */ if (array) chunks.push(c); });
    req.on('end', () => { received(array ? Buffer.concat(chunks) : undefined); res.writeHead(204).end(); });
  });
  server.keepAliveTimeout = 60_000;
  return server;
}

const ANSWER = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n', 'latin1');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

/** One connection's parser: a head, then Content-Length bytes of body, repeated (pipelined requests). */
function rawConnection(socket: net.Socket): void {
  let buf: Buffer = Buffer.alloc(0);
  let bodyLeft = -1; // -1: reading a head
  let array: boolean | undefined;
  let chunks: Buffer[] = [];
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let pos = 0;
    let answers = 0;
    for (;;) {
      if (bodyLeft < 0) {
        const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
        if (end < 0) break;
        const m = CONTENT_LENGTH.exec(buf.toString('latin1', pos, end));
        if (!m) { socket.destroy(); return; } // not a webhook POST: this bench's client always sends a length
        bodyLeft = Number(m[1]);
        pos = end + 4;
        array = undefined;
        chunks = [];
      }
      const take = Math.min(bodyLeft, buf.length - pos);
      if (take > 0) {
        array ??= buf[pos] === 0x5b; // [
        if (array) chunks.push(buf.subarray(pos, pos + take));
      }
      pos += take;
      bodyLeft -= take;
      if (bodyLeft > 0) break;
      received(array ? Buffer.concat(chunks) : undefined);
      answers++;
      bodyLeft = -1;
    }
    // A kept body chunk may point into `buf`: copy what stays so the next read does not overwrite it.
    buf = Buffer.from(buf.subarray(pos));
    if (array && bodyLeft > 0) chunks = chunks.map((c) => Buffer.from(c));
    if (answers) socket.write(answers === 1 ? ANSWER : Buffer.concat(Array(answers).fill(ANSWER)));
  });
  socket.on('error', () => socket.destroy());
}

const server = process.env.BENCH_WEBHOOK_RECEIVER === 'http' ? httpServer() : net.createServer(rawConnection);
const sockets = new Set<net.Socket>();
server.on('connection', (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
server.listen(0, '127.0.0.1', () => process.send!({ ready: true, public: (server.address() as AddressInfo).port }));
process.on('message', (m: any) => {
  if (m?.count) process.send!({ count, lastAt });
  if (m?.stop) { for (const s of sockets) s.destroy(); server.close(() => process.exit(0)); }
});

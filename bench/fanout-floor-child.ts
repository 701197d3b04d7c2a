/**
 * Child process of the fan-out benchmark: the floor. A bare Node server (node:http and ws, as
 * Syncgate uses) that speaks just enough of the API for bench/fanout-client.ts: `GET /db/`,
 * `PUT /db/<id>` and `_changes` as longpoll, continuous and websocket. It holds every listener and,
 * on each write, sends every one of them the same pre-rendered entry: no storage, no principals,
 * no channel routing, no shared reads. What it takes to reach 10,000 listeners is what this
 * machine, Node's HTTP stack and the client processes cost, against which Syncgate's figure is a
 * ratio. Reports its ports over IPC like the other server children; exits on "stop".
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

interface Entry { seq: number; line: string }
const log: Entry[] = [];
const longpolls = new Map<http.ServerResponse, number>();
const continuous = new Set<http.ServerResponse>();
const sockets = new Set<WebSocket>();

const entriesAfter = (since: number) => log.filter((e) => e.seq > since);
const longpollBody = (entries: Entry[]) => `{"results":[\r\n${entries.map((e) => e.line + '\n').join(',')}],\n"last_seq":${entries.at(-1)!.seq}}\n`;

function answer(res: http.ServerResponse, body: string | Buffer): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'private, max-age=0, no-cache, no-store');
  res.end(body);
}

function write(id: string): Entry {
  const seq = log.length + 1;
  const entry = { seq, line: `{"seq":${seq},"id":${JSON.stringify(id)},"changes":[{"rev":"1-floor"}]}` };
  log.push(entry);
  // One buffer per feed style, shared by every listener of that style (as Syncgate shares a page).
  const poll = Buffer.from(longpollBody([entry]));
  const line = Buffer.from(entry.line + '\n');
  const batch = Buffer.from(`[${entry.line}]`);
  for (const res of longpolls.keys()) answer(res, poll);
  longpolls.clear();
  for (const res of continuous) res.write(line);
  for (const ws of sockets) ws.send(batch, { binary: false });
  return entry;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'GET' && url.pathname === '/db/') return answer(res, JSON.stringify({ update_seq: log.length }));
  const put = /^\/db\/([^_/][^/]*)$/.exec(url.pathname);
  if (req.method === 'PUT' && put) {
    req.resume();
    req.on('end', () => {
      const { seq } = write(decodeURIComponent(put[1]!));
      res.statusCode = 201;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ ok: true, id: put[1], rev: '1-floor', seq }));
    });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/db/_changes') {
    const since = Number(url.searchParams.get('since') ?? 0);
    if (url.searchParams.get('feed') === 'continuous') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      for (const e of entriesAfter(since)) res.write(e.line + '\n');
      continuous.add(res);
      res.once('close', () => continuous.delete(res));
      return;
    }
    const pending = entriesAfter(since);
    if (pending.length) return answer(res, longpollBody(pending));
    longpolls.set(res, since);
    res.once('close', () => longpolls.delete(res));
    return;
  }
  res.statusCode = 404;
  res.end('{"error":"not_found"}');
});
server.keepAliveTimeout = 600_000;
const wss = new WebSocketServer({ server, path: '/db/_changes', perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.once('message', (data) => {
    const since = Number((JSON.parse(String(data)) as { since?: number }).since ?? 0);
    const pending = entriesAfter(since);
    ws.send(`[${pending.map((e) => e.line).join(',')}]`);
    sockets.add(ws);
  });
  ws.once('close', () => sockets.delete(ws));
  ws.on('error', () => {});
});

// The feed count the benchmark waits on, in Syncgate's metric name.
const metrics = http.createServer((_req, res) => {
  res.end(`syncgate_changes_feeds_open{database="db"} ${longpolls.size + continuous.size + sockets.size}\n`);
});

const listen = (s: http.Server) => new Promise<number>((r) => s.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => r((s.address() as AddressInfo).port)));
const [pub, met] = [await listen(server), await listen(metrics)];
process.send!({ ready: true, public: pub, metrics: met });
process.on('message', (m: { stop?: boolean }) => {
  if (!m.stop) return;
  server.closeAllConnections();
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));

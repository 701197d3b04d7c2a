/**
 * A real HTTP receiver for webhook tests, on a free loopback port. It records every POST (path,
 * headers, parsed body) and answers as the test says: a status per request, or not at all (hang).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
  /** The status it was answered with (undefined: left hanging). */
  status?: number;
}

/** What to answer a request with: a status, 'hang' to never answer, or a 200 with a body of `bytes` zeros. */
export type Answer = number | 'hang' | { bytes: number };

export interface WebhookReceiver {
  url: string;
  port: number;
  received: Received[];
  /** Requests to one path. */
  at(path: string): Received[];
  /** Decides each answer (default 200). */
  answer: (r: Received) => Answer;
  /** Resolves when `pred` holds (checked on every request); rejects after `ms` naming `what`. */
  until(pred: () => boolean, what: string, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<WebhookReceiver> {
  const waiters = new Set<() => void>();
  const recv: WebhookReceiver = {
    url: '', port: 0, received: [],
    at: (path) => recv.received.filter((r) => r.path === path),
    answer: () => 200,
    until(pred, what, ms = 60_000) {
      if (pred()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => { if (pred()) { clearTimeout(t); waiters.delete(check); resolve(); } };
        const t = setTimeout(() => { waiters.delete(check); reject(new Error(`timed out after ${ms} ms waiting for ${what}; received ${recv.received.length}`)); }, ms);
        waiters.add(check);
      });
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any = text;
      try { body = JSON.parse(text); } catch { /* kept as text */ }
      const r: Received = { path: req.url ?? '', headers: req.headers, body };
      const a = recv.answer(r);
      if (typeof a === 'number') { r.status = a; res.writeHead(a).end(); }
      else if (a !== 'hang') {
        r.status = 200;
        res.writeHead(200, { 'content-length': a.bytes });
        const chunk = Buffer.alloc(1 << 20);
        let left = a.bytes;
        const more = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      }
      recv.received.push(r);
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  recv.port = (server.address() as AddressInfo).port;
  recv.url = `http://127.0.0.1:${recv.port}`;
  return recv;
}

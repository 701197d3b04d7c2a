// A lean HTTP/1.1 POST client for webhooks (webhook.ts), both modes: best effort with many POSTs
// in flight, at-least-once one at a time (never pipelined). Profiled under the webhook bench, node:http spent most of its time per request on one `writev` syscall
// per POST, ClientRequest/agent bookkeeping and the garbage they leave; and the receiver paid a
// read per POST. Here the POSTs of one turn of the loop go out pipelined, as one socket
// write per connection, and the answers are read with a small parser that keeps only the status and
// frames the body (Content-Length, chunked, or until close), discarding it as it comes so a huge
// answer costs no memory.
//
// Pipelining (RFC 9112 §9.3) only where the receiver keeps connections open: the first POST goes
// alone; if its answer keeps the connection, later POSTs are pipelined, at most `depth` waiting on
// one connection, and another connection is opened (up to `maxSockets`) only when every open one
// is that full, so a receiver that answers at once is served over few connections with many POSTs
// per write and a slow one over more. A receiver that closes connections gets one POST per
// connection at a time, as from node:http. When a pipelined connection is closed by an answer, the
// POSTs behind it fail rather than being sent again: servers differ on whether they handled them
// (node:http does, nginx does not), and best effort never repeats a POST that may have been handled;
// the client then stops pipelining to that receiver. Any other loss of a connection fails what it
// still carried. A POST not fully answered `timeoutMs` after it was written fails, and so does every
// POST behind it on that connection, which is closed.
import net from 'node:net';
import tls from 'node:tls';
import type { PostOutcome } from './webhook.ts';

export const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);

const MAX_HEAD_BYTES = 64 * 1024;
const WRITE_CHARS = 1 << 20;
const DEFAULT_IDLE_MS = 4000; // under node:http's 5 s keepAliveTimeout, so we close an idle connection first

// Parser states.
const HEAD = 0, BODY = 1, CHUNK_SIZE = 2, CHUNK_DATA = 3, CHUNK_END = 4, TRAILERS = 5, UNTIL_CLOSE = 6;

interface Post { body: string; done: (outcome: PostOutcome) => void; sentAt: number }

export class PipelinedClient {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly maxSockets: number;
  readonly depth: number;
  readonly head: string;
  /** POSTs not yet written. */
  readonly waiting: Post[] = [];
  /** 'probe' until the first answer says whether the receiver keeps connections: then 'pipeline' or 'single'. */
  mode: 'probe' | 'pipeline' | 'single' = 'probe';
  private readonly conns = new Set<Connection>();
  private scheduled = false;
  private closed = false;

  /**
   * @param target the webhook URL without credentials
   * @param authorization the `Authorization` header value, if any
   */
  constructor(target: URL, authorization: string | undefined, readonly timeoutMs: number, maxSockets: number, depth = 16) {
    this.secure = target.protocol === 'https:';
    this.host = target.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(target.port) || (this.secure ? 443 : 80);
    this.maxSockets = Math.max(1, maxSockets);
    this.depth = Math.max(1, depth);
    // Everything but the length is the same for every POST: built once.
    this.head = `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n`
      + 'Content-Type: application/json\r\n' + (authorization ? `Authorization: ${authorization}\r\n` : '') + 'Content-Length: ';
  }

  /** POSTs `body` (JSON text); `done(outcome)` is called once, with { ok, status } or { ok: false, error, unreachable }. */
  post(body: string, done: (outcome: PostOutcome) => void): void {
    if (this.closed) { done({ ok: false, error: 'webhook closed', unreachable: false }); return; }
    this.waiting.push({ body, done, sentAt: 0 });
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.dispatch(); });
  }

  /** Hands the waiting POSTs to the least busy connections with room, opening new ones when all are full. */
  dispatch(): void {
    const depth = this.mode === 'pipeline' ? this.depth : 1;
    while (this.waiting.length > 0 && !this.closed) {
      if (this.mode === 'probe' && this.conns.size > 0) return; // the first answer decides
      let best: Connection | undefined;
      for (const c of this.conns) {
        if (c.ending || c.outstanding.length >= depth) continue;
        if (!best || c.outstanding.length < best.outstanding.length) best = c;
      }
      if (!best) {
        if (this.conns.size >= this.maxSockets) return; // sent when an answer makes room
        best = new Connection(this);
        this.conns.add(best);
      }
      best.send(this.waiting.splice(0, this.mode === 'probe' ? 1 : depth - best.outstanding.length));
    }
  }

  dropped(conn: Connection): void {
    this.conns.delete(conn);
    if (this.waiting.length) this.schedule();
  }

  close(): void {
    this.closed = true;
    for (const c of this.conns) c.fail('webhook closed', false);
    for (const r of this.waiting.splice(0)) r.done({ ok: false, error: 'webhook closed', unreachable: false });
  }
}

class Connection {
  readonly outstanding: Post[] = [];
  ending = false;
  private error: NodeJS.ErrnoException | undefined;
  private timer: NodeJS.Timeout | undefined;
  // Parser state for the answer at the head of `outstanding`.
  private state = HEAD;
  /** Bytes of an incomplete head / chunk-size line / trailer line. */
  private pending: Buffer | undefined;
  private remaining = 0;
  private status = 0;
  private keepAlive = true;
  private readonly socket: net.Socket;

  constructor(private readonly client: PipelinedClient) {
    const opts = { host: client.host, port: client.port };
    this.socket = client.secure
      ? tls.connect({ ...opts, servername: net.isIP(client.host) ? undefined : client.host, ALPNProtocols: ['http/1.1'] })
      : net.connect(opts);
    this.socket.setNoDelay(true);
    this.socket.setTimeout(DEFAULT_IDLE_MS);
    this.socket.on('timeout', () => { if (this.outstanding.length === 0) this.retire(); });
    this.socket.on('data', (chunk) => this.read(chunk));
    this.socket.on('error', (e) => { this.error = e; });
    this.socket.on('close', () => this.closed());
  }

  send(reqs: Post[]): void {
    const now = performance.now();
    // One write per MB of requests, all corked into one syscall: a string stays far below V8's
    // length limit even when each body is a large document.
    // Text that is all ASCII (most JSON: the byte length says so) is written as latin1, a plain
    // copy, instead of being UTF-8 encoded; the head is ASCII (a URL's path and host are encoded).
    this.socket.cork();
    let text = '';
    let ascii = true;
    const write = () => { this.socket.write(text, ascii ? 'latin1' : 'utf8'); text = ''; ascii = true; };
    for (const r of reqs) {
      const bytes = Buffer.byteLength(r.body);
      ascii &&= bytes === r.body.length;
      text += this.client.head + bytes + '\r\n\r\n' + r.body;
      r.sentAt = now;
      this.outstanding.push(r);
      if (text.length >= WRITE_CHARS) write();
    }
    if (text) write();
    this.socket.uncork();
    if (!this.timer) this.arm(this.client.timeoutMs);
  }

  /** One timer per connection, for the oldest POST: re-armed lazily when it fires early. */
  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const head = this.outstanding[0];
      if (!head) return;
      const left = head.sentAt + this.client.timeoutMs - performance.now();
      if (left > 0) { this.arm(left); return; }
      this.fail(`no complete answer within ${this.client.timeoutMs} ms`, false);
    }, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private read(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) { buf = Buffer.concat([this.pending, chunk]); this.pending = undefined; }
    let pos = 0;
    while (pos < buf.length) {
      if (this.ending) return;
      if (this.outstanding.length === 0) { this.fail('the receiver sent an answer nobody asked for', false); return; }
      switch (this.state) {
        case HEAD: {
          const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
          if (end < 0) return this.keep(buf, pos);
          if (!this.parseHead(buf.toString('latin1', pos, end))) return;
          pos = end + 4;
          break;
        }
        case BODY: {
          const take = Math.min(this.remaining, buf.length - pos);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.answered();
          break;
        }
        case CHUNK_SIZE: case TRAILERS: {
          const eol = buf.indexOf('\r\n', pos, 'latin1');
          if (eol < 0) return this.keep(buf, pos);
          const line = buf.toString('latin1', pos, eol);
          pos = eol + 2;
          if (this.state === TRAILERS) { if (line === '') this.answered(); break; }
          const size = parseInt(line, 16); // chunk extensions after ';' are ignored by parseInt
          if (!Number.isFinite(size) || size < 0) { this.fail('malformed chunked answer', false); return; }
          if (size === 0) this.state = TRAILERS;
          else { this.remaining = size; this.state = CHUNK_DATA; }
          break;
        }
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, buf.length - pos);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) { this.remaining = 2; this.state = CHUNK_END; }
          break;
        }
        case CHUNK_END: { // the CRLF after a chunk's data
          const take = Math.min(this.remaining, buf.length - pos);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = CHUNK_SIZE;
          break;
        }
        case UNTIL_CLOSE:
          return; // the body is everything until the server closes; discarded
      }
    }
  }

  private keep(buf: Buffer, pos: number): void {
    if (buf.length - pos > MAX_HEAD_BYTES) { this.fail('the receiver\'s answer head is too long', false); return; }
    this.pending = buf.subarray(pos);
  }

  /** Status line and the headers that frame the body. False when the answer is not HTTP. */
  private parseHead(text: string): boolean {
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(text);
    if (!m) { this.fail('the receiver did not answer with HTTP/1.x', false); return false; }
    const status = Number(m[2]);
    let length = -1, chunked = false, connection = '';
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === 'content-length') length = Number(line.slice(colon + 1).trim());
      else if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked\s*$/i.test(line.slice(colon + 1));
      else if (name === 'connection') connection = line.slice(colon + 1).toLowerCase();
    }
    if (status >= 100 && status < 200) return true; // 1xx: an interim answer, the real one follows
    this.status = status;
    this.keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    if (status === 204 || status === 304) this.answered();
    else if (chunked) this.state = CHUNK_SIZE;
    else if (length >= 0 && Number.isSafeInteger(length)) {
      if (length === 0) this.answered(); else { this.remaining = length; this.state = BODY; }
    } else { this.keepAlive = false; this.state = UNTIL_CLOSE; }
    return true;
  }

  private answered(): void {
    const r = this.outstanding.shift()!;
    this.state = HEAD;
    r.done({ ok: true, status: this.status });
    const client = this.client;
    if (client.mode === 'probe') client.mode = this.keepAlive ? 'pipeline' : 'single';
    if (!this.keepAlive) {
      client.mode = 'single';
      this.fail('the receiver closed the connection after an earlier answer on it (this POST may or may not have been handled)', false);
    }
    if (client.waiting.length) client.schedule();
  }

  /** Closes an idle connection. */
  retire(): void {
    if (this.ending) return;
    this.ending = true;
    this.client.dropped(this);
    this.socket.end();
  }

  /** Fails what this connection still carries and closes it. */
  fail(error: string, unreachable: boolean): void {
    this.ending = true;
    this.stop({ ok: false, error, unreachable });
    this.client.dropped(this);
    this.socket.destroy();
  }

  private closed(): void {
    if (this.state === UNTIL_CLOSE && this.outstanding.length) this.answered();
    const e = this.error;
    this.stop(e
      ? { ok: false, error: e.message, unreachable: UNREACHABLE.has(e.code ?? '') }
      : { ok: false, error: 'the receiver closed the connection', unreachable: false });
    this.client.dropped(this);
  }

  private stop(outcome: PostOutcome): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.ending = true;
    for (const r of this.outstanding.splice(0)) r.done(outcome);
  }
}

/**
 * One webhook endpoint: POSTs JSON with a whole-request time limit over keep-alive connections.
 * Credentials in the URL become an `Authorization` header and never appear in logs (`redactedUrl`).
 * The receiver's answer body is read and thrown away as it comes, so a huge answer costs no memory;
 * a receiver that trickles it forever is cut by the time limit like one that never answers.
 */
import http from 'node:http';
import https from 'node:https';

/**
 * An answer (any status), or none: `unreachable` when the receiver could not be reached at all
 * (refused, reset, no route, no such host), as opposed to a time-out after it took the request.
 */
export type PostOutcome = { ok: true; status: number } | { ok: false; error: string; unreachable: boolean };

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);

export class Webhook {
  readonly redactedUrl: string;
  private readonly target: URL;
  private readonly authorization?: string;
  private readonly agent: http.Agent;

  constructor(url: string, private readonly timeoutMs: number, maxSockets: number) {
    const u = new URL(url);
    if (u.username || u.password) {
      this.authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
      u.username = '';
      u.password = '';
    }
    this.target = u;
    this.redactedUrl = redactUrl(url);
    const Agent = u.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** POSTs `body` (JSON text). Resolves with the status once the answer is fully read, never rejects. */
  post(body: string): Promise<PostOutcome> {
    const mod = this.target.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const done = (o: PostOutcome) => { if (!settled) { settled = true; clearTimeout(timer); resolve(o); } };
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (this.authorization) headers.authorization = this.authorization;
      const req = mod.request(this.target, { method: 'POST', headers, agent: this.agent }, (res) => {
        res.on('data', () => {}); // discarded as it arrives
        res.on('end', () => done({ ok: true, status: res.statusCode ?? 0 }));
        res.on('error', (e) => done({ ok: false, error: e.message, unreachable: false }));
      });
      const timer = setTimeout(() => {
        done({ ok: false, error: `no complete answer within ${this.timeoutMs} ms`, unreachable: false });
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (e) => done({ ok: false, error: e.message, unreachable: UNREACHABLE.has((e as NodeJS.ErrnoException).code ?? '') }));
      req.end(body);
    });
  }

  close(): void { this.agent.destroy(); }
}

/** The URL with any user name and password replaced by `xxxxx` (Sync Gateway's redaction). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = 'xxxxx';
    u.password = u.password ? 'xxxxx' : '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

/**
 * Webhook endpoints: POSTs of JSON with a whole-request time limit over keep-alive connections.
 * Credentials in the URL become an `Authorization` header and never appear in logs (`redactedUrl`).
 * The receiver's answer body is read and thrown away as it comes, so a huge answer costs no memory;
 * a receiver that trickles it forever is cut by the time limit like one that never answers.
 *
 * Two clients, for the two delivery modes' shapes of traffic:
 * - `Webhook` (node:http): at-least-once posts one change or batch at a time, in sequence order.
 * - `PipelinedWebhook` (pipelined-client.ts): best effort posts every written revision at once,
 *   up to max_processes in flight; pipelining many POSTs per socket write costs a few µs per event
 *   where node:http's client cost 60-120 (BENCHMARKS.md, Webhooks).
 */
import http from 'node:http';
import https from 'node:https';
import { PipelinedClient, UNREACHABLE } from './pipelined-client.ts';

/**
 * An answer (any status), or none: `unreachable` when the receiver could not be reached at all
 * (refused, reset, no route, no such host), as opposed to a time-out after it took the request.
 */
export type PostOutcome = { ok: true; status: number } | { ok: false; error: string; unreachable: boolean };

/** What a handler needs of a webhook, wherever its POSTs run. */
export interface WebhookEndpoint {
  readonly redactedUrl: string;
  post(body: string): Promise<PostOutcome>;
  close(): void;
}

/** The URL without credentials, and the Basic `Authorization` header they become. */
export function splitCredentials(url: string): { target: URL; authorization?: string } {
  const u = new URL(url);
  if (!u.username && !u.password) return { target: u };
  const authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  return { target: u, authorization };
}

/** A webhook for at-least-once delivery (node:http: one POST at a time). */
export class Webhook implements WebhookEndpoint {
  readonly redactedUrl: string;
  private readonly target: URL;
  private readonly authorization?: string;
  private readonly agent: http.Agent;

  constructor(url: string, private readonly timeoutMs: number, maxSockets: number) {
    const { target, authorization } = splitCredentials(url);
    this.target = target;
    this.authorization = authorization;
    this.redactedUrl = redactUrl(url);
    this.agent = new (target.protocol === 'https:' ? https.Agent : http.Agent)({ keepAlive: true, maxSockets });
  }

  /** POSTs `body` (JSON text). Resolves with the status once the answer is fully read, never rejects. */
  post(body: string): Promise<PostOutcome> {
    const mod = this.target.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const done = (o: PostOutcome) => { if (!settled) { settled = true; clearTimeout(timer); resolve(o); } };
      const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (this.authorization) headers.authorization = this.authorization;
      const req = mod.request(this.target, { method: 'POST', headers, agent: this.agent }, (res) => {
        res.on('data', () => {});
        res.on('end', () => done({ ok: true, status: res.statusCode ?? 0 }));
        res.on('error', (e) => done({ ok: false, error: e.message, unreachable: false }));
      });
      const timer = setTimeout(() => {
        done({ ok: false, error: `no complete answer within ${this.timeoutMs} ms`, unreachable: false });
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.message, unreachable: UNREACHABLE.has(e.code ?? '') }));
      req.end(body);
    });
  }

  close(): void { this.agent.destroy(); }
}

/** A webhook for best-effort delivery: many POSTs in flight, pipelined (pipelined-client.ts). */
export class PipelinedWebhook implements WebhookEndpoint {
  readonly redactedUrl: string;
  private readonly client: PipelinedClient;

  constructor(url: string, timeoutMs: number, maxSockets: number) {
    const { target, authorization } = splitCredentials(url);
    this.redactedUrl = redactUrl(url);
    this.client = new PipelinedClient(target, authorization, timeoutMs, maxSockets);
  }

  post(body: string): Promise<PostOutcome> {
    return new Promise((resolve) => this.client.post(body, resolve));
  }

  close(): void { this.client.close(); }
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

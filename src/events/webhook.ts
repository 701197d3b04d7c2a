/**
 * Webhook endpoints: POSTs of JSON with a whole-request time limit over keep-alive connections.
 * Credentials in the URL become an `Authorization` header and never appear in logs (`redactedUrl`).
 * The receiver's answer body is read and thrown away as it comes, so a huge answer costs no memory;
 * a receiver that trickles it forever is cut by the time limit like one that never answers.
 *
 * Both delivery modes post through the lean client of pipelined-client.ts: best effort with up to
 * max_processes POSTs in flight, pipelined many per socket write; at-least-once one at a time. It
 * costs a few µs per POST where node:http's client cost 60-120 (BENCHMARKS.md, Webhooks).
 */
import { PipelinedClient } from './pipelined-client.ts';

/**
 * An answer (any status), or none: `unreachable` when the receiver could not be reached at all
 * (refused, reset, no route, no such host), as opposed to a time-out after it took the request.
 */
export type PostOutcome = { ok: true; status: number } | { ok: false; error: string; unreachable: boolean };

/** The URL without credentials, and the Basic `Authorization` header they become. */
export function splitCredentials(url: string): { target: URL; authorization?: string } {
  const u = new URL(url);
  if (!u.username && !u.password) return { target: u };
  const authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  return { target: u, authorization };
}

/** A webhook endpoint: `post` resolves with the answer's status or why there was none, never rejects. */
export class Webhook {
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

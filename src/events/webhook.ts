/**
 * One webhook endpoint: POSTs JSON with a whole-request time limit over keep-alive connections.
 * Credentials in the URL become an `Authorization` header and never appear in logs (`redactedUrl`).
 * The receiver's answer body is read and thrown away as it comes, so a huge answer costs no memory;
 * a receiver that trickles it forever is cut by the time limit like one that never answers.
 * The POST itself is http-post.mjs; best-effort webhooks post from the delivery thread instead
 * (delivery-thread.ts, pipelined-client.mjs).
 */
import type http from 'node:http';
import { createAgent, postJson, type PostOutcome } from './http-post.mjs';

/**
 * An answer (any status), or none: `unreachable` when the receiver could not be reached at all
 * (refused, reset, no route, no such host), as opposed to a time-out after it took the request.
 */
export type { PostOutcome };

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

/** A webhook posted from the calling thread (at-least-once delivery: one POST at a time). */
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
    this.agent = createAgent(url, maxSockets);
  }

  /** POSTs `body` (JSON text). Resolves with the status once the answer is fully read, never rejects. */
  post(body: string): Promise<PostOutcome> {
    return postJson(this.target, this.agent, this.authorization, body, this.timeoutMs);
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

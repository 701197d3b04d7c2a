/**
 * One request's context: what the router matched, bounded body reading, JSON parsing with Sync
 * Gateway's content-type rules, and response helpers. The error mapper lives here too, so there is
 * exactly one place that turns an exception into a client-visible body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { HttpError, toHttpError } from '../errors.ts';
import { parseJsonBytes, isJsonObject } from '../json/index.ts';
import type { Database } from '../db/database.ts';
import type { Collection } from '../db/collection.ts';
import { ADMIN, type Principal } from '../auth/principal.ts';
import type { DbAuth } from '../auth/index.ts';
import { parseContentType } from './multipart.ts';

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

export const SERVER_HEADER = 'Couchbase Sync Gateway/2.8.3 Syncgate';

/** Responses smaller than this are not worth the CPU of compressing. */
const GZIP_MIN_BYTES = 1024;

export interface HttpSettings {
  /** Largest request body accepted, after gzip decoding. */
  maxBodyBytes: number;
  compressResponses: boolean;
  pretty: boolean;
  /** Most documents in one `_bulk_docs` (and `_bulk_get`) request; unset or 0 = no limit. */
  maxBulkDocs?: number;
}

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug?(msg: string): void;
}

export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly isAdmin: boolean;
  readonly settings: HttpSettings;
  readonly query: URLSearchParams;
  readonly path: string;
  /** Decoded path segments matched by the router. */
  params: Record<string, string> = {};
  db?: Database;
  /**
   * The keyspace the path named (`/{db}.{scope}.{collection}/...`), resolved once by the router;
   * `/{db}/...` resolves to `_default._default`. Unset on database-level routes.
   */
  collection?: Collection;
  /** The database's users, roles and sessions. */
  auth?: DbAuth;
  /** Who the request acts as: the admin on the admin port, else the authenticated user or GUEST. */
  principal: Principal = ADMIN;
  /** The client's address (behind a trusted proxy, from `X-Forwarded-For`): the key of lockouts and rate limits. */
  clientAddress: string;
  /** Recomputes the principal (live feeds call it when grants change); undefined once it is gone. */
  reloadPrincipal: () => Promise<Principal | undefined> = async () => this.principal;
  private bodyPromise?: Promise<Buffer>;

  constructor(req: IncomingMessage, res: ServerResponse, isAdmin: boolean, settings: HttpSettings) {
    this.req = req;
    this.res = res;
    this.isAdmin = isAdmin;
    this.settings = settings;
    this.clientAddress = req.socket?.remoteAddress ?? '';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q >= 0 ? url.slice(0, q) : url;
    this.query = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
  }

  get method(): string { return this.req.method ?? 'GET'; }

  get database(): Database {
    if (!this.db) throw new HttpError(500, 'no database in context');
    return this.db;
  }

  /** The request's collection: the resolved keyspace (see `collection`). */
  get coll(): Collection {
    if (!this.collection) throw new HttpError(500, 'no collection in context');
    return this.collection;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  /** Reads the whole body, refusing it with 413 past the limit, and decoding `Content-Encoding: gzip`. */
  body(): Promise<Buffer> {
    this.bodyPromise ??= this.readBody();
    return this.bodyPromise;
  }

  private async readBody(): Promise<Buffer> {
    const max = this.settings.maxBodyBytes;
    const encoding = (this.header('content-encoding') ?? '').trim().toLowerCase();
    if (encoding !== '' && encoding !== 'gzip' && encoding !== 'identity') {
      throw new HttpError(415, 'Unsupported Content-Encoding; use gzip');
    }
    const declared = Number(this.header('content-length'));
    if (Number.isFinite(declared) && declared > max) {
      this.req.resume();
      throw new HttpError(413, `Request body too large (maximum ${max} bytes)`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          this.req.off('data', onData);
          this.req.resume();
          reject(new HttpError(413, `Request body too large (maximum ${max} bytes)`));
          return;
        }
        chunks.push(chunk);
      };
      this.req.on('data', onData);
      this.req.once('end', () => resolve());
      this.req.once('error', () => reject(new HttpError(400, 'Error reading request body')));
      this.req.once('aborted', () => reject(new HttpError(400, 'Request aborted')));
    });
    const raw = Buffer.concat(chunks, size);
    if (encoding !== 'gzip') return raw;
    try {
      return await gunzipAsync(raw, { maxOutputLength: max });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new HttpError(413, `Request body too large (maximum ${max} bytes)`);
      }
      throw new HttpError(400, 'Invalid gzip request body');
    }
  }

  contentType(): { type: string; params: Record<string, string> } {
    return parseContentType(this.header('content-type'));
  }

  /** The body as JSON. Content-Type must be absent or application/json. Empty bodies are refused. */
  async json(): Promise<unknown> {
    const ct = this.header('content-type');
    if (ct && !ct.toLowerCase().startsWith('application/json')) throw new HttpError(415, `Invalid content type ${ct}`);
    const buf = await this.body();
    return parseJsonBody(buf);
  }

  /** The body as a JSON object, or undefined when empty (for endpoints where a body is optional). */
  async optionalJsonObject(): Promise<Record<string, unknown> | undefined> {
    const buf = await this.body();
    if (buf.length === 0) return undefined;
    const v = await this.json();
    if (!isJsonObject(v)) throw new HttpError(400, 'Request body must be a JSON object');
    return v as Record<string, unknown>;
  }

  acceptsGzip(): boolean {
    return /\bgzip\b/i.test(this.header('accept-encoding') ?? '');
  }

  setHeader(name: string, value: string | number | string[]): void {
    this.res.setHeader(name, value);
  }

  /** Sends a complete JSON response (text already serialized), compressed when worthwhile. */
  async sendJson(status: number, text: string): Promise<void> {
    if (this.settings.pretty) text = JSON.stringify(JSON.parse(text), null, 2);
    await this.send(status, text, 'application/json');
  }

  async send(status: number, body: string | Buffer, contentType: string): Promise<void> {
    const res = this.res;
    if (res.headersSent) { res.end(); return; }
    let buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.statusCode = status;
    res.setHeader('Content-Type', contentType);
    if (this.settings.compressResponses && buf.length >= GZIP_MIN_BYTES && this.acceptsGzip() && !res.hasHeader('Content-Encoding')) {
      buf = await gzipAsync(buf, { level: 1 });
      res.setHeader('Content-Encoding', 'gzip');
      res.setHeader('Vary', 'Accept-Encoding');
    }
    res.setHeader('Content-Length', buf.length);
    res.end(buf);
  }

  /** Sync Gateway's error body; success statuses from the error path have an empty body. */
  sendError(err: unknown, log?: Logger): void {
    const e = toHttpError(err);
    if (!(err instanceof HttpError)) log?.error(`HTTP: ${this.method} ${this.path} failed: ${(err as Error)?.stack ?? String(err)}`);
    const res = this.res;
    if (res.headersSent) {
      // Mid-stream: the status is gone, so end the response; the client sees a truncated body.
      res.destroy();
      return;
    }
    // CORS headers stay: a page must be able to read the error (PouchDB reads 404s and 401s).
    for (const h of res.getHeaderNames()) if (h !== 'server' && !h.startsWith('access-control-')) res.removeHeader(h);
    res.statusCode = e.status;
    const allow = (err as { allow?: string[] }).allow;
    if (allow) res.setHeader('Allow', allow.join(', '));
    // 429s say when to come back (src/http/limits.ts TooManyRequestsError).
    const retryAfter = (err as { retryAfter?: number }).retryAfter;
    if (retryAfter) res.setHeader('Retry-After', String(retryAfter));
    if (e.status === 401 && !(err as { noWwwAuthenticate?: boolean }).noWwwAuthenticate) {
      res.setHeader('WWW-Authenticate', 'Basic realm="Couchbase Sync Gateway"');
    }
    if (e.status < 300) {
      res.setHeader('Content-Length', 0);
      res.end();
      return;
    }
    const body = JSON.stringify({ error: e.error, reason: e.reason });
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }
}

export function parseJsonBody(buf: Buffer): unknown {
  if (buf.length === 0) throw new HttpError(400, 'Document body is empty');
  return parseJsonBytes(buf);
}

/** Query flags: `true`/`false`, as Sync Gateway reads them. */
export function boolParam(q: URLSearchParams, name: string, dflt = false): boolean {
  const v = q.get(name);
  if (v === null) return dflt;
  return v === 'true' || v === '1';
}

export function intParam(q: URLSearchParams, name: string, dflt?: number): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  if (!/^-?\d+$/.test(v)) throw new HttpError(400, `Invalid value for ${name}: ${v}`);
  const n = Number(v);
  // Every integer query value (limit, skip, revs_limit) is a count: a negative one is refused, not ignored.
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, `Invalid value for ${name}: ${v}`);
  return n;
}

/** Query values that hold JSON (`keys`, `open_revs`, `atts_since`, `startkey`...). */
export function jsonParam(q: URLSearchParams, name: string): unknown {
  const v = q.get(name);
  if (v === null) return undefined;
  try {
    return JSON.parse(v);
  } catch {
    throw new HttpError(400, `Invalid JSON in query parameter ${name}`);
  }
}

export function stringArrayParam(q: URLSearchParams, name: string): string[] | undefined {
  const v = jsonParam(q, name);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new HttpError(400, `${name} must be a JSON array of strings`);
  return v;
}

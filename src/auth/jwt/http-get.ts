/**
 * GET a JSON document from an identity provider (discovery, JWKS), with a timeout, a size bound and
 * an optional extra CA (a provider on a private CA). Also reads the cache lifetime the response allows.
 */
import http from 'node:http';
import https from 'node:https';

export interface FetchOptions {
  /** Extra trusted CA certificates (PEM) for HTTPS providers. */
  ca?: string | Buffer;
  timeoutMs?: number;
}

export interface JsonResponse {
  body: unknown;
  /** Seconds the response may be cached (`Cache-Control: max-age`, else `Expires`), when it says. */
  maxAgeSecs?: number;
}

const MAX_BYTES = 1 << 20;

function maxAge(headers: http.IncomingHttpHeaders): number | undefined {
  const cc = headers['cache-control'];
  if (cc) {
    if (/\bno-(store|cache)\b/i.test(cc)) return 0;
    const m = /\bmax-age=(\d+)/i.exec(cc);
    if (m) return Number(m[1]);
  }
  const expires = headers.expires ? Date.parse(headers.expires) : NaN;
  const date = headers.date ? Date.parse(headers.date) : Date.now();
  return Number.isFinite(expires) ? Math.max(0, Math.round((expires - date) / 1000)) : undefined;
}

/** Collects a response body, ending the request once it grows past MAX_BYTES (a provider is not trusted with our memory). */
function readBounded(req: http.ClientRequest, res: http.IncomingMessage, url: string, reject: (err: Error) => void, done: (data: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BYTES) { req.destroy(new Error(`${url}: response larger than ${MAX_BYTES} bytes`)); return; }
    chunks.push(c);
  });
  res.on('end', () => done(Buffer.concat(chunks)));
  res.on('error', reject);
}

export function getJson(url: string, opts: FetchOptions = {}): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}), headers: { accept: 'application/json' } }, (res) => {
      readBounded(req, res, url, reject, (data) => {
        if (res.statusCode !== 200) { reject(new Error(`${url}: HTTP ${res.statusCode}`)); return; }
        try {
          resolve({ body: JSON.parse(data.toString('utf8')), maxAgeSecs: maxAge(res.headers) });
        } catch {
          reject(new Error(`${url}: not JSON`));
        }
      });
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
  });
}

/** POSTs a form (the OAuth token endpoint) and reads a JSON answer, whatever its status. */
export function postForm(url: string, form: Record<string, string>, headers: Record<string, string>, opts: FetchOptions = {}): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const payload = new URLSearchParams(form).toString();
    const req = mod.request(u, {
      method: 'POST', ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}),
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload), accept: 'application/json' },
    }, (res) => {
      readBounded(req, res, url, reject, (data) => {
        let body: unknown;
        try { body = JSON.parse(data.toString('utf8')); } catch { body = undefined; }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

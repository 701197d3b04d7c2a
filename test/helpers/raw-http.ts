/**
 * Raw HTTP/1.1 over a socket, for requests fetch would refuse or normalize: `..` and `//` in paths,
 * invalid bytes, oversized headers, broken framing. One request per connection (`Connection: close`).
 */
import net from 'node:net';

export interface RawResponse { status: number; headers: Record<string, string>; body: Buffer }

/** Builds request bytes; Content-Length is added for a body unless framing headers are given. */
export function rawRequest(method: string, path: string, headers: Record<string, string | number>, body?: Buffer | string): Buffer {
  const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h: Record<string, string | number> = { Host: 'localhost', Connection: 'close', ...headers };
  if (b && h['Content-Length'] === undefined && h['Transfer-Encoding'] === undefined) h['Content-Length'] = b.length;
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return b ? Buffer.concat([Buffer.from(head, 'latin1'), b]) : Buffer.from(head, 'latin1');
}

/** Sends raw bytes on a fresh connection; resolves with the response, or null when it was closed without one. */
export function sendRaw(port: number, raw: Buffer, timeoutMs = 10_000): Promise<RawResponse | null> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer within ${timeoutMs} ms`)); }, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    // The server may answer (413, parser errors) and close before it has read everything we send.
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (all.length === 0 || end < 0) return resolve(null);
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      let body: Buffer = all.subarray(end + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status, headers, body });
    });
    // Not end(): a half-closed socket makes Node abort the request (`httpAllowHalfOpen` is off),
    // which real clients do not do. The server closes (Connection: close) once it has answered.
    sock.write(raw);
  });
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) break;
    const size = parseInt(b.subarray(i, nl).toString('latin1'), 16);
    if (!size) break;
    out.push(b.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

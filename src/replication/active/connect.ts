/**
 * Opening the active side of a replication (spec sg3-admin.md §5.1): first a `GET` of the remote
 * database URL that must answer 200 (as Sync Gateway does, so a wrong URL or wrong credentials
 * fail with a clear message before any WebSocket), then the WebSocket upgrade to
 * `ws(s)://<remote>/_blipsync?client=sgr2` with `BLIP_3+CBMobile_3`, wrapped in the one
 * `BlipConnection` class in its client role.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import { BlipConnection } from '../blip/connection.ts';
import type { ReplicationConfig } from '../isgr/types.ts';

export const BLIP_SUBPROTOCOL = 'BLIP_3+CBMobile_3';
/** Largest message we accept from the remote (a `rev` with its body, an attachment reply). */
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * Why a connection attempt failed. `fatal` failures (bad credentials, a certificate the CA does
 * not vouch for, a remote that is not a database) end the replication in `error`; the others
 * (refused, reset, timed out, 5xx) are retried with backoff.
 */
export class ConnectError extends Error {
  constructor(message: string, readonly fatal: boolean) { super(message); }
}

export interface RemoteTarget {
  /** `http(s)://host:port/db` without credentials. */
  dbUrl: string;
  /** For messages and logs: the URL without credentials. */
  display: string;
  headers: Record<string, string>;
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** Reads the definition's remote: credentials from the URL or the fields, TLS files. */
export function remoteTarget(config: ReplicationConfig): RemoteTarget {
  let url: URL;
  try {
    url = new URL(config.remote);
  } catch {
    throw new ConnectError(`Invalid remote URL "${config.remote}"`, true);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ConnectError(`Unsupported remote URL scheme "${url.protocol}"`, true);
  }
  const user = url.username ? decodeURIComponent(url.username) : config.remote_username;
  const pass = url.username ? decodeURIComponent(url.password) : config.remote_password;
  url.username = '';
  url.password = '';
  url.protocol = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol;
  const dbUrl = url.toString().replace(/\/+$/, '');
  const headers: Record<string, string> = {};
  if (user !== undefined && user !== '') headers.Authorization = 'Basic ' + Buffer.from(`${user}:${pass ?? ''}`).toString('base64');
  const tls: RemoteTarget['tls'] = {};
  try {
    if (config.remote_ca_file) tls.ca = readFileSync(config.remote_ca_file);
    if (config.remote_cert_file) tls.cert = readFileSync(config.remote_cert_file);
    if (config.remote_key_file) tls.key = readFileSync(config.remote_key_file);
  } catch (err) {
    throw new ConnectError(`Cannot read a TLS file of the replication: ${(err as Error).message}`, true);
  }
  return { dbUrl, display: dbUrl, headers, tls };
}

/** TLS failures that retrying cannot fix. */
const FATAL_TLS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL|alert certificate|wrong version number|handshake failure/i;

function describe(err: Error & { code?: string }, target: RemoteTarget): ConnectError {
  const code = err.code ?? '';
  if (FATAL_TLS.test(code) || FATAL_TLS.test(err.message)) {
    return new ConnectError(`TLS connection to ${target.display} failed: ${err.message}${code ? ` (${code})` : ''}`, true);
  }
  return new ConnectError(`Cannot reach ${target.display}: ${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}`, false);
}

function statusError(status: number, target: RemoteTarget, body: string): ConnectError {
  const detail = body.trim().slice(0, 200);
  const what = status === 401 ? ' (wrong or missing credentials)' : status === 403 ? ' (forbidden)' : status === 404 ? ' (no such database)' : '';
  // 5xx, 429 and 503 (a remote starting up or going offline) are worth retrying; other answers are not.
  const fatal = status < 500 && status !== 429 && status !== 408;
  return new ConnectError(`unexpected status code ${status} from target database ${target.display}${what}${detail ? `: ${detail}` : ''}`, fatal);
}

/** The pre-flight `GET {remote}` that must answer 200. */
export function checkRemote(target: RemoteTarget, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL(target.dbUrl + '/');
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, {
      method: 'GET', headers: target.headers, signal, timeout: CONNECT_TIMEOUT_MS,
      ...(url.protocol === 'https:' ? target.tls : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4096) body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(statusError(res.statusCode ?? 0, target, body))));
      res.on('error', (err) => reject(describe(err, target)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(signal.aborted ? new ConnectError('stopped', false) : describe(err, target)));
    req.end();
  });
}

/** Opens the BLIP connection; rejects with ConnectError. */
export async function openConnection(target: RemoteTarget, signal: AbortSignal, log: (level: 'debug' | 'info' | 'warn', msg: string) => void): Promise<BlipConnection> {
  await checkRemote(target, signal);
  const wsUrl = target.dbUrl.replace(/^http/, 'ws') + '/_blipsync?client=sgr2';
  const ws = new WebSocket(wsUrl, [BLIP_SUBPROTOCOL], {
    headers: target.headers, perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS,
    maxPayload: 1024 * 1024, ...target.tls,
  });
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => { ws.terminate(); reject(new ConnectError('stopped', false)); };
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    ws.once('open', () => {
      done();
      if (ws.protocol !== BLIP_SUBPROTOCOL) {
        ws.terminate();
        reject(new ConnectError(`${target.display} does not speak ${BLIP_SUBPROTOCOL} (answered "${ws.protocol}")`, true));
        return;
      }
      resolve();
    });
    ws.once('unexpected-response', (_req, res) => {
      done();
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => reject(statusError(res.statusCode ?? 0, target, body)));
      res.on('error', () => reject(statusError(res.statusCode ?? 0, target, body)));
    });
    ws.once('error', (err) => { done(); reject(describe(err, target)); });
  });
  return new BlipConnection(ws, { role: 'client', maxMessageBytes: MAX_MESSAGE_BYTES, log });
}

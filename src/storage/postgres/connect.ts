/**
 * Connecting to PostgreSQL the way Sync Gateway connects to its server (spec §9): `cacertpath`
 * makes the connection require TLS and verify the server's certificate and host name; `certpath` +
 * `keypath` authenticate with an X.509 client certificate, which wins over a password. Every way a
 * connection can fail at start-up is turned into one line that says what to fix.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';

/** Where to connect: the parsed `postgres://` URL (config's PostgresSpec has this shape). */
export interface PostgresTarget {
  host: string;
  port: number;
  database: string;
  username?: string;
  password?: string;
  sslmode?: 'disable' | 'require' | 'verify-full';
}

export interface PostgresConnectOptions {
  spec: PostgresTarget;
  /** From the database config; win over the URL's. */
  username?: string;
  password?: string;
  certpath?: string;
  keypath?: string;
  cacertpath?: string;
  poolSize?: number;
}

/** What start-up logs once connected. */
export interface ConnectPlan {
  config: pg.PoolConfig;
  tls: boolean;
  /** "X.509 client certificate (CN=...)" or "password" or "no password". */
  auth: string;
  user: string;
  /** `host:port` */
  where: string;
  warnings: string[];
}

/** A problem found before or while connecting; its message is the one start-up line. */
export class PostgresConnectError extends Error {}

function readFile(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PostgresConnectError(`${what} ${path} cannot be read (${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message})`);
  }
}

function commonName(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
}

/** Reads and checks the files, picks the authentication, and builds node-postgres' pool config. */
export function planConnection(o: PostgresConnectOptions, now = Date.now()): ConnectPlan {
  const { spec } = o;
  const warnings: string[] = [];
  let user = o.username ?? spec.username;
  let password = o.password ?? spec.password;
  let auth = password ? 'password' : 'no password';
  let ssl: ConnectionOptions | undefined;
  if (spec.sslmode === 'disable' && (o.cacertpath || o.certpath)) {
    throw new PostgresConnectError('cacertpath and certpath need TLS, but the server URL says sslmode=disable: remove one or the other');
  }
  if (spec.sslmode !== 'disable' && (o.cacertpath || o.certpath || spec.sslmode)) ssl = {};
  if (ssl && o.cacertpath) {
    const ca = readFile('cacertpath', o.cacertpath);
    try {
      new X509Certificate(ca);
    } catch {
      throw new PostgresConnectError(`cacertpath ${o.cacertpath} is not a PEM certificate`);
    }
    // Verifies the chain and the host name (node-postgres passes the host to tls.connect).
    ssl.ca = ca;
    ssl.rejectUnauthorized = true;
  } else if (ssl) {
    if (spec.sslmode === 'verify-full') throw new PostgresConnectError('sslmode=verify-full needs cacertpath (the CA that signed the server\'s certificate)');
    // Sync Gateway 2.x does the same without a CA file (InsecureSkipVerify); say so loudly.
    ssl.rejectUnauthorized = false;
    warnings.push('the PostgreSQL server\'s certificate is not verified: set cacertpath to the CA that signed it');
  }
  if (o.certpath && o.keypath && ssl) {
    const certPem = readFile('certpath', o.certpath);
    const keyPem = readFile('keypath', o.keypath);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch {
      throw new PostgresConnectError(`certpath ${o.certpath} is not a PEM certificate`);
    }
    let key;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      throw new PostgresConnectError(`keypath ${o.keypath} is not a PEM private key (an encrypted key is not supported)`);
    }
    if (!cert.checkPrivateKey(key)) {
      throw new PostgresConnectError(`keypath ${o.keypath} does not match the certificate in certpath ${o.certpath}: use the key the certificate was made for`);
    }
    const validTo = new Date(cert.validTo);
    if (validTo.getTime() < now) {
      throw new PostgresConnectError(`the client certificate ${o.certpath} expired on ${validTo.toISOString()}: renew it`);
    }
    if (new Date(cert.validFrom).getTime() > now) {
      throw new PostgresConnectError(`the client certificate ${o.certpath} is not valid before ${new Date(cert.validFrom).toISOString()}`);
    }
    ssl.cert = certPem;
    ssl.key = keyPem;
    const cn = commonName(cert);
    // PostgreSQL's `cert` method maps the certificate's CN to the user: default the user to it.
    user ??= cn;
    if (password) warnings.push('both a client certificate (certpath) and a password are configured: the certificate is used and the password is ignored, as Sync Gateway does');
    password = undefined;
    auth = `X.509 client certificate (CN=${cn ?? '?'})`;
  }
  if (!user) throw new PostgresConnectError('no PostgreSQL user: set username in the database config, or user@ in the server URL');
  if (!ssl) warnings.push(`the connection to PostgreSQL ${spec.host}:${spec.port} is not encrypted: set cacertpath to require TLS`);
  const config: pg.PoolConfig = {
    host: spec.host, port: spec.port, database: spec.database, user,
    max: o.poolSize ?? 10,
    // During an outage requests fail fast (503) instead of queueing for a connection forever.
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // A network cut without a reset (a dead NAT entry, a pulled cable) would otherwise leave a query
    // waiting for TCP to give up, minutes later: the request gets a 503 after 30 s instead, and
    // keepalives find the dead idle connections. No query of ours legitimately runs that long.
    query_timeout: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'syncgate',
  };
  if (password !== undefined) config.password = password;
  if (ssl) config.ssl = ssl;
  return { config, tls: !!ssl, auth, user, where: `${spec.host}:${spec.port}`, warnings };
}

/** Node.js socket errors and PostgreSQL SQLSTATEs that mean "the server went away, try again later". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '08P01',
]);
const UNAVAILABLE_MESSAGES = /Connection terminated|terminating connection|timeout exceeded when trying to connect|Query read timeout|not queryable|Client was closed|Connection ended/i;

/** True when an error means PostgreSQL is (for now) unreachable: the request gets a 503. */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (!!e?.code && UNAVAILABLE_CODES.has(e.code)) || UNAVAILABLE_MESSAGES.test(e?.message ?? '');
}

/** Turns a failed first connection into the one line start-up prints. */
export function describeConnectError(err: unknown, plan: ConnectPlan, o: PostgresConnectOptions): string {
  const e = err as { code?: string; message?: string };
  const msg = e?.message ?? String(err);
  const code = e?.code ?? '';
  const at = `PostgreSQL at ${plan.where}`;
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'].includes(code) || /timeout exceeded when trying to connect/.test(msg)) {
    return `cannot reach ${at} (${code || 'timed out'}): check that PostgreSQL is running and that the server URL names the right host and port`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the PostgreSQL host "${o.spec.host}" (${code}): check the server URL`;
  if (/does not support SSL/.test(msg)) {
    return `${at} does not offer TLS, but cacertpath (or certpath) requires it: enable ssl on the server (ssl = on, with ssl_cert_file and ssl_key_file)`;
  }
  if (['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_SIGNATURE_FAILURE'].includes(code)) {
    return `the certificate of ${at} is not signed by the CA in cacertpath ${o.cacertpath} (${code}): point cacertpath at the CA that signed the server's certificate`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `the certificate of ${at} has expired: renew the server's certificate`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the certificate of ${at} is not valid for the host name "${o.spec.host}" (${msg.replace(/^Hostname\/IP does not match certificate's altnames: /, '')}): connect with a name the certificate lists, or reissue it with this name`;
  }
  if (/certificate expired/i.test(msg) || code === 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED') {
    return `${at} refused the client certificate ${o.certpath} as expired: renew it`;
  }
  if (/alert unknown ca|alert bad certificate|alert certificate unknown|certificate required/i.test(msg) || /ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE|ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED/.test(code)) {
    return `${at} refused the client certificate ${o.certpath ?? '(none configured)'} during the TLS handshake (${code || msg}): it must be signed by a CA in the server's ssl_ca_file`;
  }
  if (/certificate authentication failed|requires a valid client certificate/i.test(msg)) {
    return `${at} refused the client certificate for user "${plan.user}" (${msg}): the certificate's CN must be the PostgreSQL user (or mapped to it in pg_ident.conf), and pg_hba.conf must allow cert authentication for it`;
  }
  if (code === '28P01') return `${at} refused the password of user "${plan.user}": check username and password`;
  if (code === '28000') return `${at} refused user "${plan.user}" (${msg}): add a pg_hba.conf line that lets this user connect from here`;
  if (code === '3D000') return `the PostgreSQL database "${o.spec.database}" does not exist on ${plan.where}: create it (CREATE DATABASE ${o.spec.database}) or fix the server URL's path`;
  if (code === '42501') {
    return `user "${plan.user}" may not create Syncgate's tables in PostgreSQL database "${o.spec.database}" (${msg}): GRANT CREATE ON DATABASE ${o.spec.database} TO ${plan.user}, or create the schema for it`;
  }
  if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' || /key values mismatch/.test(msg)) {
    return `keypath ${o.keypath} does not match the certificate in certpath ${o.certpath}`;
  }
  return `cannot connect to ${at}: ${msg}${code ? ` (${code})` : ''}`;
}

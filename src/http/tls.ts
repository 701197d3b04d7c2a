/**
 * TLS for every listener (public, admin, metrics) from Sync Gateway's `SSLCert` / `SSLKey`.
 * Everything is checked before any port opens, so a bad file stops start-up with one line naming
 * the file and the problem instead of a listener that fails at the first handshake.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { TlsSettings } from './server.ts';

export class TlsConfigError extends Error {}

const VERSIONS = { 'tlsv1': 'TLSv1', 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' } as const;

export type TlsVersionName = keyof typeof VERSIONS;

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new TlsConfigError(`${what} ${path}: cannot read: ${why}`);
  }
}

export interface LoadedTls {
  settings: TlsSettings;
  /** Non-fatal findings (an expired certificate), each naming the file. */
  warnings: string[];
  /** Subject and expiry of the leaf certificate, for the start-up log. */
  subject: string;
  validTo: Date;
}

/**
 * Reads and checks the certificate (chain allowed: the first PEM block is the leaf) and its key.
 * Throws TlsConfigError with one line naming the file: unreadable, not PEM, key not matching.
 */
export function loadTls(certPath: string, keyPath: string, minimumVersion: TlsVersionName, now = new Date()): LoadedTls {
  const cert = readPem(certPath, 'SSLCert');
  const key = readPem(keyPath, 'SSLKey');
  if (!cert.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw new TlsConfigError(`SSLCert ${certPath}: not a PEM certificate (no BEGIN CERTIFICATE block)`);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsConfigError(`SSLCert ${certPath}: malformed certificate: ${(err as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(key.toString('latin1'));
    throw new TlsConfigError(`SSLKey ${keyPath}: ${encrypted ? 'encrypted keys are not supported' : `malformed private key: ${(err as Error).message}`}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsConfigError(`SSLKey ${keyPath}: the key does not match the certificate in ${certPath}`);
  }
  const minVersion = VERSIONS[minimumVersion];
  try {
    createSecureContext({ cert, key, minVersion });
  } catch (err) {
    throw new TlsConfigError(`SSLCert ${certPath}: unusable with SSLKey ${keyPath}: ${(err as Error).message}`);
  }
  const warnings: string[] = [];
  const validTo = new Date(leaf.validTo);
  if (validTo.getTime() < now.getTime()) warnings.push(`SSLCert ${certPath}: the certificate expired on ${validTo.toISOString()}; clients will refuse it`);
  else if (new Date(leaf.validFrom).getTime() > now.getTime()) warnings.push(`SSLCert ${certPath}: the certificate is not valid before ${new Date(leaf.validFrom).toISOString()}`);
  return { settings: { cert, key, minVersion }, warnings, subject: leaf.subject.replace(/\n/g, ', '), validTo };
}

/** Real certificates for TLS tests, made with the openssl CLI at test time (never checked in). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Leaf + CA in one file (a chain). */
  chainCert: string;
  expiredCert: string;
  expiredKey: string;
  /** A key that matches none of the certificates. */
  otherKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for localhost/127.0.0.1 signed by it, an expired one, and a stray key. */
export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-certs-'));
  const p = (f: string) => join(dir, f);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Syncgate Test CA'], dir);
  writeFileSync(p('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext'], dir);
  // Expired: signed by the CA for the year 2000 (openssl 3.0's `req` has no -not_after; `ca` does).
  writeFileSync(p('ca.cnf'), '[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\ndefault_md = sha256\npolicy = any\ncopy_extensions = none\n[any]\ncommonName = supplied\n');
  writeFileSync(p('index.txt'), '');
  writeFileSync(p('serial'), '01\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=localhost'], dir);
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'expired.csr', '-out', 'expired.pem',
    '-startdate', '20000101000000Z', '-enddate', '20010101000000Z'], dir);
  openssl(['genrsa', '-out', 'other.key', '2048'], dir);
  const chain = Buffer.concat([readFileSync(p('server.pem')), readFileSync(p('ca.pem'))]);
  writeFileSync(p('chain.pem'), chain);
  return {
    dir, caCert: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), chainCert: p('chain.pem'),
    expiredCert: p('expired.pem'), expiredKey: p('expired.key'), otherKey: p('other.key'),
  };
}

/**
 * Start-up against PostgreSQL through the real CLI: every misconfiguration the README's table lists
 * is one clear line on stderr and a non-zero exit; a good config logs the TLS connection and the
 * authentication in use.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DB_NAME, PASSWORD, USERS, nodeConfig, runCliToExit, startNode, startPgCluster } from '../helpers/postgres.ts';
import { req } from '../helpers/gateway.ts';

const cluster = await startPgCluster();
const dir = mkdtempSync(join(tmpdir(), 'syncgate-pg-startup-'));
after(async () => {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});
const c = cluster.certs;
const GUEST = { GUEST: { disabled: false, admin_channels: ['*'] } };
const certDb = { server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert, users: GUEST };
const pwDb = { server: cluster.url(), username: USERS.password, password: PASSWORD, cacertpath: c.caCert, users: GUEST };

/** Starts the CLI with this database config and expects it to fail with exactly one line matching `pattern`. */
async function failsWith(db: Record<string, unknown>, pattern: RegExp): Promise<string> {
  const cfg = await nodeConfig(dir, { db });
  const { code, stderr } = await runCliToExit(cfg.path);
  assert.notEqual(code, 0, `non-zero exit; stderr:\n${stderr}`);
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  assert.match(lines[0], /\[ERR\] /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(lines[0], new RegExp(PASSWORD), 'the password never appears');
  return lines[0];
}

describe('PostgreSQL start-up', () => {
  it('TLS with a client certificate: logs the TLS connection and the certificate authentication, and serves', async () => {
    const node = await startNode(dir, { db: certDb });
    try {
      const out = node.output();
      assert.match(out, new RegExp(`Establishing TLS connection to PostgreSQL 127\\.0\\.0\\.1:${cluster.port} for database ${DB_NAME}`));
      assert.match(out, /authenticates to PostgreSQL as user "sg_cert" with X\.509 client certificate \(CN=sg_cert\)/);
      const put = await req(`${node.publicUrl}/db/hello`, { method: 'PUT', json: { n: 1 } });
      assert.equal(put.status, 201);
    } finally {
      await node.kill();
    }
  });

  it('a certificate and a password both set: the certificate is used, and the log says so', async () => {
    const node = await startNode(dir, { db: { ...certDb, username: USERS.cert, password: 'ignored-pw' } });
    try {
      assert.match(node.output(), /certificate is used and the password is ignored/);
      assert.match(node.output(), /with X\.509 client certificate/);
      assert.doesNotMatch(node.output(), /ignored-pw/);
    } finally {
      await node.kill();
    }
  });

  it('a password over verified TLS, credentials from the URL', async () => {
    // Its own bucket (schema): the one above belongs to sg_cert.
    const node = await startNode(dir, { db: { server: cluster.url(USERS.password, PASSWORD), bucket: 'pw_bucket', cacertpath: c.caCert, pool_size: 3, users: GUEST } });
    try {
      assert.match(node.output(), /Establishing TLS connection to PostgreSQL/);
      assert.match(node.output(), /as user "sg_pw" with password, schema "pw_bucket", pool of 3/);
      assert.doesNotMatch(node.output(), new RegExp(PASSWORD));
    } finally {
      await node.kill();
    }
  });

  it('couchbase:// and couchbases:// are refused, naming the supported schemes', async () => {
    for (const server of ['couchbase://cb.example.com', 'couchbases://user:pw@cb.example.com']) {
      const line = await failsWith({ server }, /databases\.db\.server: unsupported server .*accepted schemes: sqlite:<path>, memory:, walrus:, postgres:\/\/host:port\/dbname, postgresql:\/\/host:port\/dbname/);
      assert.doesNotMatch(line, /user:pw/);
    }
  });

  it('unreachable server', async () => {
    await failsWith({ ...pwDb, server: 'postgres://127.0.0.1:1/syncgate' }, /cannot reach PostgreSQL at 127\.0\.0\.1:1 \(ECONNREFUSED\): check that PostgreSQL is running/);
  });

  it('unknown CA', async () => {
    await failsWith({ ...certDb, cacertpath: c.otherCaCert }, /certificate of PostgreSQL at .* is not signed by the CA in cacertpath .*otherca\.pem/);
  });

  it('host name mismatch', async () => {
    await failsWith({ ...certDb, server: `postgres://127.0.0.2:${cluster.port}/${DB_NAME}` }, /is not valid for the host name "127\.0\.0\.2"/);
  });

  it('expired client certificate', async () => {
    await failsWith({ ...certDb, certpath: c.expiredCert, keypath: c.expiredKey }, /client certificate .*expired\.pem expired on 2001-01-01/);
  });

  it('client certificate refused: CN of another user, or signed by a CA the server does not trust', async () => {
    await failsWith({ ...certDb, username: USERS.cert, certpath: c.wrongUserCert, keypath: c.wrongUserKey },
      /refused the client certificate for user "sg_cert" \(certificate authentication failed/);
    await failsWith({ ...certDb, certpath: c.strangerCert, keypath: c.strangerKey }, /refused the client certificate .*stranger\.pem during the TLS handshake/);
  });

  it('key not matching the certificate', async () => {
    await failsWith({ ...certDb, keypath: c.wrongUserKey }, /keypath .*mallory\.key does not match the certificate in certpath .*client\.pem/);
  });

  it('wrong password', async () => {
    await failsWith({ ...pwDb, password: 'not-the-password' }, /refused the password of user "sg_pw": check username and password/);
  });

  it('missing database', async () => {
    await failsWith({ ...pwDb, server: `postgres://127.0.0.1:${cluster.port}/nosuchdb` }, /PostgreSQL database "nosuchdb" does not exist/);
  });

  it('no permission to create the schema', async () => {
    await failsWith({ ...pwDb, username: USERS.noPermission }, /user "sg_noperm" may not create Syncgate's tables .*GRANT CREATE ON DATABASE syncgate TO sg_noperm/);
  });

  it('TLS required (cacertpath) but the server offers none', async () => {
    await cluster.pause();
    await cluster.resume({ ssl: false });
    await failsWith(certDb, /PostgreSQL at 127\.0\.0\.1:\d+ does not offer TLS, but cacertpath \(or certpath\) requires it/);
  });
});

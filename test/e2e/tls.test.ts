import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { makeCerts, type TestCerts } from '../helpers/certs.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/syncgate.js');
const FIXTURE = resolve(import.meta.dirname, '../fixtures/pouch-replicate.ts');

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/**
 * Runs a command without blocking the event loop (the server under test lives in this process, so a
 * synchronous child would deadlock against it). Stdin is closed at once.
 */
function sh(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

/** `openssl s_client` handshake with a forced protocol version; true when the handshake completed. */
async function handshake(port: number, version: '-tls1_1' | '-tls1_2' | '-tls1_3', ca: string): Promise<{ ok: boolean; out: string }> {
  // SECLEVEL=0 lets the client offer TLS 1.1 at all, so a failure is the server's refusal.
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, version, '-CAfile', ca, '-servername', 'localhost'];
  if (version === '-tls1_1') args.push('-cipher', 'DEFAULT@SECLEVEL=0');
  const r = await sh('openssl', args);
  const out = r.stdout + r.stderr;
  return { ok: /Verify return code: 0 \(ok\)/.test(out) && !/alert|handshake failure|no protocols available/i.test(out), out };
}

/** Sends plain HTTP to a port and returns whatever comes back (or '' when the server just closes). */
function plainHttp(port: number): Promise<string> {
  return new Promise((res) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    let data = '';
    sock.on('data', (d) => (data += d.toString('latin1')));
    sock.on('close', () => res(data));
    sock.on('error', () => res(data));
    setTimeout(() => sock.destroy(), 3000);
  });
}

describe('HTTPS on every listener', () => {
  let certs: TestCerts;
  let gw: TestGateway;
  before(async () => {
    certs = makeCerts();
    gw = await startGateway({
      config: { SSLCert: certs.chainCert, SSLKey: certs.serverKey },
      databases: { db: { server: 'memory:', users: { alice: { password: 'pw-alice', admin_channels: ['*'] }, GUEST: { disabled: false, admin_channels: ['*'] } } } },
    });
  });
  after(async () => {
    await gw?.stop();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test('curl, trusting the test CA, reaches the public, admin and metrics listeners over HTTPS', async () => {
    for (const url of [gw.publicUrl, gw.adminUrl]) {
      const { stdout } = await run('curl', ['-sS', '--cacert', certs.caCert, `${url.replace('127.0.0.1', 'localhost')}/`]);
      assert.equal(JSON.parse(stdout).couchdb, 'Welcome');
    }
    const m = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', certs.caCert, `${gw.metricsUrl.replace('127.0.0.1', 'localhost')}/`]);
    assert.match(m.stdout, /^\d{3}$/, 'the metrics port answers HTTPS');
    // Without the CA, curl refuses the certificate: this really is our test CA's chain.
    const untrusted = await sh('curl', ['-sS', '--max-time', '10', `${gw.publicUrl.replace('127.0.0.1', 'localhost')}/`]);
    assert.notEqual(untrusted.code, 0);
  });

  test('plain HTTP to any of the TLS ports gets no HTTP answer', async () => {
    for (const url of [gw.publicUrl, gw.adminUrl, gw.metricsUrl]) {
      const answer = await plainHttp(portOf(url));
      assert.ok(!answer.startsWith('HTTP/'), `plain HTTP answered on ${url}: ${answer.slice(0, 40)}`);
    }
  });

  test('TLS 1.1 is refused, TLS 1.2 and 1.3 accepted (minimum tlsv1.2 by default)', async () => {
    const port = portOf(gw.publicUrl);
    const old = await handshake(port, '-tls1_1', certs.caCert);
    assert.equal(old.ok, false, old.out);
    const v12 = await handshake(port, '-tls1_2', certs.caCert);
    assert.equal(v12.ok, true, v12.out);
    assert.equal((await handshake(port, '-tls1_3', certs.caCert)).ok, true);
  });

  test('the session cookie is Secure under TLS', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', '--cacert', certs.caCert, '-H', 'Content-Type: application/json',
      '-d', '{"name":"alice","password":"pw-alice"}', `${gw.publicUrl.replace('127.0.0.1', 'localhost')}/db/_session`]);
    const cookie = stdout.split('\r\n').find((l) => /^set-cookie:/i.test(l));
    assert.ok(cookie, stdout);
    assert.match(cookie!, /;\s*Secure/i);
  });

  test('PouchDB, trusting the CA, replicates both ways over HTTPS', async () => {
    const url = `${gw.publicUrl.replace('127.0.0.1', 'localhost')}/db`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', FIXTURE, url, '40'], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caCert }, timeout: 60_000,
    });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').pop()!), { pushed: 40, pulled: 40 });
  });
});

describe('tls_minimum_version tlsv1.3', () => {
  test('refuses a TLS 1.2 handshake', async () => {
    const certs = makeCerts();
    const gw = await startGateway({ config: { SSLCert: certs.serverCert, SSLKey: certs.serverKey, tls_minimum_version: 'tlsv1.3' } });
    try {
      const port = portOf(gw.publicUrl);
      assert.equal((await handshake(port, '-tls1_2', certs.caCert)).ok, false);
      assert.equal((await handshake(port, '-tls1_3', certs.caCert)).ok, true);
    } finally {
      await gw.stop();
      rmSync(certs.dir, { recursive: true, force: true });
    }
  });
});

describe('bad TLS configuration stops start-up with one line naming the file', () => {
  let certs: TestCerts;
  before(() => { certs = makeCerts(); });
  after(() => rmSync(certs.dir, { recursive: true, force: true }));

  async function start(top: Record<string, unknown>): Promise<{ status: number | null; stderr: string }> {
    const cfg = join(certs.dir, `cfg-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(cfg, JSON.stringify({ interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0', ...top, databases: { db: { server: 'memory:' } } }));
    const r = await sh(process.execPath, [BIN, cfg]);
    return { status: r.code, stderr: r.stderr };
  }

  const cases: [string, () => Record<string, unknown>, RegExp][] = [
    ['only SSLCert set', () => ({ SSLCert: certs.serverCert }), /SSLKey/],
    ['only SSLKey set', () => ({ SSLKey: certs.serverKey }), /SSLCert/],
    ['a missing certificate file', () => ({ SSLCert: join(certs.dir, 'nope.pem'), SSLKey: certs.serverKey }), /nope\.pem.*no such file/],
    ['a key that does not match', () => ({ SSLCert: certs.serverCert, SSLKey: certs.otherKey }), /other\.key.*does not match/],
    ['a malformed PEM', () => {
      const bad = join(certs.dir, 'bad.pem');
      writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
      return { SSLCert: bad, SSLKey: certs.serverKey };
    }, /bad\.pem.*malformed/],
    ['a key file that is not a key', () => ({ SSLCert: certs.serverCert, SSLKey: certs.caCert }), /ca\.pem.*malformed private key/],
  ];
  for (const [name, cfg, expected] of cases) {
    test(name, async () => {
      const r = await start(cfg());
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, expected);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }

  test('an expired certificate starts with a warning naming the file', async () => {
    const gw = await startGateway({ config: { SSLCert: certs.expiredCert, SSLKey: certs.expiredKey } });
    try {
      assert.ok(gw.logs.some((l) => /\[WRN\].*expired\.pem.*expired/.test(l)), gw.logs.join('\n'));
    } finally {
      await gw.stop();
    }
  });
});

/**
 * Syncgate behind NGINX, as docs/deploy/ tells operators to run it: the shipped
 * docs/deploy/nginx.conf is rendered with this test's ports, certificate and upstream, wrapped in a
 * minimal main config (pid, logs and temp paths in a temp dir), and run with the machine's nginx.
 * Clients then talk HTTPS to nginx only, trusting a CA made with `openssl` for this run.
 *
 * nginx is required: CI (.ci/run) installs Debian's package when it is missing, so a missing nginx
 * fails this test rather than skipping it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB } from '../helpers/pouchdb.ts';

const DEPLOY = resolve(import.meta.dirname, '../../docs/deploy');
const MAX_BODY = 32 * 1024 * 1024; // Syncgate's default maxBodyBytes (src/gateway.ts)

/** The nginx binary: $NGINX, /usr/sbin/nginx (Debian's, not on a normal user's PATH), or on PATH. */
function findNginx(): string {
  const candidates = [process.env.NGINX, '/usr/sbin/nginx', ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'nginx'))];
  for (const c of candidates) {
    if (!c) continue;
    try { accessSync(c, constants.X_OK); return c; } catch { /* next */ }
  }
  throw new Error('nginx is not installed: this end-to-end test needs it (Debian: apt-get install nginx; .ci/run installs it in CI)');
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Syncgate nginx test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  writeFileSync(join(dir, 'server.ext'), [
    'subjectAltName = DNS:localhost, IP:127.0.0.1',
    'basicConstraints = CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
  ].join('\n') + '\n');
  run('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

/** Whether this machine can listen on IPv6 (the shipped config listens on both families). */
function ipv6Available(): Promise<boolean> {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen(0, '::1', () => s.close(() => res(true)));
  });
}

/** A port free on every interface, the way nginx's `listen PORT` binds it. */
function freePort(ipv6: boolean): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen({ port: 0, host: ipv6 ? '::' : '0.0.0.0', ipv6Only: false }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

/** Fills in the shipped config's placeholders; every placeholder must be known here. */
function renderSite(values: Record<string, string>, ipv6: boolean): string {
  let text = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(k, v);
  assert.deepEqual(text.match(/__[A-Z0-9_]+__/g) ?? [], [], 'every placeholder of docs/deploy/nginx.conf is filled in');
  // Containers without IPv6 cannot bind [::]; the IPv4 half of the config is still the shipped text.
  if (!ipv6) text = text.replace(/^\s*listen\s+\[::\].*$/gm, '');
  return text;
}

/**
 * The test's main config: only what a stock /etc/nginx/nginx.conf provides around a site file
 * (including Debian's http-level `ssl_protocols` and `gzip on`, which the site must override), with
 * pid, logs and temp files in the temp dir.
 */
function mainConfig(dir: string): string {
  return `# Generated by test/e2e/nginx.test.ts around the shipped docs/deploy/nginx.conf
${process.getuid?.() === 0 ? 'user root;  # workers must write the temp dir this test (running as root) created\n' : ''}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    # As in Debian's stock nginx.conf:
    sendfile on;
    tcp_nopush on;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
    include ${dir}/syncgate.conf;
}
`;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); res(true); });
    s.once('error', () => res(false));
  });
}

/**
 * A transparent TCP relay between nginx and Syncgate: counts the connections nginx opens upstream
 * (keepalive) and can record what nginx sends (the forwarded headers).
 */
interface Tap { port: number; connections: number; recording: string | undefined; close(): void }

function startTap(target: URL): Promise<Tap> {
  const sockets = new Set<net.Socket>();
  const tap: Tap = { port: 0, connections: 0, recording: undefined, close: () => { server.close(); for (const s of sockets) s.destroy(); } };
  const server = net.createServer((down) => {
    tap.connections++;
    const up = net.connect(Number(target.port), target.hostname);
    for (const s of [down, up]) { sockets.add(s); s.on('close', () => sockets.delete(s)); }
    down.on('data', (d) => { if (tap.recording !== undefined) tap.recording += d.toString('latin1'); });
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => { tap.port = (server.address() as net.AddressInfo).port; res(tap); });
  });
}

interface Nginx { child: ChildProcess; output: () => string }

/** Starts nginx in the foreground and resolves once both of its ports accept connections. */
async function startNginx(bin: string, dir: string, ports: number[]): Promise<Nginx> {
  const conf = join(dir, 'nginx.conf');
  const child = spawn(bin, ['-e', join(dir, 'error.log'), '-p', dir + '/', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const output = () => {
    let log = '';
    try { log = readFileSync(join(dir, 'error.log'), 'utf8'); } catch { /* none yet */ }
    return `${out}${log}`;
  };
  child.on('error', (e) => (out += `spawn error: ${e.message}\n`));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}):\n${output()}`);
    if ((await Promise.all(ports.map(canConnect))).every(Boolean)) return { child, output };
    if (Date.now() > deadline) { child.kill('SIGTERM'); throw new Error(`nginx did not start listening:\n${output()}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Fast shutdown (SIGTERM): the master stops its workers, then exits. SIGKILL if it hangs. */
async function stopNginx(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** `promise`, or a rejection with `message` after `ms`. */
async function within<T>(ms: number, promise: Promise<T>, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(message)), ms); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

interface Res { status: number; headers: http.IncomingHttpHeaders; text: string; body: any }

describe('Syncgate behind NGINX (docs/deploy/nginx.conf)', { timeout: 600_000 }, () => {
  let dir: string;
  let gw: TestGateway | undefined;
  let tap: Tap | undefined;
  let nginx: Nginx | undefined;
  let ca: Buffer;
  let agent: https.Agent;
  let httpsPort: number;
  let httpPort: number;
  let base: string; // https://localhost:<port>, through nginx
  const killOnExit = () => nginx?.child.kill('SIGTERM');

  /** An HTTPS request through nginx, trusting the test CA. */
  function hreq(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; json?: unknown } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...opts.headers };
    let body = opts.body;
    if (opts.json !== undefined) { body = JSON.stringify(opts.json); headers['content-type'] = 'application/json'; }
    return new Promise((res, rej) => {
      const r = https.request(`${base}${path}`, { method: opts.method ?? 'GET', headers, agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c) => chunks.push(c));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = text;
          try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
          res({ status: response.statusCode!, headers: response.headers, text, body: parsed });
        });
        response.on('error', rej);
      });
      r.on('error', rej);
      r.end(body);
    });
  }

  /** PouchDB's HTTP adapter with a fetch that trusts the test CA (node-fetch takes an `agent`). */
  function remote(): any {
    return new PouchDB(`${base}/db`, { skip_setup: true, fetch: (url: string, opts: any) => PouchDB.fetch(url, { ...opts, agent }) });
  }

  before(async () => {
    const bin = findNginx();
    dir = mkdtempSync(join(tmpdir(), 'syncgate-nginx-'));
    const certs = makeCertificates(dir);
    ca = readFileSync(certs.ca);
    agent = new https.Agent({ ca, keepAlive: true });
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:',
          users: { GUEST: { disabled: false, admin_channels: ['*'] }, alice: { password: 'letmein', admin_channels: ['*'] } },
        },
      },
    });
    tap = await startTap(new URL(gw.publicUrl));
    const ipv6 = await ipv6Available();
    // Ports are picked free, then bound by nginx: retry on the rare race with another process.
    for (let attempt = 1; ; attempt++) {
      httpsPort = await freePort(ipv6);
      httpPort = await freePort(ipv6);
      if (httpPort === httpsPort) continue;
      const site = renderSite({
        __SERVER_NAME__: 'localhost',
        __HTTPS_PORT__: String(httpsPort),
        __HTTP_PORT__: String(httpPort),
        __SSL_CERTIFICATE__: certs.cert,
        __SSL_CERTIFICATE_KEY__: certs.key,
        __SYNCGATE_UPSTREAM__: `127.0.0.1:${tap.port}`, // Syncgate's public port, through the tap
      }, ipv6);
      writeFileSync(join(dir, 'syncgate.conf'), site);
      writeFileSync(join(dir, 'nginx.conf'), mainConfig(dir));
      process.once('exit', killOnExit);
      try {
        nginx = await startNginx(bin, dir, [httpsPort, httpPort]);
        break;
      } catch (err) {
        process.off('exit', killOnExit);
        if (attempt >= 3 || !/Address already in use/.test((err as Error).message)) throw err;
      }
    }
    base = `https://localhost:${httpsPort}`;
  });

  after(async () => {
    agent?.destroy();
    if (nginx) {
      await stopNginx(nginx.child);
      process.off('exit', killOnExit);
    }
    tap?.close();
    await gw?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the docs name every placeholder of the config', () => {
    const conf = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8');
    const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
    const placeholders = new Set(conf.match(/__[A-Z0-9_]+__/g));
    assert.ok(placeholders.size >= 5);
    for (const p of placeholders) assert.ok(readme.includes(p), `docs/deploy/README.md explains ${p}`);
  });

  test('PouchDB pushes and pulls 200 docs (with attachments) through nginx over HTTPS', { timeout: 120_000 }, async () => {
    const source = localDb();
    const docs = Array.from({ length: 200 }, (_, i) => {
      const doc: any = { _id: `nx-${String(i).padStart(3, '0')}`, i, text: `value ${i}`, nested: { a: [i, i * 2] } };
      if (i % 50 === 0) doc._attachments = { 'blob.bin': { content_type: 'application/octet-stream', data: randomBytes(20_000 + i) } };
      return doc;
    });
    await source.bulkDocs(docs);
    const push = await source.replicate.to(remote());
    assert.equal(push.ok, true);
    assert.equal(push.docs_written, 200);
    // They are in Syncgate itself (read directly on its public port, not through nginx).
    const direct = await req(`${gw!.publicUrl}/db/_all_docs?startkey="nx-"&endkey="nx-\uffff"`);
    assert.equal(direct.body.rows.length, 200);

    const target = localDb();
    const pull = await target.replicate.from(remote());
    assert.equal(pull.ok, true);
    assert.equal(pull.docs_written, 200);
    const [a, b] = [await source.allDocs({ include_docs: true, attachments: true, binary: true }), await target.allDocs({ include_docs: true, attachments: true, binary: true })];
    assert.equal(b.rows.length, 200);
    for (let i = 0; i < a.rows.length; i++) {
      const [x, y] = [a.rows[i].doc, b.rows[i].doc];
      assert.equal(y._id, x._id);
      assert.equal(y._rev, x._rev);
      assert.equal(y.text, x.text);
      assert.deepEqual(y.nested, x.nested);
      if (x._attachments) assert.ok(Buffer.from(y._attachments['blob.bin'].data).equals(Buffer.from(x._attachments['blob.bin'].data)), `${x._id} attachment bytes`);
    }
    const log = readFileSync(join(dir, 'access.log'), 'utf8');
    assert.match(log, /POST \/db\/_bulk_docs/, 'the replication went through nginx');
  });

  test('a continuous _changes feed through nginx gets a later write while it stays open (no proxy buffering)', { timeout: 120_000 }, async () => {
    const since = (await hreq('/db/_changes')).body.last_seq;
    const r = https.request(`${base}/db/_changes?feed=continuous&since=${since}`, { agent: new https.Agent({ ca }) });
    try {
      const response = await within(30_000, new Promise<http.IncomingMessage>((res, rej) => { r.once('response', res); r.once('error', rej); r.end(); }),
        'no response headers from the continuous feed through nginx (waited 30 s): is proxy_buffering off for _changes?');
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['content-type'], 'application/octet-stream');
      // Connected: the feed is caught up and waiting. Now write, straight to Syncgate.
      const line = new Promise<any>((res, rej) => {
        let buf = '';
        response.on('data', (chunk) => {
          buf += chunk;
          for (let nl; (nl = buf.indexOf('\n')) >= 0;) {
            const l = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (l) res(JSON.parse(l));
          }
        });
        response.on('error', rej);
        response.on('end', () => rej(new Error('feed ended')));
      });
      await new Promise((res) => setTimeout(res, 200));
      const put = await req(`${gw!.publicUrl}/db/live-continuous`, { method: 'PUT', json: { at: Date.now() } });
      assert.equal(put.status, 201);
      // The feed does not end on its own (no timeout, no heartbeat): a buffering proxy would hold the
      // line until its buffer fills, so the bound is generous and only a held line fails it.
      const entry = await within(30_000, line, 'the change did not come through nginx while the feed was open (waited 30 s): is proxy_buffering off for _changes?');
      assert.equal(entry.id, 'live-continuous');
    } finally {
      r.destroy();
    }
  });

  test('a WebSocket _changes feed works through nginx (wss)', { timeout: 120_000 }, async () => {
    const ws = new WebSocket(`wss://localhost:${httpsPort}/db/_changes?feed=websocket`, { ca });
    try {
      const messages: string[] = [];
      await within(30_000, new Promise<void>((res, rej) => {
        ws.on('open', () => ws.send(JSON.stringify({ since: 0 })));
        ws.on('message', (m) => {
          const text = m.toString();
          messages.push(text);
          if (text === '[]') void req(`${gw!.publicUrl}/db/live-ws`, { method: 'PUT', json: {} });
          if (text.includes('"live-ws"')) res();
        });
        ws.on('unexpected-response', (_r, response) => rej(new Error(`upgrade refused: HTTP ${response.statusCode}`)));
        ws.on('error', rej);
      }), 'no live change over the WebSocket through nginx (waited 30 s)');
      assert.ok(messages.includes('[]'), 'caught-up marker');
      assert.ok(JSON.parse(messages[0]).length > 0, 'the backlog came first');
    } finally {
      ws.terminate();
    }
  });

  test('nginx forwards Host and X-Forwarded-*, and keeps upstream connections alive', { timeout: 120_000 }, async () => {
    const probe = `probe-${randomBytes(4).toString('hex')}`;
    tap!.recording = '';
    const r = await hreq(`/db/?${probe}`, { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'http' } });
    const sent = tap!.recording;
    tap!.recording = undefined;
    assert.equal(r.status, 200);
    const head = sent.slice(sent.indexOf(`GET /db/?${probe} `)).split('\r\n\r\n')[0].split('\r\n');
    assert.equal(head[0], `GET /db/?${probe} HTTP/1.1`, 'HTTP/1.1 to Syncgate');
    const headers = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    assert.equal(headers.get('host'), 'localhost');
    assert.equal(headers.get('x-forwarded-proto'), 'https', 'the client cannot claim another scheme');
    assert.equal(headers.get('x-forwarded-for'), '127.0.0.1', 'the client address, not what the client claimed');
    assert.equal(headers.get('x-forwarded-host'), 'localhost');
    assert.equal(headers.get('connection'), undefined, 'no Connection: close, so the upstream connection is reused');

    // Sequential requests reuse the pooled upstream connection instead of opening one each.
    await hreq('/db/');
    const before = tap!.connections;
    for (let i = 0; i < 30; i++) assert.equal((await hreq(`/db/?n=${i}`)).status, 200);
    assert.ok(tap!.connections - before <= 1, `${tap!.connections - before} new upstream connections for 30 requests`);
  });

  test('the admin API is not reachable through nginx', { timeout: 120_000 }, async () => {
    for (const path of ['/_all_dbs', '/db/_user/', '/db/_role/']) {
      const viaNginx = await hreq(path);
      assert.equal(viaNginx.status, 404, `${path} through nginx`);
      assert.equal(viaNginx.body?.error, 'not_found', `${path}: the 404 is Syncgate's public port answering`);
      // ...while the admin port itself has it: the 404 is not because the route does not exist.
      assert.equal((await req(`${gw!.adminUrl}${path}`)).status, 200, `${path} on the admin port`);
    }
    assert.equal((await hreq('/db/_user/alice')).status, 404);
    const create = await hreq('/newdb/', { method: 'PUT', json: {} });
    assert.ok(create.status >= 400 && create.status < 500, `cannot create a database through nginx (got ${create.status})`);
  });

  test('plain HTTP redirects to HTTPS, keeping path, query and method', { timeout: 120_000 }, async () => {
    const plain = (method: string, path: string) => new Promise<http.IncomingMessage>((res, rej) => {
      const r = http.request({ host: 'localhost', port: httpPort, path, method }, (response) => { response.resume(); res(response); });
      r.on('error', rej);
      r.end();
    });
    const get = await plain('GET', '/db/?x=1');
    assert.equal(get.statusCode, 308);
    assert.equal(get.headers.location, `https://localhost:${httpsPort}/db/?x=1`);
    const post = await plain('POST', '/db/_bulk_docs');
    assert.equal(post.statusCode, 308);
    assert.equal(post.headers.location, `https://localhost:${httpsPort}/db/_bulk_docs`);
    // Following it reaches Syncgate over HTTPS.
    const followed = await hreq(new URL(get.headers.location!).pathname + '?x=1');
    assert.equal(followed.status, 200);
    assert.equal(followed.body.db_name, 'db');
    // Certificate renewals: ACME challenges are answered on HTTP (here: no such file), not redirected.
    assert.equal((await plain('GET', '/.well-known/acme-challenge/token')).statusCode, 404);
    // The HTTPS port serves nothing over plain HTTP (nginx's 400 "plain HTTP request was sent to HTTPS port").
    const cleartext = await fetch(`http://localhost:${httpsPort}/db/`);
    assert.equal(cleartext.status, 400);
    assert.doesNotMatch(await cleartext.text(), /db_name/);
  });

  test('HSTS, Secure session cookie, and a 32 MiB body limit equal to Syncgate\'s', { timeout: 120_000 }, async () => {
    const info = await hreq('/db/');
    assert.equal(info.status, 200);
    assert.match(String(info.headers['strict-transport-security']), /max-age=\d+/);

    const login = await hreq('/db/_session', { method: 'POST', json: { name: 'alice', password: 'letmein' } });
    assert.equal(login.status, 200);
    const cookie = String(login.headers['set-cookie']);
    assert.match(cookie, /^SyncGatewaySession=/);
    assert.match(cookie, /;\s*secure/i, 'the session cookie is Secure behind the TLS proxy');

    // A body of exactly the limit passes nginx and Syncgate (a _bulk_docs of 1 MB docs, padded with
    // JSON whitespace to the byte); one byte more is refused.
    const docs = Array.from({ length: 30 }, (_, i) => ({ _id: `big-${i}`, pad: 'x'.repeat(1_000_000) }));
    let bulk = JSON.stringify({ docs });
    bulk += ' '.repeat(MAX_BODY - Buffer.byteLength(bulk));
    assert.equal(Buffer.byteLength(bulk), MAX_BODY);
    const atLimit = await hreq('/db/_bulk_docs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: bulk });
    assert.equal(atLimit.status, 201, atLimit.text.slice(0, 300));
    assert.equal(atLimit.body.length, 30);
    const over = await new Promise<number>((res, rej) => {
      // Expect: 100-continue, so nginx answers 413 without this test pushing 32 MiB into a closed socket.
      const r = https.request(`${base}/db/_bulk_docs`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(MAX_BODY + 1), expect: '100-continue' } }, (response) => {
        response.resume();
        res(response.statusCode!);
      });
      r.on('continue', () => r.end(bulk + ' '));
      r.on('error', rej);
    });
    assert.equal(over, 413);
  });
});

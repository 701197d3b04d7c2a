/**
 * A throwaway PostgreSQL cluster for one test file: `initdb` + `pg_ctl` in a temp folder on a free
 * port, TLS on (`ssl=on`, certificates made with openssl now), `hostssl ... cert` for the
 * certificate user and scram passwords for the others; stopped and removed afterwards.
 *
 * PostgreSQL refuses to run as root, and tests run as root here and in CI: the server's commands
 * then run as the `postgres` OS user (runuser), which owns the folder and the server key (0600).
 * Debian keeps the binaries in /usr/lib/postgresql/<version>/bin, off PATH: they are looked up there.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const DB_NAME = 'syncgate';
export const PASSWORD = 'pw-secret';
/** Users: `sg_cert` logs in with a client certificate, `sg_pw` with a password, `sg_noperm` may not create schemas. */
export const USERS = { cert: 'sg_cert', password: 'sg_pw', noPermission: 'sg_noperm' } as const;

export interface PgCerts {
  dir: string;
  caCert: string;
  /** CN=sg_cert, signed by the CA the server trusts. */
  clientCert: string;
  clientKey: string;
  /** CN=sg_cert, expired in 2001. */
  expiredCert: string;
  expiredKey: string;
  /** CN=mallory, signed by the trusted CA: the server refuses it for user sg_cert. */
  wrongUserCert: string;
  wrongUserKey: string;
  /** A CA the server does not know, and a CN=sg_cert certificate it signed. */
  otherCaCert: string;
  strangerCert: string;
  strangerKey: string;
}

export interface PgCluster {
  host: string;
  port: number;
  dir: string;
  certs: PgCerts;
  /** `postgres://[user[:password]@]127.0.0.1:<port>/syncgate` */
  url(user?: string, password?: string): string;
  /** A query as the superuser, over the cluster's Unix socket. */
  admin(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Stops the server (`fast` lets clients be told; `immediate` is a crash). */
  pause(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again, e.g. `{ ssl: false }` for a server that offers no TLS. */
  resume(opts?: { ssl?: boolean }): Promise<void>;
  /** Stops the server and removes the folder. */
  stop(): Promise<void>;
  log(): string;
}

function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (which.status === 0) return join(which.stdout.trim(), '..');
  throw new Error('PostgreSQL is not installed (no initdb): apt-get install postgresql, or set PG_BIN');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

/** Runs a server command, as `postgres` when we are root; rejects with its output on failure. */
function run(cmd: string, args: string[]): Promise<string> {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out}`))));
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** EC keys: quick to make. */
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCerts(dir: string): PgCerts & { serverCert: string; serverKey: string } {
  const p = (f: string) => join(dir, f);
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Syncgate PG Test CA'], dir);
  openssl(['req', '-x509', ...EC, '-keyout', 'otherca.key', '-out', 'otherca.pem', '-days', '2', '-subj', '/CN=Unknown CA'], dir);
  writeFileSync(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  const leaf = (name: string, cn: string, ca: string, ext?: string) => {
    openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2',
      ...(ext ? ['-extfile', ext] : [])], dir);
  };
  leaf('server', 'localhost', 'ca', 'server.ext');
  leaf('client', USERS.cert, 'ca');
  leaf('mallory', 'mallory', 'ca');
  leaf('stranger', USERS.cert, 'otherca');
  // Expired: `openssl ca` can set dates in the past.
  writeFileSync(p('ca.cnf'), '[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\ndefault_md = sha256\npolicy = any\ncopy_extensions = none\n[any]\ncommonName = supplied\n');
  writeFileSync(p('index.txt'), '');
  writeFileSync(p('serial'), '01\n');
  openssl(['req', ...EC, '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', `/CN=${USERS.cert}`], dir);
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'expired.csr', '-out', 'expired.pem',
    '-startdate', '20000101000000Z', '-enddate', '20010101000000Z'], dir);
  return {
    dir, caCert: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'),
    clientCert: p('client.pem'), clientKey: p('client.key'), expiredCert: p('expired.pem'), expiredKey: p('expired.key'),
    wrongUserCert: p('mallory.pem'), wrongUserKey: p('mallory.key'), otherCaCert: p('otherca.pem'),
    strangerCert: p('stranger.pem'), strangerKey: p('stranger.key'),
  };
}

function postgresIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const f of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, f.name);
    if (f.isDirectory()) chownTree(child, uid, gid);
    else chownSync(child, uid, gid);
  }
}

export interface ClusterOptions {
  /** Default false: tests need no crash durability of PostgreSQL itself (Syncgate's crashes are what they test). */
  fsync?: boolean;
}

export async function startPgCluster(opts: ClusterOptions = {}): Promise<PgCluster> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const certs = makeCerts(join(dir));
  let port = await freePort();
  const ids = asRoot ? postgresIds() : undefined;
  if (ids) chownTree(dir, ids.uid, ids.gid);
  chmodSync(dir, 0o755); // the test process (root or not) reads the client certificates
  chmodSync(certs.serverKey, 0o600);
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '-A', 'trust', '--no-sync']);
  appendFileSync(join(data, 'postgresql.conf'), [
    // 127.0.0.2 too: a name the server certificate does not list (host name mismatch tests).
    `listen_addresses = '127.0.0.1,127.0.0.2'`,
    `unix_socket_directories = '${dir}'`,
    'ssl = on',
    `ssl_cert_file = '${certs.serverCert}'`,
    `ssl_key_file = '${certs.serverKey}'`,
    `ssl_ca_file = '${certs.caCert}'`,
    `fsync = ${opts.fsync ? 'on' : 'off'}`,
    'max_connections = 200',
    '',
  ].join('\n'));
  writeFileSync(join(data, 'pg_hba.conf'), [
    'local all all trust',
    `hostssl all ${USERS.cert} 127.0.0.0/8 cert`,
    'hostssl all all 127.0.0.0/8 scram-sha-256',
    'host all all 127.0.0.0/8 scram-sha-256',
    '',
  ].join('\n'));
  if (ids) chownTree(data, ids.uid, ids.gid);

  let running = false;
  const pgCtl = (args: string[]) => run(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  const start = async (ssl = true) => {
    await pgCtl(['-l', logFile, '-w', '-t', '60', '-o', `-p ${port}${ssl ? '' : ' -c ssl=off'}`, 'start']);
    running = true;
  };
  // If the test process dies without `after`, still take the server down. The test runner ends a
  // file that outlives its time limit with SIGTERM, which skips 'exit' handlers unless it is caught.
  const onExit = () => {
    if (running) spawnSync(asRoot ? 'runuser' : join(bin, 'pg_ctl'), asRoot ? ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'] : ['-D', data, '-m', 'immediate', 'stop']);
    rmSync(dir, { recursive: true, force: true });
  };
  const onSigterm = () => process.exit(143);
  process.once('exit', onExit);
  process.once('SIGTERM', onSigterm);
  const forget = () => { process.removeListener('exit', onExit); process.removeListener('SIGTERM', onSigterm); };

  const admin = async (sql: string, params?: unknown[]) => {
    const c = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      return await c.query(sql, params);
    } finally {
      await c.end();
    }
  };
  try {
    // Another test file may take the free port between our check and the bind: try a few.
    for (let attempt = 1; ; attempt++) {
      try {
        await start();
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
        port = await freePort();
      }
    }
    await admin(`CREATE DATABASE ${DB_NAME}`);
    await admin(`CREATE ROLE ${USERS.cert} LOGIN`);
    await admin(`CREATE ROLE ${USERS.password} LOGIN PASSWORD '${PASSWORD}'`);
    await admin(`CREATE ROLE ${USERS.noPermission} LOGIN PASSWORD '${PASSWORD}'`);
    await admin(`GRANT CREATE ON DATABASE ${DB_NAME} TO ${USERS.cert}, ${USERS.password}`);
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    onExit();
    forget();
    throw new Error(`cannot start the test PostgreSQL: ${(err as Error).message}\n${log}`);
  }

  return {
    host: '127.0.0.1', port, dir, certs,
    url: (user?: string, password?: string) =>
      `postgres://${user ? `${user}${password ? `:${password}` : ''}@` : ''}127.0.0.1:${port}/${DB_NAME}`,
    admin: async (sql, params) => {
      // The admin connects to the test database itself.
      const c = new pg.Client({ host: dir, port, user: 'postgres', database: DB_NAME });
      await c.connect();
      try {
        return await c.query(sql, params);
      } finally {
        await c.end();
      }
    },
    async pause(mode = 'fast') {
      await pgCtl(['-m', mode, '-w', 'stop']);
      running = false;
    },
    async resume(o = {}) {
      await start(o.ssl !== false);
    },
    async stop() {
      if (running) await pgCtl(['-m', 'immediate', '-w', 'stop']).catch(() => {});
      running = false;
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}

// ---- Syncgate nodes (the real CLI, one process each) on the cluster ----------------------------

const BIN = join(import.meta.dirname, '../../bin/syncgate.js');

export interface Node {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  output(): string;
  /** Sends the signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A config file for one node: ephemeral ports and these databases. */
export async function nodeConfig(dir: string, databases: Record<string, unknown>): Promise<{ path: string; publicPort: number; adminPort: number }> {
  const [publicPort, adminPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const path = join(dir, `node-${publicPort}.json`);
  writeFileSync(path, JSON.stringify({
    interface: `127.0.0.1:${publicPort}`, adminInterface: `127.0.0.1:${adminPort}`, metricsInterface: `127.0.0.1:${metricsPort}`,
    logging: { console: { log_level: 'info', log_keys: ['*'] } }, databases,
  }));
  return { path, publicPort, adminPort };
}

/** Runs the CLI until it exits (a start-up failure): its exit code and stderr. */
export function runCliToExit(configPath: string, timeoutMs = 30_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.resume();
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`syncgate did not exit:\n${stderr}`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

/**
 * Starts a node and resolves once its public port answers. Its ports come from `freePort`, so
 * another test process may bind one first: then the node exits with EADDRINUSE (and a probe could
 * even reach that other server), so a node that dies just after answering, or before, is started
 * again on new ports.
 */
export async function startNode(dir: string, databases: Record<string, unknown>): Promise<Node> {
  return startNodeWith(() => nodeConfig(dir, databases));
}

/** A 3.x start-up file for one node: ephemeral ports plus these sections (`bootstrap`, ...). */
export async function bootstrapNodeConfig(dir: string, sections: Record<string, unknown>): Promise<{ path: string; publicPort: number; adminPort: number }> {
  const [publicPort, adminPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const path = join(dir, `node-${publicPort}.json`);
  writeFileSync(path, JSON.stringify({
    logging: { console: { log_level: 'info', log_keys: ['*'] } }, ...sections,
    api: { public_interface: `127.0.0.1:${publicPort}`, admin_interface: `127.0.0.1:${adminPort}`, metrics_interface: `127.0.0.1:${metricsPort}`, ...(sections.api as object) },
  }));
  return { path, publicPort, adminPort };
}

/** Starts a node from a 3.x start-up file (persistent mode): its databases come from `bootstrap.server`. */
export async function startBootstrapNode(dir: string, sections: Record<string, unknown>): Promise<Node> {
  return startNodeWith(() => bootstrapNodeConfig(dir, sections));
}

async function startNodeWith(makeConfig: () => Promise<{ path: string; publicPort: number; adminPort: number }>): Promise<Node> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodeOnce(await makeConfig());
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

async function startNodeOnce(cfg: { path: string; publicPort: number; adminPort: number }): Promise<Node> {
  const child = spawn(process.execPath, [BIN, cfg.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<void>((r) => child.once('close', () => r())); // 'close': its output is all read
  // Not left serving (and holding PostgreSQL connections) when the test process ends without `after`.
  const killOnExit = () => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
  const publicUrl = `http://127.0.0.1:${cfg.publicPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) { await exited; throw new Error(`syncgate exited early (${child.exitCode}):\n${out}`); }
    try {
      if ((await fetch(`${publicUrl}/`)).status === 200) {
        // The public listener binds last: if it lost its port, the process is about to exit.
        await new Promise((r) => setTimeout(r, 150));
        if (child.exitCode === null) break;
        continue;
      }
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`syncgate did not start:\n${out}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child, publicUrl, adminUrl: `http://127.0.0.1:${cfg.adminPort}`, output: () => out,
    kill: (signal = 'SIGTERM') => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill(signal);
    }),
  };
}

/** Starts a real gateway on ephemeral loopback ports for a test, and tears it down. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/index.ts';
import { Gateway, type GatewayOptions } from '../../src/gateway.ts';
import { Logger } from '../../src/log/index.ts';

export interface TestGateway {
  gateway: Gateway;
  /** Public API base URL, e.g. http://127.0.0.1:12345 */
  publicUrl: string;
  adminUrl: string;
  metricsUrl: string;
  logs: string[];
  dir: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The `databases` section; default: one in-memory database "db". */
  databases?: Record<string, Record<string, unknown>>;
  /** Extra top-level config keys. */
  config?: Record<string, unknown>;
  maxBodyBytes?: number;
  /**
   * Tests of the plain document API run as an open database (GUEST with every channel, the way
   * Sync Gateway's sample configs do) unless they configure users themselves. Set false to leave
   * GUEST disabled.
   */
  openGuest?: boolean;
  /**
   * A 3.x start-up file instead of a 2.x one (persistent mode). `bootstrap.server` defaults to a
   * SQLite directory in the test's temp folder; `databases` is then ignored.
   */
  bootstrap?: Record<string, unknown>;
  /** JWT provider fetching (a test CA, a short JWKS re-fetch cooldown). */
  jwt?: GatewayOptions['jwt'];
}

const OPEN_GUEST = { GUEST: { disabled: false, admin_channels: ['*'] } };

export async function startGateway(opts: StartOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-test-'));
  const databases: Record<string, Record<string, unknown>> = {};
  for (const [name, db] of Object.entries(opts.databases ?? { db: { server: 'memory:' } })) {
    databases[name] = opts.openGuest !== false && db.users === undefined ? { ...db, users: OPEN_GUEST } : db;
  }
  const config = opts.bootstrap
    ? parseConfigText(JSON.stringify({ ...opts.bootstrap, bootstrap: { server: `sqlite:${join(dir, 'data')}`, ...(opts.bootstrap.bootstrap as object) } }), 'test bootstrap config')
    : parseConfigText(JSON.stringify({ ...opts.config, databases }), 'test config');
  const logs: string[] = [];
  const gateway = new Gateway(config, {
    logger: new Logger({ level: 'debug', write: (l) => logs.push(l) }),
    interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0', maxBodyBytes: opts.maxBodyBytes, jwt: opts.jwt,
  });
  const addrs = await gateway.start();
  const scheme = opts.config?.SSLCert ? 'https' : 'http';
  return {
    gateway, logs, dir,
    publicUrl: `${scheme}://127.0.0.1:${addrs.public.port}`,
    adminUrl: `${scheme}://127.0.0.1:${addrs.admin.port}`,
    metricsUrl: `${scheme}://127.0.0.1:${addrs.metrics.port}`,
    async stop() {
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** fetch + JSON for tests: returns status, headers and parsed body (or text when not JSON). */
export async function req(url: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) {
    rest.body = JSON.stringify(json);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  const res = await fetch(url, { ...rest, headers });
  const text = await res.text();
  let body: any = text;
  try { body = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body, text };
}

/**
 * What database `db` holds, read through the admin port: fuzz tests compare it before and after a
 * hostile request to show that a rejected request wrote nothing.
 */
export async function storedState(gw: TestGateway): Promise<{ seq: unknown; docs: number; changes: string }> {
  const info = await req(`${gw.adminUrl}/db/`);
  const all = await req(`${gw.adminUrl}/db/_all_docs`);
  const changes = await req(`${gw.adminUrl}/db/_changes?style=all_docs`);
  return { seq: info.body.update_seq, docs: all.body.rows.length, changes: changes.text };
}

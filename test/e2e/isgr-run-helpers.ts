/** Shared pieces of the active replicator tests: gateways, definitions, waiting for states. */
import { createReplicatorWith } from '../../src/replication/active/index.ts';
import type { ActiveReplicator, ReplicationConfig, ReplicatorSnapshot, ReplicatorState } from '../../src/replication/isgr/types.ts';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

export { req, startGateway, type TestGateway };

/** A gateway with one in-memory database `db`, admin-open GUEST, conflicts allowed (the default). */
export function startDbGateway(db: Record<string, unknown> = {}): Promise<TestGateway> {
  return startGateway({ databases: { db: { server: 'memory:', ...db } } });
}

export interface Running {
  rep: ActiveReplicator;
  logs: string[];
}

/** A replicator on `local`'s db towards `remoteUrl` (e.g. `${b.adminUrl}/db`), with test backoff. */
export function replicator(local: TestGateway, over: Partial<ReplicationConfig> & { remote: string }, knobs = { firstBackoffMs: 100, giveUpMs: 5_000 }): Running {
  const config: ReplicationConfig = {
    replication_id: 'r1', direction: 'pushAndPull', continuous: false, purge_on_removal: false,
    conflict_resolution_type: 'default', batch_size: 200, max_backoff_time: 5, initial_state: 'running', adhoc: false,
    ...over,
  };
  const db = local.gateway.get('db');
  if (!db) throw new Error('no db');
  const logs: string[] = [];
  const auth = local.gateway.authFor('db');
  const rep = createReplicatorWith(knobs)(db, config, {
    log: (level, msg) => logs.push(`${level}: ${msg}`),
    loadUser: auth ? (name) => auth.principals.loadUser(name) : undefined,
  });
  return { rep, logs };
}

/** Resolves with the snapshot once the replicator is in `state` (checked on every change). */
export function waitState(rep: ActiveReplicator, state: ReplicatorState | ReplicatorState[], timeoutMs = 60_000, logs?: string[]): Promise<ReplicatorSnapshot> {
  const want = Array.isArray(state) ? state : [state];
  return new Promise((resolve, reject) => {
    const check = (s: ReplicatorSnapshot) => {
      if (!want.includes(s.state)) return false;
      clearTimeout(timer);
      off();
      resolve(s);
      return true;
    };
    const off = rep.onChange((s) => { check(s); });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`replicator not ${want.join('/')} after ${timeoutMs} ms: ${JSON.stringify(rep.snapshot())}\n${(logs ?? []).slice(-30).join('\n')}`));
    }, timeoutMs);
    check(rep.snapshot());
  });
}

/** Runs a one-shot replication to completion and returns its final snapshot. */
export async function runOnce(local: TestGateway, over: Partial<ReplicationConfig> & { remote: string }): Promise<ReplicatorSnapshot & { logs: string[] }> {
  const { rep, logs } = replicator(local, { ...over, continuous: false });
  rep.start(); // synchronous to `starting`: the wait below cannot see the state from before
  const s = await waitState(rep, ['stopped', 'error'], 60_000, logs);
  if (s.state !== 'stopped') throw new Error(`replication ended in ${s.state}: ${s.error_message}\n${logs.slice(-30).join('\n')}`);
  return { ...s, logs };
}

/** Polls `fn` until it returns a truthy value (generous bound; the event, not the timing, is tested). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { last = err; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function putDoc(gw: TestGateway, id: string, body: Record<string, unknown>): Promise<string> {
  const r = await req(`${gw.adminUrl}/db/${encodeURIComponent(id)}`, { method: 'PUT', json: body });
  if (r.status !== 201) throw new Error(`PUT ${id}: ${r.status} ${r.text}`);
  return r.body.rev as string;
}

/** id → winning rev (deleted ones as `rev (deleted)`), through the admin changes feed. */
export async function winners(gw: TestGateway): Promise<Map<string, string>> {
  const r = await req(`${gw.adminUrl}/db/_changes`);
  const out = new Map<string, string>();
  for (const e of r.body.results as { id: string; deleted?: boolean; changes: { rev: string }[] }[]) {
    if (e.id.startsWith('_user/')) continue;
    out.set(e.id, e.changes[0].rev + (e.deleted ? ' (deleted)' : ''));
  }
  return out;
}

export async function getDoc(gw: TestGateway, id: string, query = ''): Promise<{ status: number; body: any }> {
  return req(`${gw.adminUrl}/db/${encodeURI(id)}${query}`);
}

/** A local (`_local/`) document of db, read from the database (checkpoints; ids may hold `/`). */
export async function localDoc(gw: TestGateway, id: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await gw.gateway.get('db')!.getLocal(id)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

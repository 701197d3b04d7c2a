/**
 * ISGR on PostgreSQL with several gateway nodes sharing one database: each replication runs on
 * exactly one node (the nodes share them fairly), every node reports every replication (its own
 * live, the others' from their persisted snapshots) and acts on any of them, and a node that stops
 * (gracefully, or SIGKILLed: its lease lapses) has its replications taken over by the others.
 * The lease is shortened through the registry's option (1.5 s instead of 30 s).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { startPgCluster } from '../helpers/postgres.ts';
import { req } from '../helpers/gateway.ts';
import { eventually, type IsgrGateway, startIsgrGateway } from './isgr-api-support.ts';

const LEASE_MS = 1500;
const cluster = await startPgCluster();
const c = cluster.certs;
const databases = { db: { server: cluster.url(), certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert } };
const IDS = ['r1', 'r2', 'r3', 'r4'];
let a: IsgrGateway;
let b: IsgrGateway;
let child: ChildProcess | undefined;
/** Every moment (sampled) at which a replication ran on both in-process nodes at once. */
const overlaps: string[] = [];
let sampler: NodeJS.Timeout | undefined;

before(async () => {
  [a, b] = await Promise.all([startIsgrGateway(databases, { leaseMs: LEASE_MS }), startIsgrGateway(databases, { leaseMs: LEASE_MS })]);
  sampler = setInterval(() => {
    for (const [id, nodes] of runners([a, b])) if (nodes.length > 1) overlaps.push(`${id} on ${nodes.join(' and ')}`);
  }, 5);
});
after(async () => {
  clearInterval(sampler);
  assert.deepEqual(overlaps, [], 'no replication ever ran on two nodes at once');
  child?.kill('SIGKILL');
  await Promise.all([a?.stop().catch(() => undefined), b?.stop()]);
  await cluster.stop();
});

/** Which node runs each replication now, from the nodes' own replicators. */
function runners(nodes: IsgrGateway[]): Map<string, string[]> {
  const out = new Map<string, string[]>(IDS.map((id) => [id, []]));
  for (const n of nodes) {
    for (const id of IDS) if (n.factory.latest(id)?.snapshot().state === 'running' && n.gateway.replications('db')!.node.isLocal(id)) out.get(id)!.push(n.gateway.nodeId);
  }
  return out;
}

describe('ISGR on two nodes of one PostgreSQL', () => {
  it('runs each replication on exactly one node, shared fairly', async () => {
    for (const id of IDS) {
      assert.equal((await req(`${a.adminUrl}/db/_replication/${id}`, { method: 'PUT', json: { remote: 'http://central.example:4984/db', direction: 'pull', continuous: true } })).status, 201);
    }
    await eventually('every replication running on one node, two per node', () => {
      const r = runners([a, b]);
      const ok = IDS.every((id) => r.get(id)!.length === 1) && [a, b].every((n) => IDS.filter((id) => r.get(id)![0] === n.gateway.nodeId).length === 2);
      return ok ? r : undefined;
    });
    // Both nodes were up before the replications were made: each was started once, on one node.
    for (const id of IDS) assert.equal((a.factory.starts.get(id) ?? 0) + (b.factory.starts.get(id) ?? 0), 1, id);
    assert.deepEqual(overlaps, []);
    const list = (await req(`${b.adminUrl}/db/_replication/`)).body;
    const r = runners([a, b]);
    for (const id of IDS) {
      const runner = r.get(id)![0];
      assert.equal(list[id].assigned_node, `${runner} (${runner === b.gateway.nodeId ? 'local' : 'non-local'})`);
    }
    const st = (await req(`${a.adminUrl}/_status`)).body.databases.db.cluster;
    assert.deepEqual(Object.keys(st.nodes).sort(), [a.gateway.nodeId, b.gateway.nodeId].sort());
    const localOnA = (await req(`${a.adminUrl}/db/_replicationStatus/?localOnly=true`)).body as { replication_id: string }[];
    assert.equal(localOnA.length, 2);
  });

  it('shows another node\'s replication from its persisted snapshot, and acts on it from any node', async () => {
    const id = IDS.find((x) => a.gateway.replications('db')!.node.isLocal(x))!;
    a.factory.latest(id)!.report('running', { docs_read: 11, last_seq_pull: '42' });
    await eventually('B to see A\'s counters', async () => {
      const s = (await req(`${b.adminUrl}/db/_replicationStatus/${id}`)).body;
      return s.docs_read === 11 ? s : undefined;
    });
    assert.deepEqual((await req(`${b.adminUrl}/db/_replicationStatus/${id}`)).body, { replication_id: id, status: 'running', docs_read: 11, last_seq_pull: '42' });
    assert.equal((await req(`${b.adminUrl}/db/_replicationStatus/${id}?action=stop`, { method: 'PUT' })).body.status, 'stopping');
    await eventually('A to stop it', () => (a.factory.latest(id)!.snapshot().state === 'stopped' ? true : undefined));
    await eventually('B to show it stopped', async () => ((await req(`${b.adminUrl}/db/_replicationStatus/${id}`)).body.status === 'stopped' ? true : undefined));
    assert.equal((await req(`${b.adminUrl}/db/_replicationStatus/${id}?action=start`, { method: 'PUT' })).body.status, 'starting');
    await eventually('A to run it again', () => (a.factory.latest(id)!.snapshot().state === 'running' ? true : undefined));
  });

  it('a node that stops hands its replications to the other', async () => {
    const fromA = IDS.filter((x) => a.gateway.replications('db')!.node.isLocal(x));
    assert.equal(fromA.length, 2);
    const startsOnB = new Map(fromA.map((id) => [id, b.factory.starts.get(id) ?? 0]));
    await a.stop();
    for (const id of fromA) assert.equal(a.factory.latest(id)!.snapshot().state, 'stopped');
    await eventually('B to run all four', () => (IDS.every((id) => runners([b]).get(id)!.length === 1) ? true : undefined));
    for (const id of fromA) assert.equal(b.factory.starts.get(id), startsOnB.get(id)! + 1, `${id} started once on B`);
    const list = (await req(`${b.adminUrl}/db/_replication/`)).body;
    for (const id of IDS) assert.equal(list[id].assigned_node, `${b.gateway.nodeId} (local)`);
  });

  it('a SIGKILLed node\'s replications are taken over once its lease lapses', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'isgr-api-node.ts'), JSON.stringify({ databases, leaseMs: LEASE_MS })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    const ready = await eventually('the child node', () => {
      const m = /^READY (.*)$/m.exec(out);
      return m ? JSON.parse(m[1]) as { admin: string; node: string } : undefined;
    }, 60_000);
    // The newcomer gets its fair share: B hands two over.
    const taken = await eventually('the child node to run two', () => {
      const ids = [...out.matchAll(/^START (\S+)$/gm)].map((m) => m[1]);
      return ids.length === 2 ? ids : undefined;
    });
    await eventually('B to run only the other two', () => (IDS.filter((id) => runners([b]).get(id)!.length === 1).length === 2 ? true : undefined));
    const st = (await req(`${b.adminUrl}/db/_replication/`)).body;
    for (const id of taken) assert.equal(st[id].assigned_node, `${ready.node} (non-local)`);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    await eventually('B to take them back after the lease lapses', () => (IDS.every((id) => runners([b]).get(id)!.length === 1) ? true : undefined));
    const after = (await req(`${b.adminUrl}/db/_replication/`)).body;
    for (const id of IDS) assert.equal(after[id].assigned_node, `${b.gateway.nodeId} (local)`);
  });
});

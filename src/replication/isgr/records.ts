/**
 * What ISGR keeps in the database's storage, so that every node of one PostgreSQL sees the same
 * (Sync Gateway keeps the like in its `sgrCluster` metadata key). All of it lives in the Store's
 * compare-and-set job records (`getJobRecord` / `putJobRecord`), which is what makes one change win
 * when two nodes race:
 * - `isgr:cluster`: the cluster uuid and every definition with its target state;
 * - `isgr:lease:<id>`: which node runs a replication, renewed by its heartbeat;
 * - `isgr:status:<id>`: the last status snapshot of its replicator, so any node can report it;
 * - `isgr:nodes`: the live nodes and their heartbeats (node listing, fair shares).
 * A definition's `generation` is new on every create: a lease or snapshot of an earlier replication
 * of the same id (deleted, then created again) is not taken for the new one's.
 */
import { randomUUID } from 'node:crypto';
import type { Store } from '../../storage/store.ts';
import type { ReplicationConfig, ReplicatorSnapshot } from './types.ts';

export type TargetState = 'running' | 'stopped' | 'resetting';

export interface ClusterEntry {
  config: ReplicationConfig;
  target_state: TargetState;
  generation: string;
  /** Bumped by every `action=start`: the assigned node (re)starts the replicator when it moves. */
  start_seq: number;
}

export interface ClusterRecord {
  cluster_uuid: string;
  replications: Record<string, ClusterEntry>;
}

export interface LeaseRecord {
  /** '' when released. */
  node: string;
  /** ms since the epoch of the holder's last renewal. */
  heartbeat: number;
  generation: string;
}

export interface StatusRecord {
  generation: string;
  node: string;
  snapshot: ReplicatorSnapshot;
}

export interface NodeInfo { uuid: string; host: string; heartbeat: number }
export type NodesRecord = Record<string, NodeInfo>;

const CLUSTER = 'isgr:cluster';
const NODES = 'isgr:nodes';
const leaseKey = (id: string) => `isgr:lease:${id}`;
const statusKey = (id: string) => `isgr:status:${id}`;

/** A record as read: its text is the compare-and-set token for the next write. */
export interface Held<T> { text: string | undefined; value: T }

export class IsgrRecords {
  constructor(private readonly store: Store) {}

  private async read<T>(key: string, empty: () => T): Promise<Held<T>> {
    const text = await this.store.getJobRecord(key);
    if (text === undefined || text === '') return { text, value: empty() };
    return { text, value: JSON.parse(text) as T };
  }

  /**
   * Read-modify-write with compare-and-set, retried while another node wins the race. `change`
   * returns the new value, or undefined to write nothing; it may throw (an HttpError) to refuse.
   */
  private async update<T, R>(key: string, empty: () => T, change: (v: T) => { value: T; result: R } | undefined): Promise<R | undefined> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const cur = await this.read(key, empty);
      const next = change(structuredClone(cur.value));
      if (!next) return undefined;
      if (await this.store.putJobRecord(key, cur.text, JSON.stringify(next.value))) return next.result;
    }
    throw new Error(`${key}: too many concurrent updates`);
  }

  cluster(): Promise<Held<ClusterRecord>> {
    return this.read<ClusterRecord>(CLUSTER, () => ({ cluster_uuid: '', replications: {} }));
  }

  /** Changes the cluster record (a cluster uuid is made on first write). */
  updateCluster<R>(change: (c: ClusterRecord) => R | undefined): Promise<R | undefined> {
    return this.update<ClusterRecord, R>(CLUSTER, () => ({ cluster_uuid: '', replications: {} }), (c) => {
      if (!c.cluster_uuid) c.cluster_uuid = randomUUID();
      const result = change(c);
      return result === undefined ? undefined : { value: c, result };
    });
  }

  lease(id: string): Promise<Held<LeaseRecord>> {
    return this.read<LeaseRecord>(leaseKey(id), () => ({ node: '', heartbeat: 0, generation: '' }));
  }

  /** Writes a lease if it is still `expected`; false: another node changed it first. */
  async putLease(id: string, expected: string | undefined, lease: LeaseRecord): Promise<string | undefined> {
    const text = JSON.stringify(lease);
    return (await this.store.putJobRecord(leaseKey(id), expected, text)) ? text : undefined;
  }

  async status(id: string): Promise<StatusRecord | undefined> {
    const text = await this.store.getJobRecord(statusKey(id));
    return text ? JSON.parse(text) as StatusRecord : undefined;
  }

  /** Last writer wins: only the lease holder writes a replication's snapshot. */
  async putStatus(id: string, rec: StatusRecord): Promise<void> {
    await this.update<StatusRecord | null, true>(statusKey(id), () => null, () => ({ value: rec, result: true }));
  }

  nodes(): Promise<Held<NodesRecord>> {
    return this.read<NodesRecord>(NODES, () => ({}));
  }

  /** The live nodes (those that beat within `staleMs`). */
  async liveNodes(staleMs: number): Promise<NodesRecord> {
    const n = (await this.nodes()).value;
    const now = Date.now();
    for (const [k, v] of Object.entries(n)) if (v.heartbeat < now - staleMs) delete n[k];
    return n;
  }

  /** This node's heartbeat in the node list; nodes silent for `staleMs` are dropped. */
  async heartbeat(node: NodeInfo | undefined, remove: string | undefined, staleMs: number): Promise<NodesRecord> {
    let out: NodesRecord = {};
    await this.update<NodesRecord, true>(NODES, () => ({}), (n) => {
      const now = Date.now();
      for (const [k, v] of Object.entries(n)) if (v.heartbeat < now - staleMs) delete n[k];
      if (remove) delete n[remove];
      if (node) n[node.uuid] = node;
      out = n;
      return { value: n, result: true };
    });
    return out;
  }
}

/**
 * A database's Inter-Sync Gateway Replications (spec sg3-admin.md §5): the definitions and their
 * target states, shared by every node through the database's storage (records.ts), the admin API's
 * operations on them with Sync Gateway's rules and messages (db/sg_replicate_cfg.go), and this
 * node's part in running them (node.ts). It lives and dies with its Database: the composition root
 * starts it once the database is built and stops it when the database closes or is reloaded.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '../../db/database.ts';
import { HttpError } from '../../errors.ts';
import { definitionJson, redactDefinition, upsertDefinition } from './definition.ts';
import { ReplicationNode } from './node.ts';
import { type ClusterEntry, type ClusterRecord, IsgrRecords, type TargetState } from './records.ts';
import { type StatusView, statusView, transitionState } from './status.ts';
import type { CreateReplicator, ReplicatorHooks, ReplicatorSnapshot } from './types.ts';

/** Sync Gateway's heartbeat TTL: a node that stopped renewing for this long is taken as gone. */
export const DEFAULT_LEASE_MS = 30_000;

export interface RegistryOptions {
  db: Database;
  /** This gateway process's node id (the same for all its databases and across reloads). */
  nodeId: string;
  createReplicator: CreateReplicator;
  /** Loads a `run_as` user with its current access (the database's Principals). */
  loadUser?: ReplicatorHooks['loadUser'];
  /** Lease length; tests shorten it. */
  leaseMs?: number;
  /** `replications` of the database config (id → definition as written). */
  configReplications?: Record<string, Record<string, unknown>>;
  /** `sgreplicate_enabled: false`: definitions and status are served, but this node runs none. */
  takesPart?: boolean;
  log(level: 'info' | 'warn' | 'debug', msg: string): void;
}

export interface StatusOptions {
  activeOnly: boolean;
  localOnly: boolean;
  includeError: boolean;
  includeConfig: boolean;
}

export const DEFAULT_STATUS_OPTIONS: StatusOptions = { activeOnly: false, localOnly: false, includeError: true, includeConfig: false };

const notFound = () => new HttpError(404, 'missing');

export class ReplicationRegistry {
  private readonly records: IsgrRecords;
  readonly node: ReplicationNode;

  constructor(private readonly o: RegistryOptions) {
    this.records = new IsgrRecords(o.db.store);
    this.node = new ReplicationNode({
      db: o.db, records: this.records, nodeId: o.nodeId, leaseMs: o.leaseMs ?? DEFAULT_LEASE_MS, createReplicator: o.createReplicator, loadUser: o.loadUser, takesPart: o.takesPart, log: o.log,
    });
  }

  /**
   * Stores the config file's replications (Sync Gateway 3.1 upserts them at every load: the
   * definition is replaced, its target state and assignment kept; new ones start as `initial_state`
   * says), then starts taking part in running them.
   */
  async start(): Promise<void> {
    const fromConfig = Object.entries(this.o.configReplications ?? {});
    if (fromConfig.length) {
      const defs = fromConfig.map(([id, raw]) => upsertDefinition(id, undefined, raw, { fromConfig: true }));
      await this.records.updateCluster((c) => {
        for (const config of defs) {
          const cur = c.replications[config.replication_id];
          c.replications[config.replication_id] = cur
            ? { ...cur, config }
            : { config, target_state: config.initial_state === 'stopped' ? 'stopped' : 'running', generation: randomUUID(), start_seq: 0 };
        }
        return true;
      });
    }
    this.node.start();
    await this.node.kick();
  }

  stop(): Promise<void> {
    return this.node.stop();
  }

  private async entry(id: string): Promise<{ cluster: ClusterRecord; entry: ClusterEntry }> {
    const cluster = (await this.records.cluster()).value;
    const entry = cluster.replications[id];
    if (!entry) throw notFound();
    return { cluster, entry };
  }

  /** `assigned_node` as Sync Gateway shows it: the node uuid and whether it is this one. */
  private async assignedNode(id: string, entry: ClusterEntry): Promise<string> {
    const lease = (await this.records.lease(id)).value;
    const node = this.node.leaseLive(lease, entry, id) ? lease.node : '';
    return `${node}${node !== '' && node === this.o.nodeId ? ' (local)' : ' (non-local)'}`;
  }

  /** `GET /{db}/_replication/`: id → redacted definition with `cluster_uuid`, `assigned_node`, `target_state`. */
  async definitions(): Promise<Record<string, Record<string, unknown>>> {
    const cluster = (await this.records.cluster()).value;
    const out: Record<string, Record<string, unknown>> = {};
    for (const id of Object.keys(cluster.replications).sort()) {
      const e = cluster.replications[id];
      out[id] = {
        ...definitionJson(redactDefinition(e.config)), cluster_uuid: cluster.cluster_uuid,
        assigned_node: await this.assignedNode(id, e), target_state: e.target_state,
      };
    }
    return out;
  }

  /** `GET /{db}/_replication/{id}`: the redacted definition alone (Sync Gateway returns the bare config here). */
  async definition(id: string): Promise<Record<string, unknown>> {
    return definitionJson(redactDefinition((await this.entry(id)).entry.config));
  }

  /** `PUT /{db}/_replication/{id}` and `POST /{db}/_replication/`; true when created. */
  async upsert(id: string, body: Record<string, unknown>): Promise<boolean> {
    if (id === '') throw new HttpError(400, 'Replication ID is required');
    const existing = (await this.records.cluster()).value.replications[id];
    if (existing && (await this.status(id, DEFAULT_STATUS_OPTIONS))?.status !== 'stopped') {
      throw new HttpError(400, 'Replication must be stopped before updating config');
    }
    // Validated before anything is written; a refused body changes nothing.
    const config = upsertDefinition(id, existing?.config, body);
    const created = await this.records.updateCluster((c) => {
      const cur = c.replications[id];
      if (cur) {
        if (cur.generation !== existing?.generation) throw new HttpError(409, 'Replication was changed concurrently; try again');
        cur.config = upsertDefinition(id, cur.config, body);
        return false;
      }
      if (existing) throw new HttpError(409, 'Replication was deleted concurrently; try again');
      c.replications[id] = { config, target_state: config.initial_state === 'stopped' ? 'stopped' : 'running', generation: randomUUID(), start_seq: 0 };
      return true;
    });
    await this.node.kick();
    return created === true;
  }

  /** `DELETE /{db}/_replication/{id}`: the node running it stops it. */
  async remove(id: string): Promise<void> {
    const removed = await this.records.updateCluster((c) => {
      if (!c.replications[id]) return undefined;
      delete c.replications[id];
      return true;
    });
    if (!removed) throw notFound();
    await this.node.kick();
  }

  /**
   * One replication's status (Sync Gateway's `GetReplicationStatus`): this node's replicator when it
   * runs here, else the last snapshot its node persisted, else `unassigned` (no live node) or the
   * target state. Null when the options filter it out.
   */
  async status(id: string, opts: StatusOptions): Promise<StatusView | null> {
    const { entry } = await this.entry(id);
    const local = this.node.snapshot(id);
    if (opts.localOnly && !local) return null;
    let view: StatusView;
    if (local) view = statusView(id, local.state, local);
    else {
      const rec = await this.records.status(id);
      if (rec && rec.generation === entry.generation) view = statusView(id, rec.snapshot.state, rec.snapshot);
      else {
        const lease = (await this.records.lease(id)).value;
        view = statusView(id, this.node.leaseLive(lease, entry, id) ? entry.target_state : 'unassigned');
      }
    }
    if (opts.includeConfig) {
      const { replication_id: _, ...rest } = view;
      view = { replication_id: id, config: definitionJson(redactDefinition(entry.config)), ...rest };
    }
    if (!opts.includeError && view.status === 'error') return null;
    if (opts.activeOnly && view.status !== 'running') return null;
    return view;
  }

  /** `GET /{db}/_replicationStatus/`: every replication's status that passes the options. */
  async statuses(opts: StatusOptions): Promise<StatusView[]> {
    const cluster = (await this.records.cluster()).value;
    const out: StatusView[] = [];
    for (const id of Object.keys(cluster.replications).sort()) {
      try {
        const s = await this.status(id, opts);
        if (s) out.push(s);
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err; // deleted meanwhile
      }
    }
    return out;
  }

  /** `PUT /{db}/_replicationStatus/{id}?action=start|stop|reset` (Sync Gateway's `PutReplicationStatus`). */
  async act(id: string, action: string): Promise<StatusView> {
    const targets: Record<string, TargetState> = { start: 'running', stop: 'stopped', reset: 'resetting' };
    const target = targets[action];
    if (!target) throw new HttpError(400, `Unrecognized action ${JSON.stringify(action)}.  Valid values are start/stop/reset.`);
    const outcome = await this.records.updateCluster((c) => {
      const e = c.replications[id];
      if (!e) throw notFound();
      if (target === 'running' && e.target_state === 'resetting') throw new HttpError(400, 'Replication cannot be started until reset is complete');
      if (target === 'resetting' && e.target_state === 'running') throw new HttpError(400, 'Replication must be stopped before it can be reset');
      // Stopping an adhoc replication removes it.
      if (target === 'stopped' && e.config.adhoc) { delete c.replications[id]; return 'removed'; }
      e.target_state = target;
      if (target === 'running') e.start_seq++;
      return 'updated';
    });
    if (outcome === 'removed') {
      await this.node.kick();
      return { replication_id: id, status: 'removed' };
    }
    const view = (await this.status(id, DEFAULT_STATUS_OPTIONS))!;
    view.status = transitionState(view.status, target);
    void this.node.kick();
    return view;
  }

  /** `cluster` of `GET /_status`: the uuid, the redacted definitions as stored, the live nodes. */
  async cluster(): Promise<Record<string, unknown>> {
    const cluster = (await this.records.cluster()).value;
    const replications: Record<string, unknown> = {};
    for (const id of Object.keys(cluster.replications).sort()) {
      const e = cluster.replications[id];
      const lease = (await this.records.lease(id)).value;
      replications[id] = {
        ...definitionJson(redactDefinition(e.config)), cluster_uuid: cluster.cluster_uuid,
        assigned_node: this.node.leaseLive(lease, e, id) ? lease.node : '', target_state: e.target_state,
      };
    }
    const nodes: Record<string, { uuid: string; host: string }> = {};
    for (const n of Object.values(this.node.nodes)) nodes[n.uuid] = { uuid: n.uuid, host: n.host };
    return { cluster_uuid: cluster.cluster_uuid, replications, nodes };
  }

  /** What this node runs now, for metrics. */
  localSnapshots(): { id: string; snapshot: ReplicatorSnapshot }[] {
    return this.node.localSnapshots();
  }
}

/**
 * This node's part in running a database's replications. Each replication runs on exactly one node:
 * the one holding its lease (`isgr:lease:<id>`, node id + heartbeat, compare-and-set). A node whose
 * database is Online takes free leases up to its fair share of the live nodes (so a node that joins
 * gets some, and one that leaves hands its own over); it renews what it holds on every tick. A node
 * that stops hands its leases back at once; one that dies stops renewing, and its leases are free
 * once `leaseMs` has passed (Sync Gateway's 30 s heartbeat TTL). On SQLite there is one node: a lease
 * naming another node is a dead process's and is taken at once.
 *
 * The holder builds the replication's `ActiveReplicator` and keeps it aligned with the definition's
 * target state (start / stop / reset), persisting its status snapshots so other nodes can show them.
 */
import { hostname } from 'node:os';
import type { Database } from '../../db/database.ts';
import type { IsgrRecords, ClusterEntry, LeaseRecord, NodesRecord } from './records.ts';
import type { ActiveReplicator, CreateReplicator, ReplicatorHooks, ReplicatorSnapshot } from './types.ts';

/** Snapshots of a running replicator are written at most this often (state changes at once). */
const SNAPSHOT_EVERY_MS = 1000;
/**
 * How long releasing waits for a replicator to stop (it finishes its batch). One that does not stop
 * in time is left to end on its own and its lease is not handed back: other nodes wait for it to
 * lapse rather than run the replication beside it.
 */
const STOP_WAIT_MS = 30_000;

export interface NodeOptions {
  db: Database;
  records: IsgrRecords;
  nodeId: string;
  leaseMs: number;
  createReplicator: CreateReplicator;
  loadUser?: ReplicatorHooks['loadUser'];
  /** `sgreplicate_enabled: false`: this node runs none of the database's replications (default true). */
  takesPart?: boolean;
  log(level: 'info' | 'warn' | 'debug', msg: string): void;
}

interface Local {
  rep: ActiveReplicator;
  generation: string;
  /** The definition it was built from (a change rebuilds it). */
  configText: string;
  leaseText: string;
  lease: LeaseRecord;
  /** The `start_seq` it was last started for. */
  startedSeq?: number;
  /** It has left `stopped` since its last start (a one-shot adhoc replication is removed once back). */
  ran: boolean;
  adhoc: boolean;
  unsubscribe: () => void;
  persistedState?: string;
  persistTimer?: NodeJS.Timeout;
  persisting: Promise<unknown>;
}

export class ReplicationNode {
  private readonly locals = new Map<string, Local>();
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private unwatchState?: () => void;
  private stopped = false;
  private nodeList: NodesRecord = {};
  /** When this node last wrote its heartbeat to the node list (shared storage only). */
  private beatAt = 0;
  private listed = false;
  /** Shared storage (PostgreSQL) can have other live nodes; SQLite cannot. */
  readonly shared: boolean;

  constructor(private readonly o: NodeOptions) {
    this.shared = o.db.store.watch !== undefined;
  }

  get nodeId(): string { return this.o.nodeId; }
  get nodes(): NodesRecord { return this.nodeList; }

  start(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.o.leaseMs / 3)));
    this.timer = setInterval(() => { void this.kick(); }, every);
    this.timer.unref();
    this.unwatchState = this.o.db.onStateChange(() => { void this.kick(); });
  }

  /** Runs one round now (after any round under way); API changes call it so they take effect at once. */
  kick(): Promise<void> {
    const next = this.chain.then(() => this.tick());
    this.chain = next.catch((err) => this.o.log('warn', `replications: ${(err as Error).message}`));
    return this.chain as Promise<void>;
  }

  isLocal(id: string): boolean { return this.locals.has(id); }
  snapshot(id: string): ReplicatorSnapshot | undefined { return this.locals.get(id)?.rep.snapshot(); }
  localSnapshots(): { id: string; snapshot: ReplicatorSnapshot }[] {
    return [...this.locals].map(([id, l]) => ({ id, snapshot: l.rep.snapshot() }));
  }

  /** Whether a lease names a live holder (this node only if it really runs it). */
  leaseLive(lease: LeaseRecord, entry: ClusterEntry, id: string): boolean {
    if (lease.node === '' || lease.generation !== entry.generation) return false;
    if (lease.node === this.o.nodeId) return this.locals.has(id);
    return this.shared && lease.heartbeat >= Date.now() - this.o.leaseMs;
  }

  /** Stops every replicator here and hands the leases back (the database closes or reloads). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unwatchState?.();
    await this.chain;
    for (const [id, l] of [...this.locals]) await this.release(id, l, true);
    if (this.shared && this.listed) await this.o.records.heartbeat(undefined, this.o.nodeId, this.o.leaseMs).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { db, records, nodeId, leaseMs } = this.o;
    const online = db.state === 'Online' && !db.isClosed && this.o.takesPart !== false;
    const cluster = (await records.cluster()).value;
    const now = Date.now();
    await this.beat(online, now);
    for (const [id, l] of [...this.locals]) {
      const e = cluster.replications[id];
      if (!online || !e || e.generation !== l.generation) await this.release(id, l, e !== undefined && e.generation === l.generation);
    }
    if (!online) return;
    const ids = Object.keys(cluster.replications).sort();
    const live = this.shared ? Math.max(1, Object.keys(this.nodeList).length) : 1;
    const share = Math.ceil(ids.length / live);
    for (const id of ids) {
      const e = cluster.replications[id];
      const l = this.locals.get(id);
      if (l) {
        if (now - l.lease.heartbeat >= leaseMs / 3) await this.renew(id, l);
        continue;
      }
      if (this.locals.size >= share) continue;
      const lease = await records.lease(id);
      const v = lease.value;
      const free = v.node === '' || v.node === nodeId || v.generation !== e.generation || !this.shared || v.heartbeat < now - leaseMs;
      if (!free) continue;
      const next = { node: nodeId, heartbeat: now, generation: e.generation };
      const text = await records.putLease(id, lease.text, next);
      if (!text) continue; // another node took it first
      if (v.node && v.node !== nodeId) this.o.log('info', `replication ${id}: taking over from node ${v.node}, whose lease lapsed`);
      this.adopt(id, e, text, next);
    }
    // More than a fair share (another node joined): hand some back for it to take.
    for (const id of [...this.locals.keys()].reverse()) {
      if (this.locals.size <= share) break;
      await this.release(id, this.locals.get(id)!, true);
    }
    for (const [id, l] of [...this.locals]) await this.align(id, l, cluster.replications[id]);
  }

  /**
   * The node list. On SQLite this node is the only one and nothing is written; on shared storage
   * the heartbeat is written a few times per lease (not every round: that would be a write per
   * second per database), and the list read every round.
   */
  private async beat(online: boolean, now: number): Promise<void> {
    const { records, nodeId, leaseMs } = this.o;
    const me = { uuid: nodeId, host: hostname(), heartbeat: now };
    if (!this.shared) { this.nodeList = online ? { [nodeId]: me } : {}; return; }
    if (online && (!this.listed || now - this.beatAt >= leaseMs / 3)) {
      this.nodeList = await records.heartbeat(me, undefined, leaseMs);
      this.beatAt = now;
      this.listed = true;
    } else if (!online && this.listed) {
      this.nodeList = await records.heartbeat(undefined, nodeId, leaseMs);
      this.listed = false;
    } else this.nodeList = await records.liveNodes(leaseMs);
  }

  private adopt(id: string, e: ClusterEntry, leaseText: string, lease: LeaseRecord): Local {
    const rep = this.o.createReplicator(this.o.db, structuredClone(e.config), {
      log: (level, msg) => this.o.log(level, `replication ${id}: ${msg}`),
      ...(this.o.loadUser ? { loadUser: this.o.loadUser } : {}),
    });
    const l: Local = {
      rep, generation: e.generation, configText: JSON.stringify(e.config), leaseText, lease, ran: false, adhoc: e.config.adhoc,
      unsubscribe: () => {}, persisting: Promise.resolve(),
    };
    l.unsubscribe = rep.onChange((s) => this.changed(id, l, s));
    this.locals.set(id, l);
    this.o.log('info', `replication ${id}: assigned to this node (${this.o.nodeId})`);
    return l;
  }

  private changed(id: string, l: Local, s: ReplicatorSnapshot): void {
    if (s.state !== 'stopped') l.ran = true;
    if (s.state !== l.persistedState) {
      clearTimeout(l.persistTimer);
      l.persistTimer = undefined;
      this.persist(id, l, s);
      // A one-shot adhoc replication is removed once it has stopped: the next round does it.
      if (l.adhoc && s.state === 'stopped' && l.ran) void this.kick();
      return;
    }
    l.persistTimer ??= setTimeout(() => { l.persistTimer = undefined; this.persist(id, l, l.rep.snapshot()); }, SNAPSHOT_EVERY_MS);
  }

  private persist(id: string, l: Local, snapshot: ReplicatorSnapshot): Promise<unknown> {
    l.persistedState = snapshot.state;
    l.persisting = l.persisting.then(() => this.o.records.putStatus(id, { generation: l.generation, node: this.o.nodeId, snapshot }))
      .catch((err) => this.o.log('warn', `replication ${id}: cannot save its status: ${(err as Error).message}`));
    return l.persisting;
  }

  private async renew(id: string, l: Local): Promise<void> {
    const next = { ...l.lease, heartbeat: Date.now() };
    const text = await this.o.records.putLease(id, l.leaseText, next);
    if (text) { l.leaseText = text; l.lease = next; return; }
    this.o.log('warn', `replication ${id}: lost its lease (another node took it over); stopping it here`);
    await this.release(id, l, false);
  }

  /** Stops the local replicator; `handBack`: also frees the lease (and keeps the last snapshot). */
  private async release(id: string, l: Local, handBack: boolean): Promise<void> {
    this.locals.delete(id);
    let stopped = true;
    try {
      if (l.rep.snapshot().state !== 'stopped') {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), STOP_WAIT_MS); });
        stopped = await Promise.race([l.rep.stop().then(() => true), late]).finally(() => clearTimeout(timer));
        if (!stopped) this.o.log('warn', `replication ${id}: did not stop within ${STOP_WAIT_MS / 1000} s; its lease is left to lapse`);
      }
    } catch (err) {
      this.o.log('warn', `replication ${id}: stopping: ${(err as Error).message}`);
    }
    l.unsubscribe();
    clearTimeout(l.persistTimer);
    await l.persisting;
    if (!handBack || !stopped) return;
    await this.persist(id, l, l.rep.snapshot());
    await this.o.records.putLease(id, l.leaseText, { node: '', heartbeat: 0, generation: l.generation }).catch(() => undefined);
    this.o.log('info', `replication ${id}: released by this node`);
  }

  /** Brings the local replicator to the definition's target state. */
  private async align(id: string, l: Local, e: ClusterEntry): Promise<void> {
    if (l.configText !== JSON.stringify(e.config)) {
      // Only a stopped replication can be updated; rebuild it from the new definition.
      await this.release(id, l, false);
      l = this.adopt(id, e, l.leaseText, l.lease);
    }
    const state = l.rep.snapshot().state;
    if (e.target_state === 'running') {
      if (l.startedSeq !== e.start_seq) {
        l.startedSeq = e.start_seq;
        // Sync Gateway's alignState: a replicator already starting, running or reconnecting is left alone.
        if (state === 'stopped' || state === 'error') {
          l.ran = false;
          this.o.log('info', `replication ${id}: starting`);
          l.rep.start();
        }
      } else if (e.config.adhoc && l.ran && state === 'stopped') {
        await this.o.records.updateCluster((c) => {
          if (c.replications[id]?.generation !== e.generation) return undefined;
          delete c.replications[id];
          return true;
        });
        this.o.log('info', `replication ${id}: adhoc replication finished; removed`);
        await this.release(id, l, false);
      }
    } else if (e.target_state === 'stopped') {
      l.startedSeq = undefined;
      if (state !== 'stopped') { this.o.log('info', `replication ${id}: stopping`); await l.rep.stop(); }
    } else {
      l.startedSeq = undefined;
      if (state !== 'stopped') await l.rep.stop();
      this.o.log('info', `replication ${id}: resetting its checkpoints and counters`);
      await l.rep.reset();
      await this.persist(id, l, l.rep.snapshot());
      await this.o.records.updateCluster((c) => {
        const cur = c.replications[id];
        if (cur?.generation !== e.generation || cur.target_state !== 'resetting') return undefined;
        cur.target_state = 'stopped';
        return true;
      });
    }
  }
}

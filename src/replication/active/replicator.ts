/**
 * One replication run by this node (spec sg3-admin.md §5): the state machine around sessions.
 * A session is one BLIP connection to the remote carrying both directions (pull answers the
 * remote's `changes`/`rev`, push offers ours). One-shot replications end in `stopped` when every
 * direction has caught up; continuous ones follow both feeds until stopped. A dropped connection
 * or an unreachable remote is `reconnecting`, retried after 1 s doubling up to `max_backoff_time`
 * minutes (0: a 5 minute cap, giving up with `error` after about 10 minutes of failures); wrong
 * credentials, a certificate the CA does not vouch for, or an unknown `run_as` user are `error` at
 * once. Checkpoints are saved on both sides every second while running, and before a stop.
 */
import { HttpError } from '../../errors.ts';
import type { Database } from '../../db/database.ts';
import { ADMIN, type Principal, principalIn } from '../../auth/principal.ts';
import { Principals } from '../../auth/principals.ts';
import type { BlipConnection, BlipRequest } from '../blip/connection.ts';
import {
  type ActiveReplicator, type ReplicationConfig, type ReplicationCounters, type ReplicatorHooks, type ReplicatorSnapshot,
  type ReplicatorState, zeroCounters,
} from '../isgr/types.ts';
import { Checkpointer, checkpointId, configHash } from './checkpoints.ts';
import { type Lane, laneOf, negotiateCollections, plannedLanes } from './lanes.ts';
import { ConnectError, openConnection, remoteTarget } from './connect.ts';
import { LocalWriter } from './local-write.ts';
import { Puller } from './puller.ts';
import { Pusher } from './pusher.ts';
import { makeResolver, ResolverError, type ResolverFn } from './resolver.ts';

const CHECKPOINT_INTERVAL_MS = 1000;
const NOTIFY_INTERVAL_MS = 200;
const FIRST_BACKOFF_MS = 1000;
/** With max_backoff_time 0: the cap, and how long to keep failing before giving up. */
const DEFAULT_CAP_MS = 5 * 60_000;
const GIVE_UP_MS = 10 * 60_000;

/** Extra knobs for tests (shorter backoff) and the registry; all optional. */
export interface ReplicatorOptions {
  firstBackoffMs?: number;
  /** Overrides the give-up time of `max_backoff_time: 0`. */
  giveUpMs?: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return; }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); resolve(); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export class Replicator implements ActiveReplicator {
  readonly id: string;
  private state: ReplicatorState = 'stopped';
  private errorMessage: string | undefined;
  private counters: ReplicationCounters = zeroCounters();
  private readonly listeners = new Set<(s: ReplicatorSnapshot) => void>();
  private abort: AbortController | undefined;
  private running: Promise<void> | undefined;
  private notifyTimer: NodeJS.Timeout | undefined;
  private principals: Principals | undefined;

  constructor(
    private readonly db: Database,
    private readonly config: ReplicationConfig,
    private readonly hooks: ReplicatorHooks,
    private readonly opts: ReplicatorOptions = {},
  ) {
    this.id = config.replication_id;
  }

  start(): void {
    if (this.running) return;
    const abort = new AbortController();
    this.abort = abort;
    this.errorMessage = undefined;
    this.setState('starting');
    const run = (async () => {
      let end: { state: ReplicatorState; message?: string };
      try {
        end = await this.loop(abort.signal);
      } catch (err) {
        end = { state: 'error', message: (err as Error).message };
      }
      // No longer running before anyone hears the final state: a listener may start it again.
      if (this.abort === abort) { this.abort = undefined; this.running = undefined; }
      this.setState(end.state, end.message);
    })();
    this.running = run;
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.abort?.abort();
    if (running) await running;
    else if (this.state !== 'error' && this.state !== 'stopped') this.setState('stopped');
  }

  async reset(): Promise<void> {
    if (this.running) throw new HttpError(400, 'Replication must be stopped before it can be reset');
    // Every collection keeps its own local checkpoints (legacy mode: the default collection's).
    for (const coll of this.config.collections_enabled ? this.db.collections() : [this.db]) {
      await Checkpointer.resetLocal(coll, 'push', this.id);
      await Checkpointer.resetLocal(coll, 'pull', this.id);
    }
    this.counters = zeroCounters();
    this.emit();
  }

  snapshot(): ReplicatorSnapshot {
    const s: ReplicatorSnapshot = { state: this.state, counters: { ...this.counters } };
    if (this.errorMessage) s.error_message = this.errorMessage;
    return s;
  }

  onChange(listener: (s: ReplicatorSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setState(state: ReplicatorState, message?: string): void {
    this.state = state;
    this.errorMessage = message;
    this.hooks.log(state === 'error' ? 'warn' : 'info', `replication ${this.id}: ${state}${message ? `: ${message}` : ''}`);
    this.emit();
  }

  private emit(): void {
    if (this.notifyTimer) { clearTimeout(this.notifyTimer); this.notifyTimer = undefined; }
    const snap = this.snapshot();
    for (const l of this.listeners) {
      try { l(snap); } catch (err) { this.hooks.log('warn', `replication ${this.id}: status listener failed: ${(err as Error).message}`); }
    }
  }

  /** After each batch: listeners hear at most every NOTIFY_INTERVAL_MS. */
  private progressed = (): void => {
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => { this.notifyTimer = undefined; this.emit(); }, NOTIFY_INTERVAL_MS);
    this.notifyTimer.unref();
  };

  /** Runs sessions until finished, stopped or failed for good; returns the final state. */
  private async loop(signal: AbortSignal): Promise<{ state: ReplicatorState; message?: string }> {
    const first = this.opts.firstBackoffMs ?? FIRST_BACKOFF_MS;
    const cap = this.config.max_backoff_time > 0 ? this.config.max_backoff_time * 60_000 : DEFAULT_CAP_MS;
    const giveUp = this.config.max_backoff_time > 0 ? Infinity : this.opts.giveUpMs ?? GIVE_UP_MS;
    let delay = first;
    let failingSince: number | undefined;
    let resolver: ResolverFn;
    try {
      resolver = makeResolver(this.config.conflict_resolution_type, this.config.custom_conflict_resolver);
    } catch (err) {
      return { state: 'error', message: (err as Error).message };
    }
    while (!signal.aborted) {
      // The local database closed for good (the gateway is stopping): nothing to replicate into.
      if (this.db.isClosed) break;
      try {
        const finished = await this.session(signal, resolver, () => { delay = first; failingSince = undefined; });
        if (finished) return { state: 'stopped' };
      } catch (err) {
        if (signal.aborted || this.db.isClosed) break;
        // A remote refusing our request itself (subChanges with a bad filter: 4xx) will refuse it again.
        const refused = err instanceof HttpError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
        const fatal = err instanceof ConnectError ? err.fatal : err instanceof ResolverError || refused;
        const message = (err as Error).message;
        if (fatal) return { state: 'error', message };
        failingSince ??= Date.now();
        if (Date.now() - failingSince >= giveUp) {
          return { state: 'error', message: `gave up reconnecting after ${Math.round((Date.now() - failingSince) / 1000)} s: ${message}` };
        }
        this.setState('reconnecting', message);
        await sleep(delay, signal);
        delay = Math.min(delay * 2, cap);
      }
    }
    return { state: 'stopped' };
  }

  private async runAs(): Promise<Principal> {
    const name = this.config.run_as;
    if (!name) return ADMIN;
    let user: Principal | undefined;
    if (this.hooks.loadUser) user = await this.hooks.loadUser(name);
    else {
      // Without the registry's loader, our own reader of the database's principals (read-only here).
      this.principals ??= new Principals(this.db.store, { bcryptCost: 10, allowEmptyPassword: false, dbName: this.db.name });
      user = await this.principals.loadUser(name);
    }
    if (!user) throw new ConnectError(`run_as user "${name}" does not exist or is disabled`, true);
    return user;
  }

  /**
   * One connection. Resolves true when a one-shot replication completed, false when stopped;
   * throws when the connection failed or dropped (the caller retries).
   */
  private async session(signal: AbortSignal, resolver: ResolverFn, connected: () => void): Promise<boolean> {
    const lanes = plannedLanes(this.db, this.config);
    const target = remoteTarget(this.config);
    let principal = await this.runAs();
    // Before each read of the local feed: the run_as user's grants may have changed since.
    const refreshPrincipal = async (): Promise<Principal> => {
      if (this.config.run_as) principal = await this.runAs();
      return principal;
    };
    const log = (level: 'info' | 'warn' | 'debug', msg: string) => this.hooks.log(level, `replication ${this.id}: ${msg}`);
    const conn = await openConnection(target, signal, log);
    const ended = new AbortController();
    const closed = new Promise<never>((_, reject) => {
      conn.on('close', (code: number, reason: string) => {
        ended.abort();
        reject(new ConnectError(`connection to ${target.display} closed (${code}${reason ? ` ${reason}` : ''})`, false));
      });
    });
    closed.catch(() => {});
    // The local database going offline or closing ends the session (its feeds end on this signal too).
    const dbGone = new Promise<never>((_, reject) => {
      const stop = this.db.stopSignal;
      const fire = () => reject(new ConnectError('the local database went offline', false));
      if (stop.aborted) fire();
      else stop.addEventListener('abort', fire, { once: true, signal: ended.signal });
    });
    dbGone.catch(() => {});
    conn.on('error', (err: Error) => log('info', `connection error: ${err.message}`));
    const sessionSignal = AbortSignal.any([signal, ended.signal]);
    const dirs = this.config.direction;
    const wantPull = dirs === 'pull' || dirs === 'pushAndPull';
    const wantPush = dirs === 'push' || dirs === 'pushAndPull';
    let failure: ((e: Error) => void) | undefined;
    const failed = new Promise<never>((_, reject) => { failure = reject; });
    failed.catch(() => {});
    const legacy = !this.config.collections_enabled;
    const hash = configHash(this.config);
    for (const lane of lanes) {
      // The run_as user as each collection sees it (its grants there); the admin stays the admin.
      const key = lane.local.key;
      if (wantPull) {
        const writer = new LocalWriter(lane.local, () => principalIn(principal, key), resolver);
        lane.puller = new Puller(conn, lane.local, writer, this.config, this.counters, log, this.progressed, (e) => failure?.(e), lane.tag);
        lane.pullCp = new Checkpointer(lane.local, conn, 'pull', this.id, hash, lane.tag);
      }
      if (wantPush) {
        const refreshIn = async () => principalIn(await refreshPrincipal(), key);
        lane.pusher = new Pusher(conn, lane.local, this.config, this.counters, log, refreshIn, this.progressed, lane.tag);
        lane.pushCp = new Checkpointer(lane.local, conn, 'push', this.id, hash, lane.tag);
      }
    }
    conn.onRequest((req) => this.dispatch(req, lanes));
    const saveCheckpoints = async () => {
      for (const l of lanes) {
        if (l.pullCp && l.puller) await l.pullCp.save(l.puller.safeSeq);
        if (l.pushCp && l.pusher) await l.pushCp.save(l.pusher.safeSeq);
      }
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!legacy) await Promise.race([negotiateCollections(conn, lanes, checkpointId(wantPull ? 'pull' : 'push', this.id)), closed]);
      const since = new Map<Lane, { pull: string; push: string }>();
      for (const l of lanes) {
        const push = l.pushCp ? await Promise.race([l.pushCp.load(), closed]) : '';
        const pull = l.pullCp ? await Promise.race([l.pullCp.load(), closed]) : '';
        since.set(l, { pull, push });
      }
      this.counters.last_seq_pull = since.get(lanes[0])?.pull ?? '';
      this.counters.last_seq_push = since.get(lanes[0])?.push ?? '';
      connected();
      this.setState('running');
      for (const l of lanes) if (l.puller) await Promise.race([l.puller.start(since.get(l)!.pull), closed]);
      const pushRuns = lanes.map((l) => (l.pusher ? l.pusher.run(since.get(l)!.push, sessionSignal) : Promise.resolve()));
      const pushRun = Promise.all(pushRuns);
      // Continuous runs race the lanes one by one (below): this aggregate must not be an unhandled rejection.
      pushRun.catch(() => {});
      timer = setInterval(() => { saveCheckpoints().catch((e: Error) => log('info', `checkpoint not saved: ${e.message}`)); }, CHECKPOINT_INTERVAL_MS);
      timer.unref();
      void dbGone.catch(() => conn.close(1001, 'local database offline'));
      const stopped = new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      if (this.config.continuous) {
        // Any lane's feed ending (not by a stop) means the connection is going: wait for its close.
        const anyPushEnded = Promise.race(pushRuns.filter((_, i) => lanes[i].pusher));
        await Promise.race([stopped, closed, failed, ...(wantPush ? [anyPushEnded.then(() => (signal.aborted ? undefined : closed))] : [])]);
      } else {
        const done = Promise.all([pushRun, ...lanes.map((l) => l.puller?.caughtUp())]);
        await Promise.race([stopped, closed, failed, done]);
        // pushAndPull: what the pull wrote meanwhile (conflict resolutions above all) goes out too,
        // so one run leaves both sides agreeing. Revisions that came from the remote are only checked.
        if (wantPush && wantPull && !signal.aborted) {
          await Promise.race([stopped, closed, failed, Promise.all(lanes.map((l) => l.pusher!.run(l.pusher!.safeSeq, sessionSignal)))]);
        }
      }
      clearInterval(timer);
      timer = undefined;
      // Stopped or finished: the safe points go to both sides before the connection closes.
      await Promise.race([saveCheckpoints(), closed]);
      conn.close(1000, signal.aborted ? 'replication stopped' : 'replication complete');
      this.emit();
      return !signal.aborted;
    } catch (err) {
      // Whatever is safe is kept locally even when the remote has gone.
      for (const l of lanes) {
        if (l.pullCp && l.puller) await l.pullCp.save(l.puller.safeSeq).catch(() => {});
        if (l.pushCp && l.pusher) await l.pushCp.save(l.pusher.safeSeq).catch(() => {});
      }
      conn.close(1011, 'replication failed');
      throw err;
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  private async dispatch(req: BlipRequest, lanes: Lane[]): Promise<void> {
    try {
      const lane = laneOf(lanes, req.properties);
      const puller = lane?.puller;
      const pusher = lane?.pusher;
      switch (req.profile) {
        case 'changes': if (puller) return await puller.onChanges(req); break;
        case 'rev': if (puller) return await puller.onRev(req); break;
        case 'norev': if (puller) return puller.onNorev(req); break;
        case 'getAttachment': if (pusher) return await pusher.onGetAttachment(req); break;
        case 'proveAttachment': if (pusher) return await pusher.onProveAttachment(req); break;
        default: break;
      }
      if (!req.noReply) req.respondError('BLIP', 404, 'no handler for message');
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'Internal error');
      if (!(err instanceof HttpError)) this.hooks.log('warn', `replication ${this.id}: ${req.profile}: ${(err as Error)?.stack ?? err}`);
      if (!req.noReply && !req.responded) req.respondError('HTTP', e.status, e.reason);
    }
  }
}

export type { BlipConnection };

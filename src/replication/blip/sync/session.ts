/**
 * One Couchbase Lite replication session: a BLIP connection whose requests are dispatched by
 * `Profile` to the checkpoint, pull, push and attachment handlers. Per-collection messages are first
 * resolved to their collection (collections.ts), so one connection can replicate several collections
 * at once, each with its own checkpoint, feed and principal view. Handler errors become ERR replies
 * in Sync Gateway's `HTTP` domain; an unknown profile is `BLIP/404`.
 */
import { setMaxListeners } from 'node:events';
import type { WebSocket } from 'ws';
import { HttpError } from '../../../errors.ts';
import type { Database } from '../../../db/database.ts';
import type { Principal } from '../../../auth/principal.ts';
import { BlipConnection, type BlipRequest } from '../connection.ts';
import { getAttachment, proveAttachment } from './attachments.ts';
import { getCheckpoint, getCollections, setCheckpoint } from './checkpoint.ts';
import { type BlipCollection, BlipCollections, defaultCollectionOf } from './collections.ts';
import { type BlipLog, DeltaNegotiation, type SyncContext } from './context.ts';
import { ChangesFeed, parseSubChanges } from './pull.ts';
import { clientChanges, clientNorev, clientRev, proposeChanges } from './push.ts';

export interface SessionOptions {
  db: Database;
  principal: Principal;
  reloadPrincipal: () => Promise<Principal | undefined>;
  protocol: 2 | 3;
  log: BlipLog;
  /** Largest BLIP message accepted (a bigger one closes the connection). */
  maxMessageBytes?: number;
}

/** Close code for "the user was deleted or disabled" (WebSocket policy violation). */
const CLOSE_POLICY = 1008;

export class SyncSession {
  readonly conn: BlipConnection;
  private readonly ctx: SyncContext;
  private readonly abort = new AbortController();

  constructor(ws: WebSocket, private readonly opts: SessionOptions) {
    this.conn = new BlipConnection(ws, { role: 'server', maxMessageBytes: opts.maxMessageBytes, log: opts.log });
    const signal = AbortSignal.any([this.abort.signal, opts.db.stopSignal]);
    let principal = opts.principal;
    const ctx: SyncContext = {
      conn: this.conn, db: opts.db, protocol: opts.protocol, log: opts.log, signal,
      get principal() { return principal; },
      set principal(p) { principal = p; },
      refreshPrincipal: async () => {
        const p = await opts.reloadPrincipal();
        if (!p) return false;
        principal = p;
        return true;
      },
      collections: new BlipCollections(() => principal),
      deltas: new DeltaNegotiation(opts.db.deltaSyncEnabled, () => opts.db.stats.deltaSync?.('pull_replication')),
    };
    this.ctx = ctx;
    this.conn.on('close', () => this.abort.abort());
    this.conn.on('error', (err: Error) => opts.log('info', `BLIP connection error: ${err.message}`));
    // The database is going away (gateway stopping): end the connection normally.
    if (opts.db.stopSignal.aborted) this.conn.close(1001, 'database closed');
    // One listener per open connection (removed when it closes): past 10 connections Node would
    // print a MaxListenersExceededWarning ("possible leak") for a normal load.
    else {
      setMaxListeners(0, opts.db.stopSignal);
      opts.db.stopSignal.addEventListener('abort', () => this.conn.close(1001, 'database closed'), { once: true, signal: this.abort.signal });
    }
    this.conn.onRequest((req) => this.dispatch(req));
    void this.watchPrincipal();
  }

  /** Keeps the principal current for writes when grants change, and ends the session when the user goes. */
  private async watchPrincipal(): Promise<void> {
    const p = this.ctx.principal;
    if (p.kind !== 'user') return;
    const userKey = `_user:${p.isGuest ? 'GUEST' : p.name}`;
    while (!this.ctx.signal.aborted) {
      const current = this.ctx.principal;
      const roles = current.kind === 'user' ? [...current.roles.keys()].map((r) => `_role:${r}`) : [];
      const changed = await this.opts.db.notifier.wait([userKey, ...roles], 0, this.ctx.signal);
      if (!changed || this.ctx.signal.aborted) return;
      if (!(await this.ctx.refreshPrincipal())) {
        this.opts.log('info', `BLIP: user ${p.name} is gone; closing its connection`);
        this.conn.close(CLOSE_POLICY, 'user no longer valid');
        return;
      }
    }
  }

  private async dispatch(req: BlipRequest): Promise<void> {
    try {
      await this.handle(req);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'Internal error');
      if (!(err instanceof HttpError)) this.opts.log('warn', `BLIP ${req.profile}: ${(err as Error)?.stack ?? err}`);
      if (!req.noReply && !this.conn.closed) req.respondError('HTTP', e.status, e.reason);
    }
  }

  private async handle(req: BlipRequest): Promise<void> {
    const ctx = this.ctx;
    switch (req.profile) {
      case 'getCollections': return getCollections(ctx, req);
      case 'PING':
        if (!req.noReply) req.respond();
        return;
      case 'getCheckpoint': case 'setCheckpoint': case 'subChanges': case 'unsubChanges': case 'proposeChanges':
      case 'changes': case 'rev': case 'norev': case 'getAttachment': case 'proveAttachment':
        return this.handleInCollection(req.profile, req);
      default:
        if (!req.noReply) req.respondError('BLIP', 404, 'no handler for message');
    }
  }

  /** A per-collection message: its collection first (a misuse is refused before anything is read or written). */
  private async handleInCollection(profile: string, req: BlipRequest): Promise<void> {
    const ctx = this.ctx;
    const bc = ctx.collections.resolve(req, () => defaultCollectionOf(ctx.db));
    switch (profile) {
      case 'getCheckpoint': return getCheckpoint(bc, req);
      case 'setCheckpoint': return setCheckpoint(bc, req);
      case 'subChanges': return this.subChanges(bc, req);
      case 'unsubChanges':
        bc.feed?.stop();
        bc.feed = undefined;
        if (!req.noReply) req.respond();
        return;
      case 'proposeChanges': return proposeChanges(ctx, bc, req);
      case 'changes': return clientChanges(ctx, bc, req);
      case 'rev': return clientRev(ctx, bc, req);
      case 'norev': return clientNorev(ctx, req);
      case 'getAttachment': return getAttachment(ctx, bc, req);
      case 'proveAttachment': return proveAttachment(ctx, bc, req);
    }
  }

  /** Replies at once (Couchbase Lite waits for it), then runs the collection's feed in the background. */
  private async subChanges(bc: BlipCollection, req: BlipRequest): Promise<void> {
    // One active feed per collection. Sync Gateway answers a second with an unmapped Go error:
    // HTTP/500 "Internal error: …" (spec collections-delta.md §1.5).
    const opts = parseSubChanges(req);
    if (bc.feed) throw new HttpError(500, `Internal error: blipHandler for ${bc.label} already has an outstanding subChanges. Cannot open another one`);
    const feed = new ChangesFeed(this.ctx, opts, bc);
    bc.feed = feed;
    if (!req.noReply) req.respond();
    feed.run().catch((err) => {
      if (this.ctx.signal.aborted) return;
      this.opts.log('warn', `BLIP changes feed of ${bc.coll.key} failed: ${(err as Error)?.stack ?? err}`);
      this.conn.close(1011, 'changes feed failed');
    }).finally(() => {
      if (bc.feed === feed && !opts.continuous) bc.feed = undefined;
    });
  }
}

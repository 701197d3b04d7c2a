/**
 * One Couchbase Lite replication session: a BLIP connection whose requests are dispatched by
 * `Profile` to the checkpoint, pull, push and attachment handlers. Handler errors become ERR
 * replies in Sync Gateway's `HTTP` domain; an unknown profile is `BLIP/404`.
 */
import { setMaxListeners } from 'node:events';
import type { WebSocket } from 'ws';
import { HttpError } from '../../../errors.ts';
import type { Database } from '../../../db/database.ts';
import type { Principal } from '../../../auth/principal.ts';
import { BlipConnection, type BlipRequest } from '../connection.ts';
import { AttachmentGate, getAttachment, proveAttachment } from './attachments.ts';
import { getCheckpoint, getCollections, setCheckpoint } from './checkpoint.ts';
import { type BlipLog, CollectionMode, DeltaNegotiation, type SyncContext } from './context.ts';
import { ChangesFeed, parseSubChanges } from './pull.ts';
import { clientChanges, clientNorev, clientRev, proposeChanges, RevWriter } from './push.ts';

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
  private readonly writer: RevWriter;
  private feed?: ChangesFeed;
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
      attachments: new AttachmentGate(),
      collections: new CollectionMode(),
      deltas: new DeltaNegotiation(opts.db.deltaSyncEnabled, () => opts.db.stats.deltaSync?.('pull_replication')),
    };
    this.ctx = ctx;
    this.writer = new RevWriter(opts.db);
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
      case 'getCheckpoint': return getCheckpoint(ctx, req);
      case 'setCheckpoint': return setCheckpoint(ctx, req);
      case 'getCollections': return getCollections(ctx, req);
      case 'subChanges': return this.subChanges(req);
      case 'unsubChanges':
        this.feed?.stop();
        this.feed = undefined;
        if (!req.noReply) req.respond();
        return;
      case 'proposeChanges': return proposeChanges(ctx, req);
      case 'changes': return clientChanges(ctx, req);
      case 'rev': return clientRev(ctx, this.writer, req);
      case 'norev': return clientNorev(ctx, req);
      case 'getAttachment': return getAttachment(ctx, req);
      case 'proveAttachment': return proveAttachment(ctx, req);
      case 'PING':
        if (!req.noReply) req.respond();
        return;
      default:
        if (!req.noReply) req.respondError('BLIP', 404, 'no handler for message');
    }
  }

  /** Replies at once (Couchbase Lite waits for it), then runs the feed in the background. */
  private async subChanges(req: BlipRequest): Promise<void> {
    const collection = this.ctx.collections.check(req);
    if (this.feed) throw new HttpError(400, 'Already subscribed to changes on this connection');
    const opts = parseSubChanges(req);
    const feed = new ChangesFeed(this.ctx, opts, collection);
    this.feed = feed;
    if (!req.noReply) req.respond();
    feed.run().catch((err) => {
      if (this.ctx.signal.aborted) return;
      this.opts.log('warn', `BLIP changes feed failed: ${(err as Error)?.stack ?? err}`);
      this.conn.close(1011, 'changes feed failed');
    }).finally(() => {
      if (this.feed === feed && !opts.continuous) this.feed = undefined;
    });
  }
}

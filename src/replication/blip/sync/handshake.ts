/**
 * `GET /{db}/_blipsync`: the WebSocket upgrade Couchbase Lite replicates over (spec blip.md §1).
 * Authentication happens before the upgrade exactly as for REST, plus Sync Gateway's one extra way
 * in: a `SyncGatewaySession_<token>` entry in `Sec-WebSocket-Protocol` (browsers cannot set headers).
 * The 101 echoes exactly one offered subprotocol: CBMobile_3 preferred, CBMobile_2 accepted.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { HttpError } from '../../../errors.ts';
import type { Database } from '../../../db/database.ts';
import type { Principal } from '../../../auth/principal.ts';
import type { BlipLog } from './context.ts';
import { SyncSession } from './session.ts';

export const BLIPSYNC_PATTERN = '/{db}/_blipsync';
export const BLIP_PROTOCOLS = ['BLIP_3+CBMobile_3', 'BLIP_3+CBMobile_2'] as const;
const SESSION_PREFIX = 'SyncGatewaySession_';

/** Largest WebSocket message (= one BLIP frame) accepted; real peers send ≤ 16 KiB frames. */
const MAX_FRAME_BYTES = 1024 * 1024;
/** Largest BLIP message accepted (a `rev` with its body, an attachment reply). */
export const MAX_BLIP_MESSAGE_BYTES = 32 * 1024 * 1024;

/** The entries of `Sec-WebSocket-Protocol`, trimmed. */
function offeredProtocols(req: http.IncomingMessage): string[] {
  const h = req.headers['sec-websocket-protocol'];
  return (Array.isArray(h) ? h.join(',') : h ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** The subprotocol to echo: the best one the client offered, or undefined. */
export function chooseProtocol(offered: Iterable<string>): (typeof BLIP_PROTOCOLS)[number] | undefined {
  const set = new Set(offered);
  return BLIP_PROTOCOLS.find((p) => set.has(p));
}

/**
 * Before authentication: a session token smuggled in the subprotocol list is presented as the
 * session cookie, so the one authenticator checks it (Basic still takes precedence, as in Sync Gateway).
 */
export function adoptSubprotocolSession(req: http.IncomingMessage, cookieName: string): void {
  const entry = offeredProtocols(req).find((p) => p.startsWith(SESSION_PREFIX));
  if (entry) req.headers.cookie = `${cookieName}=${entry.slice(SESSION_PREFIX.length)}`;
}

/** Route for a plain (non-upgrade) GET: 426, as Sync Gateway answers. */
export function blipSyncRoutes(): { methods: string[]; pattern: string; handler: () => Promise<void> }[] {
  return [{
    methods: ['GET'], pattern: BLIPSYNC_PATTERN,
    handler: async () => { throw new HttpError(426, 'Upgrade Required: this endpoint is a WebSocket for Couchbase Lite'); },
  }];
}

export interface AcceptOptions {
  db: Database;
  principal: Principal;
  reloadPrincipal: () => Promise<Principal | undefined>;
  log: BlipLog;
  /** `Set-Cookie` from authentication (a refreshed session): sent with the 101, as Couchbase Lite keeps cookies. */
  setCookie?: number | string | string[];
  /** Called once the socket is open; returns the function to call when it closes (metrics). */
  opened?: () => () => void;
}

/** One per listener: the WebSocket server that completes `_blipsync` upgrades. */
export class BlipSyncEndpoint {
  private readonly wss = new WebSocketServer({
    noServer: true,
    // Couchbase Lite never negotiates permessage-deflate; BLIP compresses inside its frames.
    perMessageDeflate: false,
    maxPayload: MAX_FRAME_BYTES,
    handleProtocols: (protocols) => chooseProtocol(protocols) ?? false,
  });
  /** Extra response headers of upgrades in progress, keyed by request. */
  private readonly extraHeaders = new WeakMap<http.IncomingMessage, string[]>();

  constructor() {
    this.wss.on('headers', (headers: string[], req: http.IncomingMessage) => {
      headers.push(...(this.extraHeaders.get(req) ?? []));
      this.extraHeaders.delete(req);
    });
  }

  /** Completes the upgrade of an authenticated request; 400 when no BLIP subprotocol is offered. */
  accept(req: http.IncomingMessage, socket: Duplex, head: Buffer, opts: AcceptOptions): void {
    const protocol = chooseProtocol(offeredProtocols(req));
    if (!protocol) throw new HttpError(400, `Expected a Sec-WebSocket-Protocol of ${BLIP_PROTOCOLS.join(' or ')}`);
    if (opts.setCookie !== undefined) {
      const cookies = Array.isArray(opts.setCookie) ? opts.setCookie : [String(opts.setCookie)];
      this.extraHeaders.set(req, cookies.map((c) => `Set-Cookie: ${c}`));
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const done = opts.opened?.();
      if (done) ws.once('close', done);
      new SyncSession(ws, {
        db: opts.db, principal: opts.principal, reloadPrincipal: opts.reloadPrincipal,
        protocol: protocol === 'BLIP_3+CBMobile_3' ? 3 : 2, log: opts.log, maxMessageBytes: MAX_BLIP_MESSAGE_BYTES,
      });
    });
  }
}

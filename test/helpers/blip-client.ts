/**
 * A Couchbase Lite–style replicator written from the protocol spec (shared/spec/blip.md §3), for
 * tests and the benchmark: the BLIP connection (handshake, legacy or collection-aware mode, requests
 * of the server routed to their collection) over one `CollectionReplicator` per collection
 * (blip-replicator.ts: push, pull, checkpoints, deltas) and the device's `LocalDb` (blip-local-db.ts).
 * With `deltas: true` it speaks delta sync as Couchbase Lite does (spec collections-delta.md §2.1-2.4),
 * with the project's codec: it keeps the body of the revision last known on the server (LiteCore's
 * `kKeepBody`), lists only ancestors whose bodies it has, applies received deltas (422 when it cannot),
 * and pushes deltas from the server's revision once the server announced `deltas`.
 */
import WebSocket from 'ws';
import { BlipConnection, type BlipProperties, type BlipRequest, type BlipResponse } from '../../src/replication/blip/connection.ts';
import type { LocalDb } from './blip-local-db.ts';
import { CollectionReplicator, type PullOptions, type PullState, type PushOptions, type PushResult } from './blip-replicator.ts';

export { type AttachmentIn, type AttachmentStub, LocalDb, sha1Digest } from './blip-local-db.ts';
export { CollectionReplicator, type PullOptions, PullState, type PushOptions, type PushResult } from './blip-replicator.ts';

export interface ConnectOptions {
  user?: string;
  password?: string;
  cookie?: string;
  /** An ID token sent as `Authorization: Bearer` on the upgrade request. */
  bearer?: string;
  /** Offered subprotocols, default CBMobile_3 then CBMobile_2. */
  protocols?: string[];
  maxMessageBytes?: number;
  /** Sees the 101 response's headers. */
  onUpgrade?: (headers: Record<string, string | string[] | undefined>) => void;
}

export class BlipHttpError extends Error {
  constructor(readonly status: number, readonly body: string, readonly headers: Record<string, string | string[] | undefined>) {
    super(`HTTP ${status}: ${body}`);
  }
}

/** Opens `{dbUrl}/_blipsync`; rejects with BlipHttpError when the server refuses the upgrade. */
export function openBlipSocket(dbUrl: string, opts: ConnectOptions = {}): Promise<WebSocket> {
  const url = dbUrl.replace(/^http/, 'ws') + '/_blipsync';
  const headers: Record<string, string> = {};
  if (opts.user !== undefined) headers.Authorization = 'Basic ' + Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64');
  if (opts.cookie) headers.Cookie = opts.cookie;
  if (opts.bearer !== undefined) headers.Authorization = `Bearer ${opts.bearer}`;
  const ws = new WebSocket(url, opts.protocols ?? ['BLIP_3+CBMobile_3', 'BLIP_3+CBMobile_2'], { headers, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('upgrade', (res) => opts.onUpgrade?.(res.headers));
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => reject(new BlipHttpError(res.statusCode ?? 0, body, res.headers)));
    });
    ws.once('error', reject);
  });
}

/**
 * A BLIP replicator client over one connection. Legacy mode by default (the methods below act on the
 * default collection, untagged); after `getCollections` each index is `collection(i)`, and every
 * request of the server must name one of them (anything else is answered 400 and kept in
 * `protocolErrors`).
 */
export class BlipClient {
  readonly conn: BlipConnection;
  private readonly lanes = new Map<string, CollectionReplicator>();
  /** The collection list of the last non-empty getCollections: collection-aware mode. */
  private aware = false;
  /** Requests the server made of this client while it pushed (all collections). */
  readonly served = { getAttachment: 0, proveAttachment: 0 };
  /** Requests of the server this client could not place: no collection where one was due, an unknown index. */
  readonly protocolErrors: Error[] = [];

  private constructor(readonly ws: WebSocket, opts: ConnectOptions) {
    this.conn = new BlipConnection(ws, { role: 'client', maxMessageBytes: opts.maxMessageBytes });
    this.conn.on('error', () => {});
    this.conn.onRequest((req) => this.onRequest(req));
    this.lanes.set('', new CollectionReplicator(this, {}));
  }

  static async connect(dbUrl: string, opts: ConnectOptions = {}): Promise<BlipClient> {
    return new BlipClient(await openBlipSocket(dbUrl, opts), opts);
  }

  get protocol(): string { return this.ws.protocol; }
  get isV3(): boolean { return this.ws.protocol === 'BLIP_3+CBMobile_3'; }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.conn.close(1000);
    });
  }

  /** Sends a request and fails on an error reply (with `status` = its code). */
  async call(props: BlipProperties, body?: Buffer | string | object, opts?: { compressed?: boolean; urgent?: boolean }): Promise<BlipResponse> {
    const res = await this.conn.sendRequest(props, body, opts);
    if (!res) throw new Error('no reply');
    if (res.isError) throw Object.assign(new Error(`${props.Profile}: ${res.errorDomain}/${res.errorCode} ${res.body.toString()}`), { domain: res.errorDomain, status: res.errorCode });
    return res;
  }

  /**
   * Collection-aware mode, as Couchbase Lite 3.1+ opens it: one entry per collection path
   * (`scope.collection`, or `collection` in `_default`) with its checkpoint ID. Returns the server's
   * answer (per entry `null`, `{}` or the checkpoint); `collection(i)` then replicates entry i.
   */
  async getCollections(collections: string[], checkpointIds: string[]): Promise<(Record<string, unknown> | null)[]> {
    const res = await this.call({ Profile: 'getCollections' }, { collections, checkpoint_ids: checkpointIds });
    const list = res.json<(Record<string, unknown> | null)[]>();
    if (!Array.isArray(list) || list.length !== collections.length) throw new Error(`Invalid number of checkpoints: ${res.body.toString()}`);
    if (collections.length > 0) {
      this.aware = true;
      for (const k of [...this.lanes.keys()]) if (k !== '') this.lanes.delete(k);
      list.forEach((entry, i) => { if (entry !== null) this.lanes.set(String(i), new CollectionReplicator(this, { collection: String(i) })); });
    }
    return list;
  }

  /** The collection at index `i` of the getCollections list (created on demand, for misuse tests too). */
  collection(i: number): CollectionReplicator {
    const key = String(i);
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = new CollectionReplicator(this, { collection: key })));
    return lane;
  }

  /** The untagged (legacy) collection. */
  private get legacy(): CollectionReplicator { return this.lanes.get('')!; }

  getCheckpoint(client: string): ReturnType<CollectionReplicator['getCheckpoint']> { return this.legacy.getCheckpoint(client); }
  setCheckpoint(client: string, body: Record<string, unknown>, rev?: string): Promise<string> { return this.legacy.setCheckpoint(client, body, rev); }
  push(db: LocalDb, opts: PushOptions = {}): Promise<PushResult> { return this.legacy.push(db, opts); }
  startPull(db: LocalDb, opts: PullOptions = {}): Promise<PullState> { return this.legacy.startPull(db, opts); }
  pull(db: LocalDb, opts: PullOptions = {}, timeoutMs = 60_000): Promise<PullState> { return this.legacy.pull(db, opts, timeoutMs); }

  private onRequest(req: BlipRequest): Promise<void> | void {
    const key = req.properties.collection ?? '';
    const lane = this.lanes.get(key);
    // The server tags what it sends with the index that caused it, and only in collection-aware mode.
    if (!lane || (this.aware ? key === '' : key !== '')) {
      const err = new Error(`server sent ${req.profile} with collection ${JSON.stringify(req.properties.collection)} (${this.aware ? 'collection-aware' : 'legacy'} mode)`);
      this.protocolErrors.push(err);
      if (!req.noReply) req.respondError('HTTP', 400, err.message);
      return;
    }
    return lane.onRequest(req);
  }
}

/** `_changes` in all four feed styles: normal, longpoll, continuous and websocket. */
import type { WebSocket } from 'ws';
import { HttpError } from '../../errors.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeUtf8, parseJson, isJsonObject } from '../../json/index.ts';
import {
  changesSince, type ChangesOptions, type ChangesPage, feedScope, feedWaitKeys, optionsKey, sharedChangesSince, type FeedScope, formatSince, parseSince, renderEntry,
} from '../../db/changes.ts';
import type { Collection } from '../../db/collection.ts';
import type { Listener } from '../../db/notifier.ts';
import type { Principal } from '../../auth/principal.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';

const FEEDS = new Set(['normal', 'longpoll', 'continuous', 'websocket']);
const MIN_HEARTBEAT_MS = 25_000;
const DEFAULT_TIMEOUT_MS = 300_000;
const MAX_TIMEOUT_MS = 900_000;

export interface FeedParams {
  feed: string;
  options: ChangesOptions;
  /** The bychannel filter's channels. */
  channels?: string[];
  heartbeatMs: number;
  timeoutMs: number;
}

/**
 * A live feed's view of its reader, refreshed after every wake-up: grants and revocations apply at once.
 * It reads and waits on one collection (the request's keyspace): a commit to another collection of
 * the database does not wake it. Its end follows the database's (offline, stop).
 */
class LiveScope {
  principal: Principal;
  scope: FeedScope;
  private waitKeys: string[] | null;
  /** The `derived` key of this filter's view, built once per feed rather than once per wake-up. */
  private readonly viewKey: string;
  /** Aborted when the database goes offline or stops: the feed ends (see Database.endFeeds). */
  private readonly feedsEnd: AbortSignal;
  constructor(private readonly ctx: RequestContext, private readonly db: Collection, private readonly filter?: string[]) {
    this.principal = ctx.principal;
    this.feedsEnd = db.db.stopSignal;
    this.viewKey = `feed:${JSON.stringify(filter ?? null)}`;
    [this.scope, this.waitKeys] = this.view(this.principal);
  }
  /**
   * Scope and wait keys, computed once per principal object and filter: principals come from the
   * access cache, so the feeds of one user and channel (and each longpoll's next request) share them.
   */
  private view(p: Principal): [FeedScope, string[] | null] {
    return this.db.sharedReads.derived(p, this.viewKey, () => {
      const scope = feedScope(p, this.filter);
      return [scope, feedWaitKeys(p, scope)];
    });
  }
  /**
   * After a wake-up: the principal reloaded (grants and revocations apply at once), then the next
   * page read. Every feed of one user, filter and position woken by the same commit shares the
   * one step and its result, so each pays one await rather than a chain of them: with 10,000 woken
   * feeds that chain was most of a delivery's cost. Undefined: the user is gone, end the feed.
   */
  async refresh(opts: ChangesOptions): Promise<ChangesPage | undefined> {
    this.listener?.reading();
    const db = this.db;
    const who = this.principal.kind === 'admin' ? 'admin:' : `user:${this.principal.name}`;
    const r = await db.sharedReads.read(await db.readState(), `wake:${who}|${this.viewKey}|${optionsKey(opts)}`, async () => {
      const p = await this.ctx.reloadPrincipal();
      if (!p) return undefined;
      const view = this.view(p);
      // Shared again across users: feeds of other users following the same channels read the same page.
      return { p, view, page: await sharedChangesSince(db, view[0], opts) };
    });
    if (!r) return undefined;
    this.principal = r.p;
    [this.scope, this.waitKeys] = r.view;
    this.listener?.follow(this.waitKeys); // a no-op unless the principal's access changed
    return r.page;
  }
  /** Set once the feed may wait: it follows the notifier from before its first read (see Listener). */
  private listener?: Listener;
  listen(): void {
    if (!this.listener) {
      this.listener = this.db.notifier.listener();
      if (this.feedsEnd.aborted) this.listener.end();
      else this.feedsEnd.addEventListener('abort', () => this.listener!.end(), { once: true });
    }
    this.listener.follow(this.waitKeys);
  }
  /** The database went offline or stopped since the feed began. */
  get ended(): boolean { return this.feedsEnd.aborted; }
  /** Reads a page of this feed; what was notified before it began is covered by it. */
  read(read: typeof changesSince, opts: ChangesOptions): Promise<ChangesPage> {
    this.listener?.reading();
    return read(this.db, this.scope, opts);
  }
  /** The next change on this feed's keys (true), or the timeout (0: none) or the feed's end (false). */
  wait(ms: number): Promise<boolean> {
    return this.listener ? this.listener.wait(ms) : Promise.resolve(false);
  }
  end(): void { this.listener?.end(); }
}

type Source = (name: string) => unknown;

function bool(v: unknown): boolean {
  return v === true || v === 'true' || v === '1';
}

function int(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : /^-?\d+$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new HttpError(400, `Invalid ${name}`);
  return n;
}

function docIdsOf(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  const s = String(v);
  try {
    const parsed = JSON.parse(s);
    if (Array.isArray(parsed)) return parsed.filter((x): x is string => typeof x === 'string');
  } catch { /* comma-separated fallback */ }
  return s.split(',').filter((x) => x !== '');
}

/**
 * A live feed outlives a storage outage (PostgreSQL restarting): a read that fails with 503 is
 * retried with backoff while the client stays connected, so the feed resumes where it was instead
 * of ending and sending every client back to reconnect at the same moment.
 */
export async function untilAvailable<T>(signal: AbortSignal, read: () => Promise<T>): Promise<T> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof HttpError) || err.status !== 503 || signal.aborted) throw err;
      await sleep(delay, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) throw err;
    }
  }
}

/** Reads feed options from query parameters, a POST body or a websocket's first message. */
export function parseFeedParams(get: Source, maxHeartbeatMs?: number): FeedParams {
  // Strings only: String(["normal"]) would be "normal" (Go's typed decoding refuses it too).
  const feed = get('feed') ?? 'normal';
  if (typeof feed !== 'string' || !FEEDS.has(feed)) throw new HttpError(400, 'Unknown feed type');
  const style = get('style') ?? 'main_only';
  if (style !== 'main_only' && style !== 'all_docs') throw new HttpError(400, 'Unknown style');
  const limit = int(get('limit'), 'limit');
  if (limit !== undefined && limit < 0) throw new HttpError(400, 'Invalid limit');
  const options: ChangesOptions = {
    since: parseSince(get('since')),
    limit,
    style,
    includeDocs: bool(get('include_docs')),
    activeOnly: bool(get('active_only')),
    conflicts: bool(get('conflicts')),
  };
  // With include_docs, attachment bytes inline as base64 (what PouchDB's `attachments: true` asks).
  if (options.includeDocs && bool(get('attachments'))) options.attachments = true;
  let channels: string[] | undefined;
  const filter = get('filter');
  if (filter !== undefined && filter !== null && filter !== '') {
    if (filter === '_doc_ids') {
      const ids = docIdsOf(get('doc_ids'));
      if (!ids) throw new HttpError(400, "Missing 'doc_ids' filter parameter");
      // Every feed style: a live feed waits on its channels as usual and reads only these ids
      // (PouchDB's live replication with doc_ids is a longpoll feed).
      options.docIds = ids;
    } else if (filter === 'sync_gateway/bychannel') {
      const v = get('channels');
      if (v === undefined || v === null || v === '') throw new HttpError(400, "Missing 'channels' filter parameter");
      channels = (Array.isArray(v) ? v.map(String) : String(v).split(',')).filter((c) => c !== '');
    } else if ((typeof filter === 'string' && filter.includes('/')) || (filter === '_view' && get('view'))) {
      // A design doc's filter or view (`ddoc/name`, `_view&view=ddoc/name`): there are no design
      // documents here (README), so CouchDB's answer for a missing one, 404, not a bad request.
      throw new HttpError(404, 'missing');
    } else throw new HttpError(400, 'Unknown filter; try sync_gateway/bychannel or _doc_ids');
  }
  let heartbeatMs = int(get('heartbeat'), 'heartbeat') ?? 0;
  if (heartbeatMs < 0) throw new HttpError(400, 'Invalid heartbeat');
  if (heartbeatMs > 0) heartbeatMs = Math.max(heartbeatMs, MIN_HEARTBEAT_MS);
  if (heartbeatMs > 0 && maxHeartbeatMs) heartbeatMs = Math.min(heartbeatMs, maxHeartbeatMs);
  let timeoutMs = int(get('timeout'), 'timeout') ?? DEFAULT_TIMEOUT_MS;
  if (timeoutMs < 0) throw new HttpError(400, 'Invalid timeout');
  timeoutMs = Math.min(timeoutMs, MAX_TIMEOUT_MS);
  return { feed, options, channels, heartbeatMs, timeoutMs };
}

function aborter(ctx: RequestContext): AbortController {
  const ac = new AbortController();
  // Once the response is ended nothing waits on the signal; aborting would only build an AbortError
  // (a stack trace) for every longpoll answered.
  ctx.res.once('close', () => { if (!ctx.res.writableEnded) ac.abort(); });
  return ac;
}

/** The three feed styles' renderings of a page; shared pages are rendered once (SharedReads.rendered). */
function longpollBody(page: ChangesPage): string {
  return `{"results":[\r\n${page.entries.map((e) => renderEntry(e) + '\n').join(',')}],\n"last_seq":${JSON.stringify(formatSince(page.last))}}\n`;
}

function continuousLines(page: ChangesPage): string {
  return page.entries.map((e) => renderEntry(e) + '\n').join('');
}

function websocketBatch(page: ChangesPage): string {
  return `[${page.entries.map(renderEntry).join(',')}]`;
}

async function normalOrLongpoll(ctx: RequestContext, db: Collection, p: FeedParams): Promise<void> {
  const live = new LiveScope(ctx, db, p.channels);
  if (p.feed === 'longpoll') {
    live.listen();
    ctx.res.once('close', () => live.end());
  }
  // Longpoll clients re-request together right after each change (same channels, same since):
  // they share the read, and its rendered body.
  let page = await live.read(p.feed === 'longpoll' ? sharedChangesSince : changesSince, p.options);
  const res = ctx.res;
  res.setHeader('Cache-Control', 'private, max-age=0, no-cache, no-store');
  if (p.feed === 'longpoll' && page.entries.length === 0) {
    const ac = aborter(ctx);
    const done = db.db.stats.feedOpened('longpoll');
    ctx.res.once('close', done);
    const deadline = p.heartbeatMs > 0 ? Infinity : p.timeoutMs > 0 ? Date.now() + p.timeoutMs : Infinity;
    // Heartbeats force the headers out early; the JSON body follows the newlines.
    while (page.entries.length === 0 && !ac.signal.aborted && !live.ended) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const wait = p.heartbeatMs > 0 ? p.heartbeatMs : left;
      const changed = await live.wait(wait);
      if (ac.signal.aborted) return;
      if (changed) {
        const next = await untilAvailable(ac.signal, () => live.refresh(p.options));
        if (!next) break;
        page = next;
      }
      else if (p.heartbeatMs > 0) {
        if (!res.headersSent) { res.statusCode = 200; res.setHeader('Content-Type', 'application/json'); }
        res.write('\n');
      }
    }
  }
  const final = page;
  const body = db.sharedReads.rendered(final, 'longpoll', () => longpollBody(final));
  if (res.headersSent) { res.end(body); return; }
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json');
  res.end(body);
}

async function continuous(ctx: RequestContext, db: Collection, p: FeedParams): Promise<void> {
  const res = ctx.res;
  const ac = aborter(ctx);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Cache-Control', 'private, max-age=0, no-cache, no-store');
  res.flushHeaders();
  res.once('close', db.db.stats.feedOpened('continuous'));
  const opts = { ...p.options };
  const live = new LiveScope(ctx, db, p.channels);
  live.listen();
  res.once('close', () => live.end());
  let sent = 0;
  let woken = false;
  const deadline = p.heartbeatMs === 0 && p.timeoutMs > 0 ? Date.now() + p.timeoutMs : Infinity;
  while (!ac.signal.aborted && !live.ended) {
    if (opts.limit) opts.limit = p.options.limit! - sent;
    const page = await untilAvailable(ac.signal, () => (woken ? live.refresh(opts) : live.read(changesSince, opts)));
    if (!page) break;
    woken = false;
    // The page's lines in one write (the same bytes as line by line).
    if (page.entries.length > 0 && !res.write(db.sharedReads.rendered(page, 'continuous', () => continuousLines(page)))) {
      await new Promise((r) => res.once('drain', r));
    }
    sent += page.entries.length;
    opts.since = page.last;
    if (p.options.limit && sent >= p.options.limit) break;
    if (page.entries.length > 0 && !page.complete) continue;
    const left = deadline - Date.now();
    if (left <= 0) break;
    woken = await live.wait(p.heartbeatMs > 0 ? p.heartbeatMs : left);
    if (!woken && p.heartbeatMs > 0 && !ac.signal.aborted) res.write('\n');
  }
  live.end();
  res.end();
}

/** WebSocket feed: options arrive as the first message; batches go out as JSON arrays. */
export function websocketFeed(ws: WebSocket, db: Collection, ctx: RequestContext, maxHeartbeatMs?: number): void {
  const ac = new AbortController();
  ws.once('close', () => ac.abort());
  ws.once('close', db.db.stats.feedOpened('websocket'));
  ws.on('error', () => ac.abort());
  ws.once('message', async (data) => {
    try {
      let body: Record<string, unknown> = {};
      // The same rules as an HTTP body: strict UTF-8 (binary frames too), the JSON depth limit, an object.
      const text = decodeUtf8(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
      if (text.trim() !== '') {
        const parsed = parseJson(text);
        if (!isJsonObject(parsed)) throw new HttpError(400, 'Invalid options');
        body = parsed as Record<string, unknown>;
      }
      const p = parseFeedParams((n) => body[n], maxHeartbeatMs);
      const opts = { ...p.options };
      const live = new LiveScope(ctx, db, p.channels);
      if (ac.signal.aborted) return;
      live.listen();
      ac.signal.addEventListener('abort', () => live.end(), { once: true });
      let caughtUp = false;
      let woken = false;
      while (!ac.signal.aborted && !live.ended) {
        const page = await untilAvailable(ac.signal, () => (woken ? live.refresh(opts) : live.read(changesSince, opts)));
        if (!page) break;
        woken = false;
        opts.since = page.last;
        // A Buffer goes out as a text frame with binary: false.
        if (page.entries.length > 0) ws.send(db.sharedReads.rendered(page, 'websocket', () => websocketBatch(page)), { binary: false });
        if (page.entries.length > 0 && opts.limit) break;
        if (page.entries.length > 0 && !page.complete) continue;
        if (!caughtUp) { ws.send('[]'); caughtUp = true; }
        woken = await live.wait(p.heartbeatMs > 0 ? p.heartbeatMs : 0);
        if (!woken && !ac.signal.aborted) ws.send('');
      }
      live.end();
      ws.close(1000);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(400, 'Invalid options');
      ws.send(JSON.stringify({ error: e.error, reason: e.reason }));
      ws.close(1008);
    }
  });
}

async function changes(ctx: RequestContext): Promise<void> {
  const q = ctx.query;
  let body: Record<string, unknown> = {};
  if (ctx.method === 'POST') body = (await ctx.optionalJsonObject()) ?? {};
  // Query parameters override the POST body.
  const p = parseFeedParams((n) => q.get(n) ?? body[n]);
  if (p.feed === 'websocket') throw new HttpError(400, 'feed=websocket needs a WebSocket upgrade');
  const db = ctx.coll;
  if (p.feed === 'continuous') return continuous(ctx, db, p);
  return normalOrLongpoll(ctx, db, p);
}

export function changesRoutes(): Route[] {
  return [{ methods: ['GET', 'POST'], pattern: '/{db}/_changes', handler: changes, keyspace: true }];
}

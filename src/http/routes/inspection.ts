/**
 * Looking inside a running deployment, as Sync Gateway 3.x does (spec sg3-admin.md 2.7-2.11):
 * `/{db}/_raw/{doc}`, `/{db}/_revtree/{doc}`, `/{db}/_dumpchannel/{channel}` and `/_status` on the
 * admin port, `/_ping` on every port, and the `channels` / `access` extras of `_all_docs` rows.
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from '../../errors.ts';
import type { Collection } from '../../db/collection.ts';
import { readRawSource, renderRaw } from '../../db/raw.ts';
import { decodeRevTree, leaves, type RevInfo, type RevTree } from '../../revtree/index.ts';
import { ALL_CHANNELS, type Principal } from '../../auth/principal.ts';
import type { RequestContext } from '../context.ts';
import type { DatabaseRegistry } from '../registry.ts';
import type { Route } from '../router.ts';
import { VERSION } from './database.ts';
import { DEFAULT_STATUS_OPTIONS } from '../../replication/isgr/registry.ts';

/** Sync Gateway's channel cache holds at most this many entries per channel (`channel_cache.max_length`). */
const DUMP_CHANNEL_ROWS = 500;

/** Sync Gateway's optional boolean query (`getOptBoolQuery`): only `true` is true; also says whether it was given. */
function optBool(q: URLSearchParams, name: string, dflt: boolean): { value: boolean; given: boolean } {
  const v = q.get(name);
  if (v === null || v === '') return { value: dflt, given: false };
  return { value: v === 'true', given: true };
}

async function rawDoc(ctx: RequestContext): Promise<void> {
  const q = ctx.query;
  const includeDoc = optBool(q, 'include_doc', true);
  const redact = optBool(q, 'redact', false).value;
  if (redact && includeDoc.value && includeDoc.given) {
    throw new HttpError(400, 'redact and include_doc cannot be true at the same time. If you want to redact you must specify include_doc=false');
  }
  const src = await readRawSource(ctx.coll, ctx.params.doc);
  const text = renderRaw(src, {
    includeDoc: redact && !includeDoc.given ? false : includeDoc.value,
    redactSalt: redact ? q.get('salt') || randomUUID() : undefined,
  });
  if (ctx.method === 'HEAD') {
    // Sync Gateway answers HEAD with the status alone, no Content-Type or length.
    ctx.res.statusCode = 200;
    ctx.res.end();
    return;
  }
  await ctx.sendJson(200, text);
}

function escapeHtml(s: string): string {
  // Go's html.EscapeString.
  return s.replace(/[&'<>"]/g, (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;' })[c]!);
}

/**
 * The channel's newest index rows as Sync Gateway's HTML table. Sync Gateway reads its channel
 * cache, which holds one entry per document and at most 500 of them; the index here holds the
 * same one row per document, so the newest 500 rows are what a full cache would show. `since` is
 * read and ignored, as in every 3.x release (GetChangeLog drops it). Flags: 1 deleted, 2 removed.
 */
async function dumpChannel(ctx: RequestContext): Promise<void> {
  const channel = ctx.params.channel;
  // The collection's channel; the title names the database, as Sync Gateway's does.
  const rows = await ctx.coll.store.channelTail(channel, DUMP_CHANNEL_ROWS);
  if (rows.length === 0) throw new HttpError(404, 'no such channel');
  const title = `/${escapeHtml(ctx.database.name)}: \u201c${escapeHtml(channel)}\u201d Channel`;
  let html = `<!DOCTYPE html><html><head><title>${title}</title></head><body>\n\t\t<h1>${title}</h1><code>\n`
    + `\t\t<p>Since = ${rows[0].seq - 1}</p>\n\t\t<table border=1>\n\t\t`
    + '\t<tr><th>Seq</th><th>Doc</th><th>Rev</th><th>Flags</th></tr>\n';
  for (const r of rows) {
    const flags = (r.deleted ? 1 : 0) | (r.removed !== undefined ? 2 : 0);
    html += `\t<tr><td>${r.seq}</td><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.rev)}</td><td>${flags.toString(2).padStart(8, '0')}</td></tr>\n`;
  }
  html += '</table>\n</code></html></body>';
  await ctx.send(200, html, 'text/html; charset="UTF-8"');
}

/**
 * A revision tree as Graphviz dot, as Sync Gateway's `RenderGraphvizDot` writes it: for each leaf,
 * the edge to it and then the edges up its branch (the root's own edge `"" -> root` only when the
 * root is a leaf), each edge once; a tombstone is red. Sync Gateway walks the leaves in Go's map
 * order, which is random; here they come in the tree's order.
 */
export function revTreeDot(tree: RevTree): string {
  const seen = new Set<string>();
  let out = 'digraph graphname{';
  const add = (node: RevInfo) => {
    const parent = `"${node.parent ?? ''}"`;
    const id = `"${node.id}"`;
    const text = node.deleted ? `${id} [fontcolor=red];${parent} -> ${id} [label="Tombstone", fontcolor=red];` : `${parent} -> ${id}; `;
    if (seen.has(text)) return;
    seen.add(text);
    out += text;
  };
  for (const leaf of leaves(tree)) {
    add(leaf);
    // A pruned tree's oldest node has no parent: it is a root, as in Sync Gateway.
    for (let node = leaf; node.parent !== null;) {
      const parent = tree.get(node.parent);
      if (!parent || parent.parent === null) break;
      node = parent;
      add(node);
    }
  }
  return out + '}';
}

/** `GET /{keyspace}/_revtree/{doc}` (admin): the document's revision tree, tombstoned or not. */
async function revTree(ctx: RequestContext): Promise<void> {
  const doc = await ctx.coll.getDocMeta(ctx.params.doc);
  if (!doc) throw new HttpError(404, 'missing');
  await ctx.send(200, revTreeDot(decodeRevTree(doc.tree)), 'text/plain; charset=UTF-8');
}

/** The product line `/` shows too. */
function productVersion(): { version: string; vendor: { name: string; version: string } } {
  return {
    version: `Couchbase Sync Gateway/${VERSION}(Syncgate) CE`,
    vendor: { name: 'Couchbase Sync Gateway', version: VERSION.split('.').slice(0, 2).join('.') },
  };
}

/**
 * `replication_status` is the list `_replicationStatus` shows and `cluster` the ISGR registry
 * (redacted definitions, live nodes; src/replication/isgr/); `require_resync` is empty.
 */
function statusRoute(registry: DatabaseRegistry): Route {
  const status = async (ctx: RequestContext) => {
    const databases: Record<string, unknown> = {};
    for (const name of registry.names().sort()) {
      const db = registry.get(name);
      if (!db) continue;
      const state = db.state;
      // ISGR hook (h-isgr-api): the database's replications, as every node sees them.
      const isgr = registry.replications?.(name);
      databases[name] = {
        seq: state === 'Offline' ? 0 : await db.store.lastSeq(),
        server_uuid: await db.store.uuid(),
        state,
        require_resync: [],
        replication_status: isgr ? await isgr.statuses(DEFAULT_STATUS_OPTIONS) : [],
        cluster: isgr ? await isgr.cluster() : { cluster_uuid: '', replications: {}, nodes: {} },
      };
    }
    const { version, vendor } = productVersion();
    await ctx.sendJson(200, JSON.stringify({ databases, version, vendor }));
  };
  return { methods: ['GET'], pattern: '/_status', handler: status, adminOnly: true };
}

/** Health check on every port, without credentials, logged at debug only (Sync Gateway's silent handler). */
export function pingRoute(): Route {
  const ping = async (ctx: RequestContext) => ctx.send(200, 'OK', 'text/plain; charset=UTF-8');
  return { methods: ['GET'], pattern: '/_ping', handler: ping, unauthenticated: true, quiet: true };
}

export function inspectionRoutes(registry: DatabaseRegistry): Route[] {
  return [
    pingRoute(),
    statusRoute(registry),
    // Both look at one collection (Sync Gateway's `{keyspace}` routes).
    { methods: ['GET'], pattern: '/{db}/_raw/{doc}', handler: rawDoc, adminOnly: true, keyspace: true },
    { methods: ['GET'], pattern: '/{db}/_revtree/{doc}', handler: revTree, adminOnly: true, keyspace: true },
    // `+`: a channel name may start with `_` or hold `/`, which a plain segment refuses.
    { methods: ['GET'], pattern: '/{db}/_dumpchannel/{channel+}', handler: dumpChannel, adminOnly: true, keyspace: true },
  ];
}

// ---- _all_docs extras ------------------------------------------------------------------------

export interface AllDocsExtras {
  /** `channels=true`. */
  channels: boolean;
  /** `access=true`, honoured for the admin only. */
  access: boolean;
}

/**
 * A row's `value` (`rev`, then `channels` and `access` when asked), as Sync Gateway's handleAllDocs
 * builds it: channels filtered to those the user can see and left out when none remain; `access`
 * maps each grantee of the document's `access()` calls to its channels and `role:<user>` to the
 * roles its `role()` calls give that user.
 */
export async function allDocsValue(db: Collection, p: Principal, row: { id: string; rev: string; channels: string[] }, extras: AllDocsExtras): Promise<Record<string, unknown>> {
  const value: Record<string, unknown> = { rev: row.rev };
  if (extras.channels) {
    const visible = p.kind === 'admin' || p.channels.has(ALL_CHANNELS) ? row.channels : row.channels.filter((c) => p.channels.has(c));
    if (visible.length) value.channels = visible;
  }
  if (extras.access && p.kind === 'admin') {
    const channelSets = new Map<string, Set<string>>();
    const roleSets = new Map<string, Set<string>>();
    for (const g of await db.store.grantsBy(row.id)) {
      const [sets, key] = g.kind === 'role' ? [roleSets, `role:${g.grantee}`] : [channelSets, g.grantee];
      if (!sets.has(key)) sets.set(key, new Set());
      sets.get(key)!.add(g.value);
    }
    // Role grants are written last: on a clash with an access() grantee named `role:<user>` they win, as in Go.
    const merged = new Map([...channelSets, ...roleSets]);
    if (merged.size) {
      const access: Record<string, string[]> = {};
      for (const key of [...merged.keys()].sort()) access[key] = [...merged.get(key)!].sort();
      value.access = access;
    }
  }
  return value;
}

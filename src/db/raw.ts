/**
 * `GET /{db}/_raw/{doc}`: a document as Sync Gateway keeps it, its body plus the `_sync` metadata
 * (`db/document.go` SyncData, `db/revtree.go` revTreeList), built from what Syncgate stores.
 *
 * Fields are written in SyncData's declared order, map keys sorted by bytes as Go sorts them, so
 * the JSON is assembled as text (a JS object would move integer-like keys such as `"10"` first).
 *
 * What Syncgate does not record is derived or left at Sync Gateway's own "unknown" value:
 * - `recent_sequences`: the document's sequence plus those of its channel index rows (one per
 *   channel, the last write that touched it), a subset of the writes Sync Gateway would list.
 * - `cas`: the document's compare-and-swap token, which here is its sequence, in CAS form.
 * - `value_crc32c`: CRC-32C of the stored body (empty for a tombstone, as Couchbase keeps none).
 * - `time_saved`: Go's zero time (no save times are stored); `tombstoned_at`, `new_rev` and the
 *   hidden flag are left out for the same reason; `channel_set` and `channel_set_history` are
 *   null (the index keeps where a channel membership ended, not where it began).
 * - `history.channels`: the channels of revisions whose bodies are kept (the leaves); null for
 *   older revisions, whose channels are not stored.
 */
import { createHash } from 'node:crypto';
import { HttpError } from '../errors.ts';
import { crc32cHex } from '../crc32c.ts';
import { decodeRevTree, leaves, liveLeaves } from '../revtree/index.ts';
import type { AttachmentMap, DocChannelRow, GrantRow, StoredDoc, StoredRevision } from '../storage/store.ts';
import type { Collection } from './collection.ts';
import { bodyKey } from '../storage/store.ts';

/** SyncData flag bits (`channels/log_entry.go`). */
const FLAG_DELETED = 1;
const FLAG_CONFLICT = 8;
const FLAG_BRANCHED = 16;

/** What Go prints for a zero time.Time: the value Sync Gateway shows when it does not know. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface RawOptions {
  /** Include the body (default true); `{}` otherwise. */
  includeDoc: boolean;
  /** When set, names are replaced by salted SHA-1 hashes (SyncData.HashRedact). */
  redactSalt?: string;
}

/** Everything `_sync` is made from, read from the store. */
export interface RawSource {
  doc: StoredDoc;
  channels: DocChannelRow[];
  grants: GrantRow[];
  /** Stored revisions of the document's leaves, by revision id (the winner among them). */
  leaves: Map<string, StoredRevision>;
  /** The store's uuid, Sync Gateway's server (cluster) UUID. */
  serverUuid: string;
}

/** The document as its collection keeps it; the server UUID is the database's. */
export async function readRawSource(coll: Collection, id: string): Promise<RawSource> {
  const store = coll.store;
  const doc = await store.getDoc(id);
  if (!doc) throw new HttpError(404, 'missing');
  const leafRevs = leaves(decodeRevTree(doc.tree)).map((l) => ({ id, rev: l.id }));
  const [channels, grants, bodies, serverUuid] = await Promise.all([
    store.docChannels(id), store.grantsBy(id), store.getRevisions(leafRevs), coll.db.store.uuid(),
  ]);
  const byRev = new Map<string, StoredRevision>();
  for (const k of leafRevs) {
    const r = bodies.get(bodyKey(id, k.rev));
    if (r) byRev.set(k.rev, r);
  }
  return { doc, channels, grants, leaves: byRev, serverUuid };
}

/** The whole `_raw` response body: the document (or `{}`) with `_sync` added last. */
export function renderRaw(src: RawSource, opts: RawOptions): string {
  const winner = src.leaves.get(src.doc.rev);
  let body = '{}';
  if (opts.includeDoc) body = src.doc.deleted ? '{"_deleted":true}' : winner?.body ?? '{}';
  const sync = syncData(src, opts.redactSalt);
  return body.length > 2 ? `${body.slice(0, -1)},"_sync":${sync}}` : `{"_sync":${sync}}`;
}

type Pair = [string, string];

function obj(pairs: Pair[]): string {
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function sorted(pairs: Pair[]): Pair[] {
  return pairs.sort((a, b) => byBytes(a[0], b[0]));
}

/** A Go `base.Set`: a sorted array. */
function set(names: Iterable<string>): string {
  return JSON.stringify([...new Set(names)].sort(byBytes));
}

function hashName(salt: string): (name: string) => string {
  return (name) => createHash('sha1').update(salt + name).digest('hex');
}

/** Little-endian hex, the way Couchbase's `${Mutation.CAS}` macro prints a CAS. */
function casString(seq: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(seq));
  return `0x${b.toString('hex')}`;
}

/** `exp`: RFC 3339 in UTC, without fractional seconds (Go's time.Time for a whole second). */
function rfc3339(secs: number): string {
  return new Date(secs * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function syncData(src: RawSource, redactSalt?: string): string {
  const name = redactSalt !== undefined ? hashName(redactSalt) : (n: string) => n;
  const { doc } = src;
  const tree = decodeRevTree(doc.tree);
  const out: Pair[] = [['rev', JSON.stringify(doc.rev)]];
  const flags = (doc.deleted ? FLAG_DELETED : 0) | (liveLeaves(tree).length > 1 ? FLAG_CONFLICT : 0)
    | (leaves(tree).length > 1 ? FLAG_BRANCHED : 0);
  if (flags) out.push(['flags', String(flags)]);
  if (doc.seq) out.push(['sequence', String(doc.seq)]);
  const recent = [...new Set([doc.seq, ...src.channels.map((c) => c.seq)])].filter((s) => s > 0).sort((a, b) => a - b);
  if (recent.length) out.push(['recent_sequences', JSON.stringify(recent)]);
  if (src.channels.length) {
    out.push(['channels', obj(sorted(src.channels.map((c): Pair => [name(c.channel), c.removed ? removal(c) : 'null'])))]);
  }
  const access = accessMap(src.grants, 'channel', name);
  if (access) out.push(['access', access]);
  const roleAccess = accessMap(src.grants, 'role', name);
  if (roleAccess) out.push(['role_access', roleAccess]);
  if (doc.expiry !== undefined) out.push(['exp', JSON.stringify(rfc3339(doc.expiry))]);
  out.push(['cas', JSON.stringify(casString(doc.seq))]);
  const winner = src.leaves.get(doc.rev);
  out.push(['value_crc32c', JSON.stringify(crc32cHex(Buffer.from(doc.deleted ? '' : winner?.body ?? '', 'utf8')))]);
  const atts = winner?.attachments;
  if (atts && Object.keys(atts).length) out.push(['attachments', attachmentsMeta(atts, name)]);
  // HashRedact copies neither the channel sets nor the cluster UUID.
  out.push(['channel_set', 'null'], ['channel_set_history', 'null'], ['time_saved', JSON.stringify(ZERO_TIME)]);
  if (redactSalt === undefined && src.serverUuid) out.push(['cluster_uuid', JSON.stringify(src.serverUuid)]);
  out.push(['history', history(src, name)]);
  return obj(out);
}

/** A channel the document left: `{"seq","rev","del"?}` (ChannelRemoval). */
function removal(c: DocChannelRow): string {
  const pairs: Pair[] = [['seq', String(c.seq)], ['rev', JSON.stringify(c.rev)]];
  if (c.deleted) pairs.push(['del', 'true']);
  return obj(pairs);
}

/** `access` (user → channel → seq) or `role_access` (user → role → seq); undefined when empty. */
function accessMap(grants: GrantRow[], kind: 'channel' | 'role', name: (n: string) => string): string | undefined {
  const by = new Map<string, Pair[]>();
  for (const g of grants) {
    if (g.kind !== kind) continue;
    const key = name(g.grantee);
    if (!by.has(key)) by.set(key, []);
    by.get(key)!.push([name(g.value), String(g.seq)]);
  }
  if (by.size === 0) return undefined;
  return obj(sorted([...by].map(([k, v]): Pair => [k, obj(sorted(v))])));
}

/** Sync Gateway 3.x keeps attachment metadata in `_sync`, as stubs of version 2 (content-addressed). */
function attachmentsMeta(atts: AttachmentMap, name: (n: string) => string): string {
  return obj(sorted(Object.entries(atts).map(([n, m]): Pair => {
    const fields: Pair[] = [];
    if (m.content_type !== undefined) fields.push(['content_type', JSON.stringify(m.content_type)]);
    fields.push(['digest', JSON.stringify(m.digest)]);
    if (m.encoded_length !== undefined) fields.push(['encoded_length', String(m.encoded_length)]);
    if (m.encoding !== undefined) fields.push(['encoding', JSON.stringify(m.encoding)]);
    fields.push(['length', String(m.length)], ['revpos', String(m.revpos)], ['stub', 'true'], ['ver', '2']);
    return [name(n), obj(fields)];
  })));
}

/** revTreeList: parallel arrays; bodies of non-winning leaves inline in `bodymap`. */
function history(src: RawSource, name: (n: string) => string): string {
  const enc = src.doc.tree;
  const bodymap: Pair[] = [];
  const hasAttachments: number[] = [];
  const channels = enc.revs.map((rev, i) => {
    const stored = src.leaves.get(rev);
    if (stored && rev !== src.doc.rev) {
      bodymap.push([String(i), JSON.stringify(stored.body)]);
      if (stored.attachments && Object.keys(stored.attachments).length) hasAttachments.push(i);
    }
    const chans = stored?.channels ?? (rev === src.doc.rev ? src.doc.channels : undefined);
    return chans ? set(chans.map(name)) : 'null';
  });
  const out: Pair[] = [['revs', JSON.stringify(enc.revs)], ['parents', JSON.stringify(enc.parents)]];
  if (enc.deleted?.length) out.push(['deleted', JSON.stringify(enc.deleted)]);
  if (bodymap.length) out.push(['bodymap', obj(sorted(bodymap))]);
  out.push(['channels', `[${channels.join(',')}]`]);
  if (hasAttachments.length) out.push(['hasAttachments', JSON.stringify(hasAttachments)]);
  return obj(out);
}

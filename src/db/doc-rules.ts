/**
 * The rules a document write and read follow, as plain functions: which body properties are the
 * user's, the default channel mapping, revision histories, what the sync function sees, access
 * errors and feed wake-up keys. Shared by the collections' write and read paths.
 */
import { randomBytes } from 'node:crypto';
import { HttpError } from '../errors.ts';
import { parseRevId } from '../revid.ts';
import type { Grant } from '../storage/store.ts';
import { canSee, type Principal } from '../auth/principal.ts';
import type { SyncResult, SyncUser } from '../sync/index.ts';
const SPECIAL_KEYS = new Set(['_id', '_rev', '_revisions', '_deleted', '_attachments', '_exp', '_removed',
  // What GET adds on request (conflicts, deleted_conflicts, revs_info): a client writing back a body
  // it read gets them ignored, as CouchDB does, rather than refused as user `_` properties.
  '_conflicts', '_deleted_conflicts', '_revs_info']);

/** Body as stored: user properties only. Reserved `_` properties are refused (Sync Gateway 2.x). */
export function userProperties(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(body)) {
    if (k.startsWith('_')) {
      if (SPECIAL_KEYS.has(k)) continue;
      throw new HttpError(400, "user defined top level properties beginning with '_' are not allowed in document body");
    }
    out[k] = body[k];
  }
  return out;
}

/** What the default sync function (`channel(doc.channels)`) assigns. */
export function defaultChannels(body: Record<string, unknown>): string[] {
  const v = body.channels;
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string') : [];
  for (const ch of list) {
    if (ch === '' || ch.includes(',')) throw new HttpError(400, `Illegal channel name "${ch}"`);
  }
  return list.includes('*') ? ['*'] : [...new Set(list)];
}

export function newDocId(): string {
  return randomBytes(16).toString('hex');
}

/** Access to a document's current revision: 403 for a user, 401 for the guest (who could log in). */
export function assertCanSee(p: Principal, channels: readonly string[]): void {
  if (canSee(p, channels)) return;
  if (p.kind === 'user' && p.isGuest) throw new HttpError(401, 'login required: You are not allowed to see this');
  throw new HttpError(403, 'forbidden');
}

/**
 * Notifier key for a principal: feeds of a user wait on it so a grant, a revocation or an admin
 * edit wakes them and they reload the user's channels. `role:<name>` grantees map to the role's key.
 */
export function principalKey(grantee: string): string {
  return grantee.startsWith('role:') ? `_role:${grantee.slice(5)}` : `_user:${grantee}`;
}

/** `doc` / `oldDoc` as the sync function sees them: the body plus `_id`, `_rev` and `_deleted`. */
export function syncDocJson(id: string, rev: string, deleted: boolean, body: string): string {
  const head = `{"_id":${JSON.stringify(id)},"_rev":${JSON.stringify(rev)}${deleted ? ',"_deleted":true' : ''}`;
  return body.length > 2 ? head + ',' + body.slice(1) : head + '}';
}

export function syncUser(p: Principal): SyncUser | null {
  if (p.kind === 'admin') return null;
  // GUEST is a real user for require* checks, with the name "".
  return { name: p.isGuest ? '' : p.name, roles: [...p.roles.keys()], channels: [...p.channels.keys()] };
}

export function emptySync(): SyncResult {
  return { channels: [], access: {}, roles: {} };
}

export function grantsOf(r: SyncResult): Grant[] {
  const out: Grant[] = [];
  for (const [grantee, chs] of Object.entries(r.access)) for (const value of chs) out.push({ grantee, kind: 'channel', value });
  for (const [grantee, roles] of Object.entries(r.roles)) for (const value of roles) out.push({ grantee, kind: 'role', value });
  return out;
}

export function grantKey(g: Grant): string {
  return `${g.grantee}\u0000${g.kind}\u0000${g.value}`;
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size !== sb.size) return false;
  for (const x of sa) if (!sb.has(x)) return false;
  return true;
}

export function parseLocalRev(rev: unknown): number {
  if (rev === undefined || rev === null || rev === '') return 0;
  if (typeof rev !== 'string') throw new HttpError(400, 'Invalid revision ID');
  const m = /^0-(\d+)$/.exec(rev);
  if (!m) throw new HttpError(409, 'Document update conflict');
  return Number(m[1]);
}

/** History of a replicated revision, newest first, from `_revisions` or a lone `_rev`. */
export function revisionHistory(body: Record<string, unknown>): string[] {
  const revs = body._revisions;
  if (revs !== undefined) {
    const r = revs as { start?: unknown; ids?: unknown };
    if (!r || typeof r !== 'object' || typeof r.start !== 'number' || !Number.isInteger(r.start) || r.start < 1
      || !Array.isArray(r.ids) || r.ids.length === 0 || r.ids.length > r.start
      || !r.ids.every((d) => typeof d === 'string' && d.length > 0)) {
      throw new HttpError(400, 'Bad _revisions');
    }
    const hist = (r.ids as string[]).map((d, i) => `${(r.start as number) - i}-${d}`);
    // `_revisions` rules and `_rev` beside it is ignored, as in Sync Gateway (rest.ParseRevisions)
    // and CouchDB (couch_doc:transfer_fields): a replicator's `_rev` need not be the head.
    for (const h of hist) parseRevId(h);
    return hist;
  }
  if (typeof body._rev === 'string') {
    parseRevId(body._rev);
    return [body._rev];
  }
  throw new HttpError(400, 'Bad _revisions');
}

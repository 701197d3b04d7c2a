/**
 * Revision ids (spec §6.1, SG `db/revision.go`):
 *   rev = `<gen>-<md5hex( byte(len(parent)) ‖ parent ‖ canonicalJSON(body) )>`.
 */
import { createHash } from 'node:crypto';
import { HttpError } from './errors.ts';

export interface ParsedRevId { gen: number; digest: string }

const REV_ID = /^([1-9]\d*)-(\S+)$/;

/** Split `<gen>-<digest>`; 400 `Invalid revision ID` unless gen ≥ 1 and the digest is non-empty without whitespace. */
export function parseRevId(rev: string): ParsedRevId {
  const m = REV_ID.exec(rev);
  const gen = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(gen)) throw new HttpError(400, 'Invalid revision ID');
  return { gen, digest: m[2]! };
}

/** The id of a child of `parentRev` ('' for generation 1) with the given canonical body. */
export function createRevId(parentRev: string, canonicalBody: string): string {
  const gen = parentRev === '' ? 1 : parseRevId(parentRev).gen + 1;
  const parentLen = Buffer.byteLength(parentRev, 'utf8');
  const digest = createHash('md5')
    .update(Buffer.of(parentLen & 0xff)) // Go: byte(len(parentRevID)), truncating
    .update(parentRev, 'utf8')
    .update(canonicalBody, 'utf8')
    .digest('hex');
  return `${gen}-${digest}`;
}

/** Lenient split used for ordering: an unparseable generation sorts lowest (SG's ParseRevID gives -1). */
function genAndDigest(rev: string): [number, string] {
  const dash = rev.indexOf('-');
  if (dash <= 0) return [-1, ''];
  const prefix = rev.slice(0, dash);
  const gen = /^\d+$/.test(prefix) ? Number(prefix) : -1;
  return gen >= 1 ? [gen, rev.slice(dash + 1)] : [-1, ''];
}

/** Order by generation, then by digest string (SG `CompareRevIDs`; the greater one wins). */
export function compareRevIds(a: string, b: string): number {
  const [ga, da] = genAndDigest(a);
  const [gb, db] = genAndDigest(b);
  if (ga !== gb) return ga < gb ? -1 : 1;
  if (da === db) return 0;
  return da < db ? -1 : 1;
}

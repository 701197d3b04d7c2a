/**
 * Fleece's string patch (`["<ops>", 0, 2]`), over the UTF-8 bytes of the old string:
 * `N=` copy N bytes, `N-` skip N bytes, `N+<N bytes>|` insert N bytes (the `|` is a check
 * character, not a delimiter: the inserted bytes may contain any of `=+-|`).
 */
import { DeltaError } from './errors.ts';
import { DIFF_DELETE, DIFF_EQUAL, DIFF_INSERT, diffText } from './text-diff.ts';

const isContinuation = (b: number): boolean => (b & 0xc0) === 0x80;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Strings above this many bytes are replaced whole (go-fleecedelta's limit in Sync Gateway). */
const MAX_DIFF_BYTES = 1024 * 1024;
/**
 * Bisection steps (diagonals visited) before a diff falls back to delete + insert: a deterministic
 * stand-in for Fleece's 0.25 s timeout (tens of milliseconds here). Small edits of large strings cost far
 * less (common prefix and suffix are trimmed first); only wholesale rewrites reach it.
 */
const MAX_DIFF_STEPS = 300_000;

interface Hunk { oldStart: number; oldEnd: number; newStart: number; newEnd: number }

/**
 * The ops for turning `oldStr` into `newStr`, or null when a patch is not worth it: the new string
 * is shorter than `minLength` bytes, or the ops reach `len(new) - 6` bytes (Fleece's give-up rule).
 */
export function createStringPatch(oldStr: string, newStr: string, minLength: number): string | null {
  if (LONE_SURROGATE.test(oldStr) || LONE_SURROGATE.test(newStr)) return null; // lone surrogates have no UTF-8 form
  const oldBytes = Buffer.from(oldStr, 'utf8');
  const newBytes = Buffer.from(newStr, 'utf8');
  if (newBytes.length < minLength) return null;
  // Sync Gateway's go-fleecedelta gives up on strings over 1 MiB (and after 1 ms); Fleece after 0.25 s.
  if (oldBytes.length > MAX_DIFF_BYTES || newBytes.length > MAX_DIFF_BYTES) return null;
  const budget = Math.min(8 * (oldBytes.length + newBytes.length) + 10_000, MAX_DIFF_STEPS);
  const diffs = diffText(oldBytes.toString('latin1'), newBytes.toString('latin1'), budget);

  // Group consecutive edits into hunks, then widen each hunk so it never splits a UTF-8 sequence.
  // Widening moves both sides together across equal bytes, so old and new stay in step; hunks that
  // come to touch are merged. (Fleece widens deletes and inserts separately; the result is the same
  // for the published vectors and this way is also correct when an insert alone is widened.)
  const hunks: Hunk[] = [];
  let o = 0, n = 0;
  for (const [op, text] of diffs) {
    if (op === DIFF_EQUAL) { o += text.length; n += text.length; continue; }
    let h = hunks[hunks.length - 1];
    if (!h || h.oldEnd !== o || h.newEnd !== n) { h = { oldStart: o, oldEnd: o, newStart: n, newEnd: n }; hunks.push(h); }
    if (op === DIFF_DELETE) { o += text.length; h.oldEnd = o; } else if (op === DIFF_INSERT) { n += text.length; h.newEnd = n; }
  }
  const snapped: Hunk[] = [];
  for (const h0 of hunks) {
    const h = { ...h0 };
    while ((h.oldStart < oldBytes.length && isContinuation(oldBytes[h.oldStart]!))
      || (h.newStart < newBytes.length && isContinuation(newBytes[h.newStart]!))) {
      h.oldStart--; h.newStart--;
    }
    while ((h.oldEnd < oldBytes.length && isContinuation(oldBytes[h.oldEnd]!))
      || (h.newEnd < newBytes.length && isContinuation(newBytes[h.newEnd]!))) {
      h.oldEnd++; h.newEnd++;
    }
    const prev = snapped[snapped.length - 1];
    if (prev && h.oldStart <= prev.oldEnd) {
      prev.oldEnd = Math.max(prev.oldEnd, h.oldEnd);
      prev.newEnd = Math.max(prev.newEnd, h.newEnd);
    } else snapped.push(h);
  }

  const parts: Buffer[] = [];
  let size = 0;
  const emit = (b: Buffer): void => { parts.push(b); size += b.length; };
  let pos = 0;
  for (const h of snapped) {
    if (h.oldStart > pos) emit(Buffer.from(`${h.oldStart - pos}=`));
    if (h.oldEnd > h.oldStart) emit(Buffer.from(`${h.oldEnd - h.oldStart}-`));
    if (h.newEnd > h.newStart) {
      emit(Buffer.from(`${h.newEnd - h.newStart}+`));
      emit(newBytes.subarray(h.newStart, h.newEnd));
      emit(Buffer.from('|'));
    }
    pos = h.oldEnd;
    if (size + 6 >= newBytes.length) return null;
  }
  if (oldBytes.length > pos) emit(Buffer.from(`${oldBytes.length - pos}=`));
  const ops = Buffer.concat(parts).toString('utf8');
  // Belt and braces: a patch we cannot apply back ourselves is never sent (full value instead).
  try {
    return applyStringPatch(oldStr, ops) === newStr ? ops : null;
  } catch {
    return null;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Applies string-patch ops to `oldStr`; throws DeltaError on any malformed or mismatched op. */
export function applyStringPatch(oldStr: string, ops: string): string {
  if (ops.length === 0) throw new DeltaError('Invalid text diff in delta');
  const old = Buffer.from(oldStr, 'utf8');
  const patch = Buffer.from(ops, 'utf8');
  const out: Buffer[] = [];
  let pos = 0, i = 0;
  while (i < patch.length) {
    let len = 0, digits = 0;
    while (i < patch.length && patch[i]! >= 48 && patch[i]! <= 57) {
      len = len * 10 + (patch[i]! - 48);
      i++; digits++;
      if (len > patch.length + old.length) throw new DeltaError('Invalid length in text delta');
    }
    if (digits === 0 || i >= patch.length) throw new DeltaError('Invalid op in text delta');
    const op = patch[i++];
    if (op === 0x3d /* = */) {
      if (pos + len > old.length) throw new DeltaError('Invalid length in text delta');
      out.push(old.subarray(pos, pos + len));
      pos += len;
    } else if (op === 0x2d /* - */) {
      if (pos + len > old.length) throw new DeltaError('Invalid length in text delta');
      pos += len;
    } else if (op === 0x2b /* + */) {
      if (i + len >= patch.length || patch[i + len] !== 0x7c /* | */) {
        throw new DeltaError('Missing insertion delimiter in text delta');
      }
      out.push(patch.subarray(i, i + len));
      i += len + 1;
    } else {
      throw new DeltaError('Unknown op in text delta');
    }
  }
  if (pos !== old.length) throw new DeltaError('Length mismatch in text delta');
  try {
    return utf8.decode(Buffer.concat(out));
  } catch {
    throw new DeltaError('Text delta splits a UTF-8 character');
  }
}

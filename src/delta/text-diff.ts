/**
 * A text diff in the manner of Google's diff-match-patch (the library Fleece's JSONDelta calls for
 * string patches): common prefix/suffix, the "shorter inside longer" and half-match shortcuts,
 * Myers' bisection, then the same clean-ups `patch_make` runs (merge, semantic, semantic-lossless,
 * efficiency with edit cost 4). Matching the clean-ups is what makes our string patches come out
 * byte-for-byte like Couchbase Lite's for the published vectors.
 *
 * Texts are "binary strings": one char per UTF-8 byte (char codes 0-255), because Fleece diffs the
 * UTF-8 bytes. Pure: instead of diff-match-patch's wall-clock timeout, a deterministic budget of
 * bisection steps; when it runs out the middle becomes one delete + one insert, as on a timeout.
 * Line mode (a speed-up for long multi-line texts) is left out: it changes speed, not validity.
 */
export const DIFF_DELETE = -1;
export const DIFF_INSERT = 1;
export const DIFF_EQUAL = 0;
export type Diff = [op: -1 | 0 | 1, text: string];

const EDIT_COST = 4;

interface Budget { steps: number }

/** Diffs two binary strings; `maxSteps` bounds the bisection work (deterministic stand-in for a timeout). */
export function diffText(text1: string, text2: string, maxSteps = 2_000_000): Diff[] {
  const diffs = diffMain(text1, text2, { steps: maxSteps });
  if (diffs.length > 2) {
    cleanupSemantic(diffs);
    cleanupEfficiency(diffs);
  }
  return diffs;
}

function diffMain(text1: string, text2: string, budget: Budget): Diff[] {
  if (text1 === text2) return text1 ? [[DIFF_EQUAL, text1]] : [];
  let n = commonPrefix(text1, text2);
  const prefix = text1.substring(0, n);
  text1 = text1.substring(n);
  text2 = text2.substring(n);
  n = commonSuffix(text1, text2);
  const suffix = text1.substring(text1.length - n);
  text1 = text1.substring(0, text1.length - n);
  text2 = text2.substring(0, text2.length - n);
  const diffs = compute(text1, text2, budget);
  if (prefix) diffs.unshift([DIFF_EQUAL, prefix]);
  if (suffix) diffs.push([DIFF_EQUAL, suffix]);
  cleanupMerge(diffs);
  return diffs;
}

function compute(text1: string, text2: string, budget: Budget): Diff[] {
  if (!text1) return [[DIFF_INSERT, text2]];
  if (!text2) return [[DIFF_DELETE, text1]];
  const longText = text1.length > text2.length ? text1 : text2;
  const shortText = text1.length > text2.length ? text2 : text1;
  const i = longText.indexOf(shortText);
  if (i !== -1) {
    const op = text1.length > text2.length ? DIFF_DELETE : DIFF_INSERT;
    return [[op, longText.substring(0, i)], [DIFF_EQUAL, shortText], [op, longText.substring(i + shortText.length)]];
  }
  if (shortText.length === 1) return [[DIFF_DELETE, text1], [DIFF_INSERT, text2]];
  const hm = halfMatch(text1, text2);
  if (hm) {
    const [a1, a2, b1, b2, common] = hm;
    return [...diffMain(a1, b1, budget), [DIFF_EQUAL, common], ...diffMain(a2, b2, budget)];
  }
  return bisect(text1, text2, budget);
}

function bisect(text1: string, text2: string, budget: Budget): Diff[] {
  const len1 = text1.length, len2 = text2.length;
  const maxD = Math.ceil((len1 + len2) / 2);
  const vOffset = maxD, vLength = 2 * maxD;
  const v1 = new Array<number>(vLength).fill(-1);
  const v2 = new Array<number>(vLength).fill(-1);
  v1[vOffset + 1] = 0;
  v2[vOffset + 1] = 0;
  const delta = len1 - len2;
  const front = delta % 2 !== 0;
  let k1start = 0, k1end = 0, k2start = 0, k2end = 0;
  for (let d = 0; d < maxD; d++) {
    budget.steps -= 2 * d + 1;
    if (budget.steps < 0) break;
    for (let k1 = -d + k1start; k1 <= d - k1end; k1 += 2) {
      const k1Offset = vOffset + k1;
      let x1 = k1 === -d || (k1 !== d && v1[k1Offset - 1]! < v1[k1Offset + 1]!) ? v1[k1Offset + 1]! : v1[k1Offset - 1]! + 1;
      let y1 = x1 - k1;
      while (x1 < len1 && y1 < len2 && text1.charCodeAt(x1) === text2.charCodeAt(y1)) { x1++; y1++; }
      v1[k1Offset] = x1;
      if (x1 > len1) k1end += 2;
      else if (y1 > len2) k1start += 2;
      else if (front) {
        const k2Offset = vOffset + delta - k1;
        if (k2Offset >= 0 && k2Offset < vLength && v2[k2Offset] !== -1) {
          const x2 = len1 - v2[k2Offset]!;
          if (x1 >= x2) return bisectSplit(text1, text2, x1, y1, budget);
        }
      }
    }
    for (let k2 = -d + k2start; k2 <= d - k2end; k2 += 2) {
      const k2Offset = vOffset + k2;
      let x2 = k2 === -d || (k2 !== d && v2[k2Offset - 1]! < v2[k2Offset + 1]!) ? v2[k2Offset + 1]! : v2[k2Offset - 1]! + 1;
      let y2 = x2 - k2;
      while (x2 < len1 && y2 < len2 && text1.charCodeAt(len1 - x2 - 1) === text2.charCodeAt(len2 - y2 - 1)) { x2++; y2++; }
      v2[k2Offset] = x2;
      if (x2 > len1) k2end += 2;
      else if (y2 > len2) k2start += 2;
      else if (!front) {
        const k1Offset = vOffset + delta - k2;
        if (k1Offset >= 0 && k1Offset < vLength && v1[k1Offset] !== -1) {
          const x1 = v1[k1Offset]!;
          const y1 = vOffset + x1 - k1Offset;
          if (x1 >= len1 - x2) return bisectSplit(text1, text2, x1, y1, budget);
        }
      }
    }
  }
  return [[DIFF_DELETE, text1], [DIFF_INSERT, text2]];
}

function bisectSplit(text1: string, text2: string, x: number, y: number, budget: Budget): Diff[] {
  const a = diffMain(text1.substring(0, x), text2.substring(0, y), budget);
  const b = diffMain(text1.substring(x), text2.substring(y), budget);
  return a.concat(b);
}

export function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

export function commonSuffix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  return i;
}

function commonOverlap(text1: string, text2: string): number {
  const len1 = text1.length, len2 = text2.length;
  if (len1 === 0 || len2 === 0) return 0;
  if (len1 > len2) text1 = text1.substring(len1 - len2);
  else if (len1 < len2) text2 = text2.substring(0, len1);
  const textLength = Math.min(len1, len2);
  if (text1 === text2) return textLength;
  let best = 0, length = 1;
  for (;;) {
    const pattern = text1.substring(textLength - length);
    const found = text2.indexOf(pattern);
    if (found === -1) return best;
    length += found;
    if (found === 0 || text1.substring(textLength - length) === text2.substring(0, length)) {
      best = length;
      length++;
    }
  }
}

type HalfMatch = [string, string, string, string, string];

function halfMatch(text1: string, text2: string): HalfMatch | null {
  const longText = text1.length > text2.length ? text1 : text2;
  const shortText = text1.length > text2.length ? text2 : text1;
  if (longText.length < 4 || shortText.length * 2 < longText.length) return null;
  const hm1 = halfMatchI(longText, shortText, Math.ceil(longText.length / 4));
  const hm2 = halfMatchI(longText, shortText, Math.ceil(longText.length / 2));
  let hm: HalfMatch;
  if (!hm1 && !hm2) return null;
  else if (!hm2) hm = hm1!;
  else if (!hm1) hm = hm2;
  else hm = hm1[4].length > hm2[4].length ? hm1 : hm2;
  if (text1.length > text2.length) return hm;
  return [hm[2], hm[3], hm[0], hm[1], hm[4]];
}

function halfMatchI(longText: string, shortText: string, i: number): HalfMatch | null {
  const seed = longText.substring(i, i + Math.floor(longText.length / 4));
  let j = -1;
  let best = '', bestLongA = '', bestLongB = '', bestShortA = '', bestShortB = '';
  while ((j = shortText.indexOf(seed, j + 1)) !== -1) {
    const pre = commonPrefix(longText.substring(i), shortText.substring(j));
    const suf = commonSuffix(longText.substring(0, i), shortText.substring(0, j));
    if (best.length < suf + pre) {
      best = shortText.substring(j - suf, j) + shortText.substring(j, j + pre);
      bestLongA = longText.substring(0, i - suf);
      bestLongB = longText.substring(i + pre);
      bestShortA = shortText.substring(0, j - suf);
      bestShortB = shortText.substring(j + pre);
    }
  }
  return best.length * 2 >= longText.length ? [bestLongA, bestLongB, bestShortA, bestShortB, best] : null;
}

// ---------------------------------------------------------------------------------------------
// Clean-ups, as diff-match-patch has them (the order of the arms matters for identical output).

function cleanupMerge(diffs: Diff[]): void {
  diffs.push([DIFF_EQUAL, '']);
  let pointer = 0, countDelete = 0, countInsert = 0, textDelete = '', textInsert = '';
  while (pointer < diffs.length) {
    const [op, text] = diffs[pointer]!;
    if (op === DIFF_INSERT) { countInsert++; textInsert += text; pointer++; continue; }
    if (op === DIFF_DELETE) { countDelete++; textDelete += text; pointer++; continue; }
    if (countDelete + countInsert > 1) {
      if (countDelete !== 0 && countInsert !== 0) {
        let n = commonPrefix(textInsert, textDelete);
        if (n !== 0) {
          const before = pointer - countDelete - countInsert - 1;
          if (before >= 0 && diffs[before]![0] === DIFF_EQUAL) diffs[before]![1] += textInsert.substring(0, n);
          else { diffs.splice(0, 0, [DIFF_EQUAL, textInsert.substring(0, n)]); pointer++; }
          textInsert = textInsert.substring(n);
          textDelete = textDelete.substring(n);
        }
        n = commonSuffix(textInsert, textDelete);
        if (n !== 0) {
          diffs[pointer]![1] = textInsert.substring(textInsert.length - n) + diffs[pointer]![1];
          textInsert = textInsert.substring(0, textInsert.length - n);
          textDelete = textDelete.substring(0, textDelete.length - n);
        }
      }
      pointer -= countDelete + countInsert;
      diffs.splice(pointer, countDelete + countInsert);
      if (textDelete.length) { diffs.splice(pointer, 0, [DIFF_DELETE, textDelete]); pointer++; }
      if (textInsert.length) { diffs.splice(pointer, 0, [DIFF_INSERT, textInsert]); pointer++; }
      pointer++;
    } else if (pointer !== 0 && diffs[pointer - 1]![0] === DIFF_EQUAL) {
      diffs[pointer - 1]![1] += text;
      diffs.splice(pointer, 1);
    } else {
      pointer++;
    }
    countInsert = 0; countDelete = 0; textDelete = ''; textInsert = '';
  }
  if (diffs[diffs.length - 1]![1] === '') diffs.pop();

  // Second pass: single edits between equalities that can slide sideways to swallow one.
  let changes = false;
  pointer = 1;
  while (pointer < diffs.length - 1) {
    const prev = diffs[pointer - 1]!, cur = diffs[pointer]!, next = diffs[pointer + 1]!;
    if (prev[0] === DIFF_EQUAL && next[0] === DIFF_EQUAL) {
      if (cur[1].substring(cur[1].length - prev[1].length) === prev[1]) {
        cur[1] = prev[1] + cur[1].substring(0, cur[1].length - prev[1].length);
        next[1] = prev[1] + next[1];
        diffs.splice(pointer - 1, 1);
        changes = true;
      } else if (cur[1].substring(0, next[1].length) === next[1]) {
        prev[1] += next[1];
        cur[1] = cur[1].substring(next[1].length) + next[1];
        diffs.splice(pointer + 1, 1);
        changes = true;
      }
    }
    pointer++;
  }
  if (changes) cleanupMerge(diffs);
}

function cleanupSemantic(diffs: Diff[]): void {
  let changes = false;
  const equalities: number[] = [];
  let lastEquality: string | null = null;
  let pointer = 0;
  let ins1 = 0, del1 = 0, ins2 = 0, del2 = 0;
  while (pointer < diffs.length) {
    const [op, text] = diffs[pointer]!;
    if (op === DIFF_EQUAL) {
      equalities.push(pointer);
      ins1 = ins2; del1 = del2; ins2 = 0; del2 = 0;
      lastEquality = text;
    } else {
      if (op === DIFF_INSERT) ins2 += text.length; else del2 += text.length;
      if (lastEquality && lastEquality.length <= Math.max(ins1, del1) && lastEquality.length <= Math.max(ins2, del2)) {
        const at = equalities[equalities.length - 1]!;
        diffs.splice(at, 0, [DIFF_DELETE, lastEquality]);
        diffs[at + 1]![0] = DIFF_INSERT;
        equalities.pop();
        equalities.pop();
        pointer = equalities.length > 0 ? equalities[equalities.length - 1]! : -1;
        ins1 = 0; del1 = 0; ins2 = 0; del2 = 0;
        lastEquality = null;
        changes = true;
      }
    }
    pointer++;
  }
  if (changes) cleanupMerge(diffs);
  cleanupSemanticLossless(diffs);

  // Overlaps between a deletion and the insertion after it become an equality when large enough.
  pointer = 1;
  while (pointer < diffs.length) {
    if (diffs[pointer - 1]![0] === DIFF_DELETE && diffs[pointer]![0] === DIFF_INSERT) {
      const deletion = diffs[pointer - 1]![1];
      const insertion = diffs[pointer]![1];
      const o1 = commonOverlap(deletion, insertion);
      const o2 = commonOverlap(insertion, deletion);
      if (o1 >= o2) {
        if (o1 >= deletion.length / 2 || o1 >= insertion.length / 2) {
          diffs.splice(pointer, 0, [DIFF_EQUAL, insertion.substring(0, o1)]);
          diffs[pointer - 1]![1] = deletion.substring(0, deletion.length - o1);
          diffs[pointer + 1]![1] = insertion.substring(o1);
          pointer++;
        }
      } else if (o2 >= deletion.length / 2 || o2 >= insertion.length / 2) {
        diffs.splice(pointer, 0, [DIFF_EQUAL, deletion.substring(0, o2)]);
        diffs[pointer - 1] = [DIFF_INSERT, insertion.substring(0, insertion.length - o2)];
        diffs[pointer + 1] = [DIFF_DELETE, deletion.substring(o2)];
        pointer++;
      }
      pointer++;
    }
    pointer++;
  }
}

// Character classes as C's <ctype.h> has them in the "C" locale (Fleece's diff runs on bytes).
const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
const isLineBreak = (c: number): boolean => c === 10 || c === 13;

function semanticScore(one: string, two: string): number {
  if (!one || !two) return 6;
  const c1 = one.charCodeAt(one.length - 1), c2 = two.charCodeAt(0);
  const nonAlnum1 = !isAlnum(c1), nonAlnum2 = !isAlnum(c2);
  const ws1 = nonAlnum1 && isSpace(c1), ws2 = nonAlnum2 && isSpace(c2);
  const lb1 = ws1 && isLineBreak(c1), lb2 = ws2 && isLineBreak(c2);
  const blank1 = lb1 && /\n\r?\n$/.test(one), blank2 = lb2 && /^\r?\n\r?\n/.test(two);
  if (blank1 || blank2) return 5;
  if (lb1 || lb2) return 4;
  if (nonAlnum1 && !ws1 && ws2) return 3;
  if (ws1 || ws2) return 2;
  if (nonAlnum1 || nonAlnum2) return 1;
  return 0;
}

/** Slides single edits between two equalities to the most natural word/sentence boundary. */
function cleanupSemanticLossless(diffs: Diff[]): void {
  let pointer = 1;
  while (pointer < diffs.length - 1) {
    if (diffs[pointer - 1]![0] === DIFF_EQUAL && diffs[pointer + 1]![0] === DIFF_EQUAL) {
      let eq1 = diffs[pointer - 1]![1], edit = diffs[pointer]![1], eq2 = diffs[pointer + 1]![1];
      const offset = commonSuffix(eq1, edit);
      if (offset) {
        const common = edit.substring(edit.length - offset);
        eq1 = eq1.substring(0, eq1.length - offset);
        edit = common + edit.substring(0, edit.length - offset);
        eq2 = common + eq2;
      }
      let best1 = eq1, bestEdit = edit, best2 = eq2;
      let bestScore = semanticScore(eq1, edit) + semanticScore(edit, eq2);
      while (eq2.length > 0 && edit.charCodeAt(0) === eq2.charCodeAt(0)) {
        eq1 += edit.charAt(0);
        edit = edit.substring(1) + eq2.charAt(0);
        eq2 = eq2.substring(1);
        const score = semanticScore(eq1, edit) + semanticScore(edit, eq2);
        if (score >= bestScore) { bestScore = score; best1 = eq1; bestEdit = edit; best2 = eq2; }
      }
      if (diffs[pointer - 1]![1] !== best1) {
        if (best1) diffs[pointer - 1]![1] = best1;
        else { diffs.splice(pointer - 1, 1); pointer--; }
        diffs[pointer]![1] = bestEdit;
        if (best2) diffs[pointer + 1]![1] = best2;
        else { diffs.splice(pointer + 1, 1); pointer--; }
      }
    }
    pointer++;
  }
}

/** Folds short equalities into the edits around them when that makes fewer, cheaper operations. */
function cleanupEfficiency(diffs: Diff[]): void {
  let changes = false;
  const equalities: number[] = [];
  let lastEquality: string | null = null;
  let pointer = 0;
  let preIns = false, preDel = false, postIns = false, postDel = false;
  while (pointer < diffs.length) {
    const [op, text] = diffs[pointer]!;
    if (op === DIFF_EQUAL) {
      if (text.length < EDIT_COST && (postIns || postDel)) {
        equalities.push(pointer);
        preIns = postIns; preDel = postDel;
        lastEquality = text;
      } else {
        equalities.length = 0;
        lastEquality = null;
      }
      postIns = postDel = false;
    } else {
      if (op === DIFF_DELETE) postDel = true; else postIns = true;
      const flags = Number(preIns) + Number(preDel) + Number(postIns) + Number(postDel);
      if (lastEquality && ((preIns && preDel && postIns && postDel) || (lastEquality.length < EDIT_COST / 2 && flags === 3))) {
        const at = equalities[equalities.length - 1]!;
        diffs.splice(at, 0, [DIFF_DELETE, lastEquality]);
        diffs[at + 1]![0] = DIFF_INSERT;
        equalities.pop();
        lastEquality = null;
        if (preIns && preDel) {
          postIns = postDel = true;
          equalities.length = 0;
        } else {
          equalities.pop();
          pointer = equalities.length > 0 ? equalities[equalities.length - 1]! : -1;
          postIns = postDel = false;
        }
        changes = true;
      }
    }
    pointer++;
  }
  if (changes) cleanupMerge(diffs);
}

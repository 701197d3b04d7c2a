/**
 * The JSON delta codec of Couchbase Lite (Fleece `JSONDelta`, `FLCreateJSONDelta` /
 * `FLApplyJSONDelta`), as Sync Gateway Enterprise speaks it over BLIP (spec collections-delta.md §2.7):
 *
 *   scalar            replace with that scalar (written bare only inside a container)
 *   []                delete the old value (its key disappears from the parent object)
 *   [V]               replace/insert V (V a container, or any value at the top level)
 *   {k: D, ...}       on an object: patch each key; on an array: keys "i" patch index i,
 *                     key "N-" replaces everything from index N on with the given array
 *   {}                no change
 *   ["ops", 0, 2]     string patch over UTF-8 bytes (string-patch.ts)
 *   [old, new], [x, 0, 0]   JsonDiffPatch forms: accepted, never generated
 *
 * Pure: no I/O, no clock. Applying a bad delta throws DeltaError, never anything else.
 */
import { DeltaError } from './errors.ts';
import { applyStringPatch, createStringPatch } from './string-patch.ts';

export { DeltaError } from './errors.ts';

export interface DeltaOptions {
  /** Strings shorter than this many UTF-8 bytes are replaced whole (Couchbase Lite and SG: 60). */
  minStringDiffLength?: number;
}

export const MIN_STRING_DIFF_LENGTH = 60;

const TEXT_DIFF_CODE = 2;
const DELETION_CODE = 0;

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** Sets a key even when it is `__proto__` (JSON.parse makes such keys own properties too). */
function setKey(o: JsonObject, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** Deep equality of JSON values (key order ignored, as Fleece's `isEqual`). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) if (!hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

const ABSENT = Symbol('absent');
type Maybe = unknown | typeof ABSENT;

/** The delta that turns `oldValue` into `newValue`; `{}` when they are equal. */
export function createDelta(oldValue: unknown, newValue: unknown, options: DeltaOptions = {}): unknown {
  const minLength = options.minStringDiffLength ?? MIN_STRING_DIFF_LENGTH;
  const d = write(oldValue, newValue, true, minLength);
  return d === ABSENT ? {} : d;
}

/** A delta entry, or ABSENT when the value did not change. */
function write(old: Maybe, nuu: Maybe, topLevel: boolean, minLength: number): Maybe {
  if (old !== ABSENT) {
    if (nuu === ABSENT) return [];
    if (isObject(old) && isObject(nuu)) {
      const out: JsonObject = {};
      let changed = false;
      for (const k of Object.keys(nuu)) {
        const d = write(hasOwn(old, k) ? old[k] : ABSENT, nuu[k], false, minLength);
        if (d !== ABSENT) { setKey(out, k, d); changed = true; }
      }
      for (const k of Object.keys(old)) {
        if (!hasOwn(nuu, k)) { setKey(out, k, []); changed = true; }
      }
      return changed ? out : ABSENT;
    }
    if (Array.isArray(old) && Array.isArray(nuu)) {
      const min = Math.min(old.length, nuu.length);
      if (min > 0) {
        const out: JsonObject = {};
        let changed = false;
        for (let i = 0; i < min; i++) {
          const d = write(old[i], nuu[i], false, minLength);
          if (d !== ABSENT) { out[String(i)] = d; changed = true; }
        }
        if (old.length !== nuu.length) { out[`${min}-`] = nuu.slice(min); changed = true; }
        return changed ? out : ABSENT;
      }
      if (old.length === 0 && nuu.length === 0) return ABSENT;
    } else if (jsonEqual(old, nuu)) {
      return ABSENT;
    } else if (typeof old === 'string' && typeof nuu === 'string') {
      const ops = createStringPatch(old, nuu, minLength);
      if (ops !== null) return [ops, 0, TEXT_DIFF_CODE];
    }
  }
  // Generic replacement/insertion: bare scalars inside a container, otherwise wrapped as [V].
  const isContainer = typeof nuu === 'object' && nuu !== null;
  return isContainer || topLevel ? [nuu] : nuu;
}

const DELETED = Symbol('deleted');

/** Applies `delta` to `oldValue` and returns the new value; throws DeltaError if it does not apply. */
export function applyDelta(oldValue: unknown, delta: unknown): unknown {
  const result = apply(oldValue, delta, 0);
  if (result === DELETED) throw new DeltaError('Delta deletes the whole document');
  return result;
}

// Recursion is bounded by the delta's depth, which a JSON parser has already bounded; this cap only
// keeps a hostile delta from reaching the engine's stack limit.
const MAX_DEPTH = 512;

function apply(old: Maybe, delta: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new DeltaError('Delta nested too deeply');
  if (Array.isArray(delta)) return applyArray(old, delta);
  if (isObject(delta)) {
    if (Array.isArray(old)) return patchArray(old, delta, depth);
    if (isObject(old)) return patchObject(old, delta, depth);
    if (Object.keys(delta).length === 0 && old !== ABSENT) return old;
    throw new DeltaError('Invalid {...} in delta');
  }
  if (delta === undefined) throw new DeltaError('Invalid value in delta');
  return delta;
}

function applyArray(old: Maybe, delta: unknown[]): unknown {
  switch (delta.length) {
    case 0:
      if (old === ABSENT) throw new DeltaError('Invalid deletion in delta');
      return DELETED;
    case 1:
      return delta[0];
    case 2:
      if (old === ABSENT) throw new DeltaError('Invalid replace in delta');
      return delta[1];
    case 3: {
      if (delta[2] === DELETION_CODE) {
        if (old === ABSENT) throw new DeltaError('Invalid deletion in delta');
        return DELETED;
      }
      if (delta[2] === TEXT_DIFF_CODE) {
        if (typeof old !== 'string') throw new DeltaError('Invalid text replace in delta');
        if (typeof delta[0] !== 'string') throw new DeltaError('Invalid text diff in delta');
        return applyStringPatch(old, delta[0]);
      }
      throw new DeltaError('Unknown mode in delta');
    }
    default:
      throw new DeltaError('Bad array count in delta');
  }
}

const isDeletion = (d: unknown): boolean =>
  Array.isArray(d) && (d.length === 0 || (d.length === 3 && d[2] === DELETION_CODE));

function patchObject(old: JsonObject, delta: JsonObject, depth: number): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(old)) {
    if (!hasOwn(delta, k)) { setKey(out, k, old[k]); continue; }
    const d = delta[k];
    if (isDeletion(d)) continue;
    const v = apply(old[k], d, depth + 1);
    if (v !== DELETED) setKey(out, k, v);
  }
  for (const k of Object.keys(delta)) {
    if (hasOwn(old, k)) continue;
    const v = apply(ABSENT, delta[k], depth + 1);
    if (v !== DELETED) setKey(out, k, v);
  }
  return out;
}

function patchArray(old: unknown[], delta: JsonObject, depth: number): unknown[] {
  const out: unknown[] = [];
  let remainder: unknown = ABSENT;
  for (let i = 0; i < old.length; i++) {
    const key = String(i);
    if (hasOwn(delta, key)) {
      const v = apply(old[i], delta[key], depth + 1);
      if (v === DELETED) throw new DeltaError('Invalid deletion of an array item in delta');
      out.push(v);
    } else if (hasOwn(delta, `${key}-`)) {
      remainder = delta[`${key}-`];
      break;
    } else {
      out.push(old[i]);
    }
  }
  if (remainder === ABSENT && hasOwn(delta, `${old.length}-`)) remainder = delta[`${old.length}-`];
  if (remainder !== ABSENT) {
    if (!Array.isArray(remainder)) throw new DeltaError('Invalid array remainder in delta');
    out.push(...remainder);
  }
  return out;
}

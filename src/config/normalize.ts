/**
 * Walks parsed JSON against the schema the way Go's encoding/json fills a struct: keys match
 * field names case-insensitively (an exact match wins), `null` leaves a field unset, a value of
 * the wrong type is an error. Unlike plain Go decoding, every problem is collected with its key
 * path so one run reports all of them. Values are never echoed (they may be passwords).
 */
import type { Field, Fields, Shape } from './schema.ts';
import { setOwn } from './text.ts';

export interface Diagnostics {
  errors: string[];
  warnings: string[];
}

export function joinPath(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const lowerIndexes = new WeakMap<Fields, Map<string, string>>();

/** The canonical spelling of `key` among `fields`, as Go matches it, or undefined if unknown. */
export function canonicalKey(fields: Fields, key: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(fields, key)) return key;
  let index = lowerIndexes.get(fields);
  if (!index) {
    index = new Map(Object.keys(fields).map((k) => [k.toLowerCase(), k]));
    lowerIndexes.set(fields, index);
  }
  return index.get(key.toLowerCase());
}

export function describeShape(shape: Shape): string {
  switch (shape.type) {
    case 'string': return 'a string';
    case 'boolean': return 'true or false';
    case 'integer': return 'an integer';
    case 'uint': return 'a non-negative integer';
    case 'number': return 'a number';
    case 'any': return 'any value';
    case 'enum': return `one of ${shape.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'array': return `an array of ${describeShape(shape.items).replace(/^an? /, '')}s`;
    case 'object': case 'map': return 'an object';
    case 'oneOf': return shape.options.map(describeShape).join(' or ');
  }
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  return `a ${typeof v}`;
}

/** True when `v` fits `shape` (no diagnostics). Used for oneOf. */
function fits(v: unknown, shape: Shape): boolean {
  const d: Diagnostics = { errors: [], warnings: [] };
  normalizeValue(v, shape, 'x', d, false);
  return d.errors.length === 0;
}

/**
 * Returns the value with keys in canonical spelling, or undefined when it is null or invalid.
 * `warnUnbuilt` is false below a not-built key, so only the outermost one warns.
 */
export function normalizeValue(value: unknown, shape: Shape, path: string, diag: Diagnostics, warnUnbuilt = true): unknown {
  if (value === null || value === undefined) return undefined;
  const wrongType = (): undefined => {
    diag.errors.push(`${path}: expected ${describeShape(shape)}, got ${typeName(value)}`);
    return undefined;
  };
  switch (shape.type) {
    case 'any':
      return value;
    case 'string':
      return typeof value === 'string' ? value : wrongType();
    case 'boolean':
      return typeof value === 'boolean' ? value : wrongType();
    case 'number':
      return typeof value === 'number' ? value : wrongType();
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value) ? value : wrongType();
    case 'uint':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : wrongType();
    case 'enum':
      return typeof value === 'string' && shape.values.includes(value) ? value : wrongType();
    case 'oneOf':
      for (const option of shape.options) {
        if (fits(value, option)) return normalizeValue(value, option, path, diag, warnUnbuilt);
      }
      return wrongType();
    case 'array': {
      if (!Array.isArray(value)) return wrongType();
      const out: unknown[] = [];
      value.forEach((item, i) => {
        const v = normalizeValue(item, shape.items, `${path}[${i}]`, diag, warnUnbuilt);
        if (v !== undefined) out.push(v);
      });
      return out;
    }
    case 'map': {
      if (!isPlainObject(value)) return wrongType();
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        const v = item === null && shape.nullIsEmpty ? {} : normalizeValue(item, shape.values, joinPath(path, key), diag, warnUnbuilt);
        if (v !== undefined) setOwn(out, key, v);
      }
      return out;
    }
    case 'object': {
      if (!isPlainObject(value)) return wrongType();
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        const canonical = canonicalKey(shape.fields, key);
        if (canonical === undefined) {
          diag.errors.push(`unknown key "${key}" at ${joinPath(path, key)}`);
          continue;
        }
        const field: Field = shape.fields[canonical];
        const childPath = joinPath(path, canonical);
        const v = normalizeValue(item, field.shape, childPath, diag, warnUnbuilt && field.built);
        if (v === undefined) continue;
        if (warnUnbuilt && !field.built && v !== field.inert) {
          diag.warnings.push(`${childPath} is not supported yet and is ignored`);
        }
        if (warnUnbuilt && field.deprecated) {
          diag.warnings.push(`Using deprecated config option: "${childPath}". Use "${field.deprecated}" instead.`);
        }
        setOwn(out, canonical, v);
      }
      return out;
    }
  }
}

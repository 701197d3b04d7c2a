/**
 * Conflict resolvers of a pulling replication (Sync Gateway `db/conflict_resolver.go`):
 *   - `default`: a deletion wins over a live revision; else the greater revision id
 *     (generation, then digest) wins, the local one on a tie;
 *   - `localWins` / `remoteWins`;
 *   - `custom`: a JavaScript `function(conflict)` given `conflict.LocalDocument` and
 *     `conflict.RemoteDocument` (bodies with `_id`, `_rev`, `_deleted`, `_attachments`). It returns
 *     one of them, a new (merged) body, or null for a deletion. It runs in its own V8 context with
 *     no host objects, no eval, and a time limit, as the sync function does (src/sync/).
 * The winner is classified as Sync Gateway does: its `_rev` names the local or the remote revision,
 * otherwise it is a merge.
 */
import vm from 'node:vm';
import { compareRevIds } from '../../revid.ts';
import type { ConflictResolutionType } from '../isgr/types.ts';

export type Body = Record<string, unknown>;
export interface Conflict { LocalDocument: Body; RemoteDocument: Body }
export type Resolution = { kind: 'local' | 'remote' | 'merge'; body: Body };

export const RESOLVER_TIMEOUT_MS = 1000;

export class ResolverError extends Error {}

function defaultResolver(c: Conflict): Body {
  const localDeleted = c.LocalDocument._deleted === true;
  const remoteDeleted = c.RemoteDocument._deleted === true;
  if (localDeleted && !remoteDeleted) return c.LocalDocument;
  if (remoteDeleted && !localDeleted) return c.RemoteDocument;
  return compareRevIds(String(c.LocalDocument._rev), String(c.RemoteDocument._rev)) >= 0 ? c.LocalDocument : c.RemoteDocument;
}

/** Runs in the sandbox, as source text: nothing host-created is visible to the resolver. */
const BOOTSTRAP = `
(function (userFn) {
  'use strict';
  var parseJSON = JSON.parse, stringifyJSON = JSON.stringify;
  Object.defineProperty(globalThis, 'console', {
    value: Object.freeze({ log: function () {}, warn: function () {}, error: function () {} }), writable: false, configurable: false
  });
  return function run(input) {
    var result = userFn(parseJSON(input));
    if (result === undefined || result === null) return 'null';
    if (typeof result !== 'object' || Array.isArray(result)) throw new Error('the resolver returned a non-document value');
    return stringifyJSON(result);
  };
})
`;
const RUN = new vm.Script('__resolver_run(__resolver_input)', { filename: 'conflict-resolver-call' });

/** A compiled custom resolver in its own context. */
class CustomResolver {
  private readonly context: vm.Context;

  constructor(source: string, private readonly timeoutMs: number) {
    this.context = vm.createContext(Object.create(null), {
      name: 'custom conflict resolver',
      codeGeneration: { strings: false, wasm: false },
      microtaskMode: 'afterEvaluate',
    });
    if (/\bimport\s*\(/.test(source)) throw new ResolverError('the custom conflict resolver may not use import()');
    let fn: unknown;
    try {
      fn = new vm.Script(`(${source}\n)`, { filename: 'custom_conflict_resolver' }).runInContext(this.context, { timeout: timeoutMs });
    } catch (err) {
      throw new ResolverError(`the custom conflict resolver does not compile: ${(err as Error).message}`);
    }
    if (typeof fn !== 'function') throw new ResolverError('the custom conflict resolver must be a function');
    const run = new vm.Script(BOOTSTRAP, { filename: 'conflict-resolver-bootstrap' }).runInContext(this.context) as (f: unknown) => unknown;
    Object.defineProperty(this.context, '__resolver_run', { value: run(fn), writable: false, configurable: false });
  }

  resolve(c: Conflict): Body {
    this.context.__resolver_input = JSON.stringify(c);
    let out: string;
    try {
      out = RUN.runInContext(this.context, { timeout: this.timeoutMs }) as string;
    } catch (err) {
      const msg = (err as Error)?.message ?? String(err);
      throw new ResolverError(/timed out/i.test(msg) ? 'the custom conflict resolver timed out' : `the custom conflict resolver failed: ${msg}`);
    }
    const parsed = JSON.parse(out) as Body | null;
    // Sync Gateway: a null result resolves the conflict as a deletion.
    return parsed ?? { _deleted: true };
  }
}

export type ResolverFn = (c: Conflict) => Resolution;

/** Builds the resolver of a definition; a custom one that does not compile throws ResolverError. */
export function makeResolver(type: ConflictResolutionType, source: string | undefined, timeoutMs = RESOLVER_TIMEOUT_MS): ResolverFn {
  let pick: (c: Conflict) => Body;
  switch (type) {
    case 'localWins': pick = (c) => c.LocalDocument; break;
    case 'remoteWins': pick = (c) => c.RemoteDocument; break;
    case 'custom': {
      if (!source) throw new ResolverError('custom_conflict_resolver is required with conflict_resolution_type "custom"');
      const custom = new CustomResolver(source, timeoutMs);
      pick = (c) => custom.resolve(c);
      break;
    }
    default: pick = defaultResolver;
  }
  return (c) => {
    const body = pick(c);
    const rev = body._rev;
    if (rev === undefined) return { kind: 'merge', body };
    if (rev === c.LocalDocument._rev) return { kind: 'local', body };
    if (rev === c.RemoteDocument._rev) return { kind: 'remote', body };
    return { kind: 'merge', body };
  };
}

/**
 * The sync function: compiled once per database into its own V8 context, run for every write
 * under a time limit. Nothing of the host crosses into the context: inputs go in as one JSON string
 * and results come out as one, so user code never holds a host object whose constructor chain could
 * reach `process`; string code generation (eval, Function) is disabled inside the context.
 */
import vm from 'node:vm';
import { HttpError } from '../errors.ts';

export const DEFAULT_SYNC_FUNCTION = 'function(doc){channel(doc.channels);}';
export const DEFAULT_SYNC_TIMEOUT_MS = 1000;

/** Who is writing: null for the admin (and resync, imports), which bypasses every require*. */
export interface SyncUser {
  name: string;
  roles: string[];
  channels: string[];
}

export interface SyncResult {
  channels: string[];
  /** Grantee (`name` or `role:name`) → channels granted by this revision. */
  access: Record<string, string[]>;
  /** User name → roles (without the `role:` prefix) granted by this revision. */
  roles: Record<string, string[]>;
  /** Absolute expiry in seconds since the epoch, when expiry() was called. */
  expiry?: number;
}

export class SyncFunctionError extends Error {}

/** Runs in the sandbox. Kept as source text so nothing host-created is ever visible inside. */
const BOOTSTRAP = `
(function (userFn) {
  'use strict';
  // Taken before user code ever runs: a function that replaces JSON.parse/stringify in its context
  // must not be able to forge its own result (grants the helpers would refuse, a fake "ok").
  var parseJSON = JSON.parse, stringifyJSON = JSON.stringify;
  var state = null;
  function list(v) {
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? v : [v];
  }
  function strings(v) {
    var out = [];
    list(v).forEach(function (x) { if (typeof x === 'string') out.push(x); else if (Array.isArray(x)) out.push.apply(out, strings(x)); });
    return out;
  }
  function forbid(msg) { throw { forbidden: msg }; }
  var helpers = {
    channel: function () {
      for (var i = 0; i < arguments.length; i++) state.channels.push.apply(state.channels, strings(arguments[i]));
    },
    access: function (users, channels) {
      var chs = strings(channels).filter(function (c) { return c !== '*'; });
      strings(users).forEach(function (u) {
        var cur = state.access[u] || (state.access[u] = []);
        cur.push.apply(cur, chs);
      });
    },
    role: function (users, roles) {
      var rs = strings(roles).map(function (r) {
        if (r.indexOf('role:') !== 0) throw new Error('Value "' + r + '" does not begin with "role:"');
        return r.slice(5);
      });
      strings(users).forEach(function (u) {
        var cur = state.roles[u] || (state.roles[u] = []);
        cur.push.apply(cur, rs);
      });
    },
    requireUser: function (names) {
      if (state.user === null) return;
      if (strings(names).indexOf(state.user.name) < 0) forbid('sg wrong user');
    },
    requireRole: function (roles) {
      if (state.user === null) return;
      var want = strings(roles).map(function (r) { return r.indexOf('role:') === 0 ? r.slice(5) : r; });
      if (!want.some(function (r) { return state.user.roles.indexOf(r) >= 0; })) forbid('sg missing role');
    },
    requireAccess: function (channels) {
      if (state.user === null) return;
      var have = state.user.channels;
      if (have.indexOf('*') >= 0) return;
      if (!strings(channels).some(function (c) { return have.indexOf(c) >= 0; })) forbid('sg missing channel access');
    },
    requireAdmin: function () {
      if (state.user !== null) forbid('sg admin required');
    },
    expiry: function (v) {
      if (v === undefined || v === null) return;
      state.expiry = v;
    }
  };
  Object.keys(helpers).forEach(function (k) {
    if (helpers[k]) Object.defineProperty(globalThis, k, { value: helpers[k], writable: false, configurable: false });
  });
  Object.defineProperty(globalThis, 'console', {
    value: Object.freeze({ log: function () {}, warn: function () {}, error: function () {} }), writable: false, configurable: false
  });
  return function run(input) {
    var args = parseJSON(input);
    state = { channels: [], access: {}, roles: {}, expiry: null, user: args.user };
    var outcome = { ok: true };
    try {
      userFn(args.doc, args.oldDoc);
    } catch (e) {
      if (e && typeof e === 'object' && 'forbidden' in e) outcome = { ok: false, status: 403, reason: String(e.forbidden) };
      else if (e && typeof e === 'object' && 'unauthorized' in e) outcome = { ok: false, status: 401, reason: String(e.unauthorized) };
      else outcome = { ok: false, status: 500, reason: 'Exception in JS sync function', detail: String(e && e.message || e) };
    }
    var expiry = state.expiry;
    if (expiry !== null && typeof expiry !== 'number' && typeof expiry !== 'string') expiry = null;
    return stringifyJSON({ outcome: outcome, channels: state.channels, access: state.access, roles: state.roles, expiry: expiry });
  };
})
`;

const RUN = new vm.Script('__syncgate_run(__syncgate_input)', { filename: 'sync-call' });

/** Seconds: numbers up to 30 days are relative, larger ones absolute; strings are numeric or ISO-8601. */
export function parseExpiry(v: number | string, nowSecs = Math.floor(Date.now() / 1000)): number | undefined {
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return parseExpiry(Number(v), nowSecs);
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
  }
  if (!Number.isFinite(v) || v < 0) return undefined;
  return v <= 30 * 24 * 3600 ? nowSecs + v : v;
}

export class SyncFunction {
  private readonly context: vm.Context;
  private readonly timeoutMs: number;
  readonly source: string;

  /** Throws SyncFunctionError naming the database and the line when the function does not compile. */
  constructor(source: string | undefined, dbName: string, timeoutMs = DEFAULT_SYNC_TIMEOUT_MS) {
    this.source = source ?? DEFAULT_SYNC_FUNCTION;
    this.timeoutMs = timeoutMs;
    this.context = vm.createContext(Object.create(null), {
      name: `sync function of ${dbName}`,
      codeGeneration: { strings: false, wasm: false },
      microtaskMode: 'afterEvaluate',
    });
    // import() is syntax, so with eval and Function disabled it can only appear literally: refuse it
    // rather than let it reach the host's module loader.
    if (/\bimport\s*\(/.test(this.source)) {
      throw new SyncFunctionError(`databases.${dbName}.sync: the sync function may not use import()`);
    }
    let userFn: unknown;
    try {
      userFn = new vm.Script(`(${this.source}\n)`, { filename: `databases.${dbName}.sync` })
        .runInContext(this.context, { timeout: this.timeoutMs });
    } catch (err) {
      const e = err as Error;
      const where = /:(\d+)/.exec((e.stack ?? '').split('\n')[0] ?? '')?.[1];
      throw new SyncFunctionError(`databases.${dbName}.sync: the sync function does not compile${where ? ` (line ${where})` : ''}: ${e.message}`);
    }
    if (typeof userFn !== 'function') throw new SyncFunctionError(`databases.${dbName}.sync: the sync function must be a function`);
    const bootstrap = new vm.Script(BOOTSTRAP, { filename: 'sync-bootstrap' }).runInContext(this.context) as (f: unknown) => unknown;
    const run = bootstrap(userFn);
    Object.defineProperty(this.context, '__syncgate_run', { value: run, writable: false, configurable: false });
  }

  /**
   * Runs the function for one revision. `docJson`/`oldDocJson` are the JSON texts Sync Gateway
   * passes as `doc` and `oldDoc`. Rejections become HttpErrors (403, 401, 500).
   */
  run(docJson: string, oldDocJson: string | null, user: SyncUser | null): SyncResult {
    const input = `{"doc":${docJson},"oldDoc":${oldDocJson ?? 'null'},"user":${JSON.stringify(user)}}`;
    this.context.__syncgate_input = input;
    let out: string;
    try {
      out = RUN.runInContext(this.context, { timeout: this.timeoutMs }) as string;
    } catch (err) {
      const msg = (err as Error)?.message ?? '';
      if (/timed out/i.test(msg)) throw new HttpError(500, 'Exception in JS sync function: timed out');
      throw new HttpError(500, 'Exception in JS sync function');
    }
    const parsed = JSON.parse(out) as {
      outcome: { ok: boolean; status?: number; reason?: string };
      channels: string[]; access: Record<string, string[]>; roles: Record<string, string[]>; expiry: number | string | null;
    };
    if (!parsed.outcome.ok) throw new HttpError(parsed.outcome.status!, parsed.outcome.reason!);
    for (const ch of parsed.channels) {
      if (ch === '' || ch.includes(',')) throw new HttpError(400, `Illegal channel name "${ch}"`);
    }
    const channels = parsed.channels.includes('*') ? ['*'] : [...new Set(parsed.channels)];
    const result: SyncResult = { channels, access: dedupe(parsed.access), roles: dedupe(parsed.roles) };
    if (parsed.expiry !== null) {
      const exp = parseExpiry(parsed.expiry);
      if (exp !== undefined) result.expiry = exp;
    }
    return result;
  }
}

function dedupe(m: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(m)) out[k] = [...new Set(v)];
  return out;
}

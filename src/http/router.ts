/**
 * Sync Gateway's routing rules: a db or doc segment never starts with `_` (those paths are
 * reserved), segments are matched after percent-decoding one by one so `%2F` in a doc id survives,
 * an unknown path is 404 `unknown URL`, a known path with the wrong method is 405 with `Allow`.
 */
import { HttpError } from '../errors.ts';
import type { RequestContext } from './context.ts';

export type Handler = (ctx: RequestContext) => Promise<void>;

export interface Route {
  methods: string[];
  /** e.g. `/{db}/_bulk_docs`, `/{db}/{doc}/{att+}` */
  pattern: string;
  handler: Handler;
  /** Served only on the admin port. */
  adminOnly?: boolean;
  /** Runs even without a valid user (login endpoints): a bad cookie is ignored, a disabled GUEST allowed. */
  publicPrivileges?: boolean;
  /** Runs whatever the database's state; every other `/{db}/...` route needs it `Online` (503 otherwise). */
  offlineCapable?: boolean;
  /**
   * The `{db}` segment is a keyspace (`db`, `db.collection`, `db.scope.collection`): the server
   * resolves it to `ctx.collection` and hands the handler the principal as that collection sees it.
   * On every other route a segment naming a collection is 404.
   */
  keyspace?: boolean;
  /** Served without operator credentials on the admin and metrics ports (the `/_ping` health check). */
  unauthenticated?: boolean;
  /** The request line is logged at debug, not info (Sync Gateway's silent handlers: `/_ping`). */
  quiet?: boolean;
}

interface CompiledRoute extends Route {
  segments: string[];
}

export interface Match {
  route: Route;
  params: Record<string, string>;
}

export function splitPath(path: string): string[] {
  const raw = path.split('/');
  raw.shift(); // before the leading '/'
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  return raw.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, 'Invalid URL path encoding');
    }
  });
}

function matchSegments(pattern: string[], segs: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p.startsWith('{') && p.endsWith('+}')) {
      if (i >= segs.length) return undefined;
      params[p.slice(1, -2)] = segs.slice(i).join('/');
      return params;
    }
    if (i >= segs.length) return undefined;
    const s = segs[i];
    if (p.startsWith('{')) {
      if (s === '' || s.startsWith('_')) return undefined;
      params[p.slice(1, -1)] = s;
    } else if (p !== s) return undefined;
  }
  return pattern.length === segs.length ? params : undefined;
}

export class Router {
  private readonly routes: CompiledRoute[];

  constructor(routes: Route[], admin: boolean) {
    this.routes = routes
      .filter((r) => admin || !r.adminOnly)
      .map((r) => ({ ...r, segments: r.pattern.split('/').filter((s) => s !== '') }));
  }

  /** Finds the route for a request; throws 404/405, or returns the `Allow` list for OPTIONS. */
  resolve(method: string, path: string): Match | { allow: string[] } {
    const segs = splitPath(path);
    const allow = new Set<string>();
    for (const r of this.routes) {
      const params = matchSegments(r.segments, segs);
      if (!params) continue;
      const methods = r.methods.includes('GET') ? [...r.methods, 'HEAD'] : r.methods;
      if (method === 'OPTIONS') { methods.forEach((m) => allow.add(m)); continue; }
      if (methods.includes(method)) return { route: r, params };
      methods.forEach((m) => allow.add(m));
    }
    if (allow.size === 0) throw new HttpError(404, 'unknown URL');
    if (method === 'OPTIONS') return { allow: [...allow] };
    const err = new HttpError(405, `Method ${method} not allowed`);
    (err as HttpError & { allow?: string[] }).allow = [...allow];
    throw err;
  }
}

/**
 * The console's only way to the server: the admin REST API on the origin the page came from. The
 * browser sends the operator's HTTP Basic credentials (asked for when the page loaded) itself.
 */
export class ApiError extends Error {
  constructor(readonly status: number, readonly error: string, readonly reason: string) {
    super(`${status} ${error}: ${reason}`);
  }
}

export interface ApiResponse<T> { status: number; body: T; headers: Headers }

export async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let parsed: any = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON: keep the text */ }
  if (!res.ok) throw new ApiError(res.status, parsed?.error ?? res.statusText, parsed?.reason ?? text);
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export const get = <T = any>(path: string) => call<T>('GET', path).then((r) => r.body);

/** `/{db}/...` with every segment encoded (a document id may hold `/`, `?` or `#`). */
export function dbPath(db: string, ...segs: string[]): string {
  return `/${[db, ...segs].map(encodeURIComponent).join('/')}`;
}

export function qs(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function message(err: unknown): string {
  return err instanceof ApiError ? `${err.status} ${err.error}: ${err.reason}` : String((err as Error)?.message ?? err);
}

/** `_raw/{doc}` `_sync.history`: revisions with parent indexes (-1 for a root). */
export interface RawHistory { revs: string[]; parents: number[]; deleted?: number[]; channels?: (string[] | null)[] }
export interface RawSync {
  rev: string; flags?: number; sequence?: number;
  channels?: Record<string, null | { seq: number; rev: string; del?: boolean }>;
  access?: Record<string, Record<string, number>>;
  role_access?: Record<string, Record<string, number>>;
  history: RawHistory;
}

/** Channels the document is in now: `_sync.channels` entries without a removal. */
export function currentChannels(sync: RawSync): string[] {
  return Object.entries(sync.channels ?? {}).filter(([, v]) => v === null).map(([k]) => k).sort();
}

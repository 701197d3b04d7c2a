/**
 * Pages of the user and role lists (`GET /{db}/_user/`, `/{db}/_role/`), so an admin client (the
 * console) can walk 10,000 users a page at a time and search them by name prefix on the server.
 *
 * Sync Gateway's parameters: `name_only` (default true) and `limit` (0 = no limit; only with
 * `name_only=false`, where each row is `{"name","email","disabled"}`). Syncgate adds `prefix` (names
 * starting with it) and `startafter` (names after this one, exclusive: the last name of the previous
 * page), both in the list's order (code units; names are ASCII, see PRINCIPAL_NAME, so byte order too).
 *
 * Only the page's records are read (by the route); the name list itself comes whole from
 * `Store.listPrincipals`, which has no range form yet (one index scan, names only).
 */
export interface PrincipalPageOptions {
  prefix?: string;
  startAfter?: string;
  /** 0 or undefined: no limit. */
  limit?: number;
}

const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The names of one page, in order. Pure. */
export function pageOfNames(names: readonly string[], opts: PrincipalPageOptions): string[] {
  const sorted = [...names].sort(order);
  const { prefix = '', startAfter, limit = 0 } = opts;
  // First index past startAfter and at or past the prefix: a binary search over the sorted names.
  const from = (key: string, inclusive: boolean) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = order(sorted[mid], key);
      if (c < 0 || (!inclusive && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const out: string[] = [];
  for (let i = Math.max(from(prefix, true), startAfter !== undefined ? from(startAfter, false) : 0); i < sorted.length; i++) {
    if (!sorted[i].startsWith(prefix)) break;
    out.push(sorted[i]);
    if (limit > 0 && out.length >= limit) break;
  }
  return out;
}

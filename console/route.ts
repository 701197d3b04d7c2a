/** Hash routes: `#/`, `#/logs` and `#/db/{db}/{page}/{rest...}`, every segment percent-encoded. */
export interface Route { page: string; db?: string; rest: string[] }

export function parseHash(hash: string): Route {
  const segs = hash.replace(/^#\/?/, '').split('/').filter((s) => s !== '').map((s) => {
    try { return decodeURIComponent(s); } catch { return s; }
  });
  if (segs[0] === 'db' && segs[1]) return { page: segs[2] ?? 'docs', db: segs[1], rest: segs.slice(3) };
  if (segs[0] === 'logs') return { page: 'logs', rest: [] };
  return { page: 'overview', rest: [] };
}

export function href(db: string, page: string, ...rest: string[]): string {
  return `#/db/${[db, page, ...rest].map(encodeURIComponent).join('/')}`;
}

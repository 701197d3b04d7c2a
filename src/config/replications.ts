/**
 * `replications` of a database config (ISGR, spec sg3-admin.md §5): id → definition. Here only the
 * shape and the id are checked (Sync Gateway's legacy-config check); the definition's fields are
 * validated where they are understood (src/replication/isgr/definition.ts) when the database is
 * applied, so a bad one refuses the config then, with Sync Gateway's message.
 */
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function buildReplications(raw: unknown, path: string, err: (m: string) => void): Record<string, Obj> | undefined {
  if (!isObj(raw)) return undefined;
  const out: Record<string, Obj> = {};
  for (const [id, r] of Object.entries(raw)) {
    if (!isObj(r)) { err(`${path}.replications.${id}: must be an object`); continue; }
    if (typeof r.replication_id === 'string' && r.replication_id !== '' && r.replication_id !== id) {
      err(`${path}.replications.${id}: replication_id "${r.replication_id}" does not match replications key "${id}" in replication config`);
      continue;
    }
    out[id] = r;
  }
  return Object.keys(out).length ? out : undefined;
}

/** A list of users or roles paged and searched on the server (src/auth/principal-pages.ts). */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, message, qs } from './api.ts';
import { ErrorLine, Field } from './ui.tsx';

const PAGE = 50;

/**
 * A list paged and searched on the server (`limit`, `prefix`, `startafter`): one page of a database
 * of 10,000 users is all that is loaded. One more row than shown says whether a next page exists.
 */
export function PagedNames<T extends { name: string }>({ path, extra, render }: {
  path: string; extra: Record<string, string>; render: (rows: T[]) => ComponentChildren;
}) {
  const [prefix, setPrefix] = useState('');
  const [starts, setStarts] = useState<string[]>([]);
  const [rows, setRows] = useState<T[]>();
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string>();
  const after = starts.at(-1);
  useEffect(() => {
    let stale = false;
    get<(T | string)[]>(`${path}${qs({ ...extra, limit: PAGE + 1, prefix: prefix || undefined, startafter: after })}`).then((r) => {
      if (stale) return;
      // `_role/` answers names, `_user/?name_only=false` objects: rows are objects either way.
      const list = r.map((x) => (typeof x === 'string' ? { name: x } : x) as T);
      setRows(list.slice(0, PAGE)); setMore(list.length > PAGE); setError(undefined);
    }, (err) => { if (!stale) setError(message(err)); });
    return () => { stale = true; };
  }, [path, prefix, after]);
  return (
    <>
      <Field label="Search by name prefix"><input type="search" value={prefix} onInput={(e) => { setStarts([]); setPrefix((e.target as HTMLInputElement).value); }} /></Field>
      <ErrorLine error={error} />
      {/* Above the list: the buttons stay put whatever the page's length. */}
      <div class="pager">
        <button type="button" disabled={starts.length === 0} onClick={() => setStarts(starts.slice(0, -1))}>Previous page</button>
        <button type="button" disabled={!more} onClick={() => rows && setStarts([...starts, rows[rows.length - 1].name])}>Next page</button>
        <span class="muted" role="status">Page {starts.length + 1}</span>
      </div>
      {rows && render(rows)}
      {rows && rows.length === 0 && <p>None{prefix ? ` starting with “${prefix}”` : ''}.</p>}
    </>
  );
}


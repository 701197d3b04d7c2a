/**
 * The operator console: a Preact app, hash-routed, talking only to the admin API of the origin
 * it was served from (see console/api.ts). Routes:
 *   #/                        overview
 *   #/logs                    recent log lines, console level and keys
 *   #/db/{db}/docs[/{id}]     documents
 *   #/db/{db}/users[/{name}]  users
 *   #/db/{db}/roles[/{name}]  roles
 *   #/db/{db}/why             why can't this user see this document
 *   #/db/{db}/sync            sync function and resync
 *   #/db/{db}/changes         live changes
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get } from './api.ts';
import { href, parseHash } from './route.ts';
import { Overview } from './pages/overview.tsx';
import { Documents } from './pages/documents.tsx';
import { Users } from './pages/users.tsx';
import { Roles } from './pages/roles.tsx';
import { Why } from './pages/why.tsx';
import { SyncFunction } from './pages/sync.tsx';
import { Changes } from './pages/changes.tsx';
import { Logs } from './pages/logs.tsx';

const PAGES: [string, string][] = [['docs', 'Documents'], ['users', 'Users'], ['roles', 'Roles'], ['why', 'Why can’t they see it?'], ['sync', 'Sync function'], ['changes', 'Live changes']];

function App() {
  const [route, setRoute] = useState(parseHash(location.hash));
  const [dbs, setDbs] = useState<string[]>([]);
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    get<string[]>('/_all_dbs').then(setDbs, () => setDbs([]));
    return () => removeEventListener('hashchange', on);
  }, []);
  const db = route.db ?? dbs[0];
  // Each page gets focus on navigation, so keyboard and screen reader users land on its heading.
  useEffect(() => { document.querySelector<HTMLElement>('main h1')?.focus(); }, [route.page, route.db]);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">Syncgate console</a>
        <nav aria-label="Pages">
          <a href="#/" aria-current={route.page === 'overview' ? 'page' : undefined}>Overview</a>
          <a href="#/logs" aria-current={route.page === 'logs' ? 'page' : undefined}>Logs</a>
          {db && PAGES.map(([p, label]) => (
            <a key={p} href={href(db, p)} aria-current={route.page === p ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        {dbs.length > 0 && route.page !== 'overview' && route.page !== 'logs' && (
          <label class="dbpick">
            <span>Database</span>
            <select value={db} onChange={(e) => { location.hash = href((e.target as HTMLSelectElement).value, route.page); }}>
              {dbs.map((d) => <option key={d} value={d}>{d}</option>)}
            </select>
          </label>
        )}
      </header>
      <main>
        {route.page === 'logs' && <Logs />}
        {route.page === 'overview' || (!db && route.page !== 'logs') ? <Overview /> : null}
        {db && route.page === 'docs' && <Documents key={db} db={db} id={route.rest[0]} />}
        {db && route.page === 'users' && <Users key={db} db={db} name={route.rest[0]} />}
        {db && route.page === 'roles' && <Roles key={`${db}/${route.rest[0]}`} db={db} name={route.rest[0]} />}
        {db && route.page === 'why' && <Why key={db} db={db} />}
        {db && route.page === 'sync' && <SyncFunction key={db} db={db} />}
        {db && route.page === 'changes' && <Changes key={db} db={db} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);

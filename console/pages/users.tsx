/** Users of a database: list (filtered by name prefix), create, edit, and effective channels. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, dbPath, get, message } from '../api.ts';
import { href } from '../route.ts';
import { ErrorLine, Field, splitList } from '../ui.tsx';

interface User { name: string; admin_channels?: string[]; admin_roles?: string[]; all_channels?: string[]; roles?: string[]; disabled?: boolean; email?: string; jwt_channels?: string[]; jwt_roles?: string[] }

const SHOWN = 200;

/**
 * Where a user's channel comes from, as far as the admin API tells: the user's admin grant, a
 * role's channels, a JWT claim, the public `!` channel, or else a sync function `access()` grant.
 */
function sources(u: User, roleChannels: Record<string, string[]>, c: string): string[] {
  // Every user and role has `!`: naming a role for it would only mislead.
  if (c === '!') return ['everyone (the public channel)'];
  const out: string[] = [];
  if (u.admin_channels?.includes(c)) out.push('admin grant');
  if (u.jwt_channels?.includes(c)) out.push('JWT claim');
  for (const [r, chans] of Object.entries(roleChannels)) if (chans.includes(c)) out.push(`role ${r}`);
  return out.length ? out : ['sync function access() grant'];
}

function UserList({ db }: { db: string }) {
  const [names, setNames] = useState<string[]>();
  const [filter, setFilter] = useState('');
  const [error, setError] = useState<string>();
  useEffect(() => { get<string[]>(dbPath(db, '_user', '')).then(setNames, (err) => setError(message(err))); }, [db]);
  const shown = (names ?? []).filter((n) => n.startsWith(filter));
  return (
    <>
      <h1 tabIndex={-1}>Users of {db}</h1>
      <p><a href={href(db, 'users', '_new')}>Create a user</a></p>
      <Field label="Filter by name prefix"><input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} /></Field>
      <ErrorLine error={error} />
      <ul class="list" aria-label="Users">
        {shown.slice(0, SHOWN).map((n) => <li key={n}><a href={href(db, 'users', n)}>{n}</a></li>)}
      </ul>
      {shown.length > SHOWN && <p class="muted">{shown.length - SHOWN} more: narrow the filter.</p>}
      {names && shown.length === 0 && <p>No users{filter ? ` starting with “${filter}”` : ''}.</p>}
    </>
  );
}

function UserForm({ db, name }: { db: string; name?: string }) {
  const creating = name === undefined;
  const [user, setUser] = useState<User>();
  const [form, setForm] = useState({ name: '', channels: '', roles: '', password: '', disabled: false });
  const [error, setError] = useState<string>();
  const [status, setStatus] = useState<string>();
  const [reload, setReload] = useState(0);
  const [roleChannels, setRoleChannels] = useState<Record<string, string[]>>({});
  useEffect(() => {
    if (creating) return;
    get<User>(dbPath(db, '_user', name)).then(async (u) => {
      setUser(u);
      // Each role's channels, to say where each of the user's channels comes from.
      const entries = await Promise.all((u.roles ?? []).map(async (r) => [r, (await get<{ all_channels?: string[] }>(dbPath(db, '_role', r)).catch(() => ({ all_channels: [] }))).all_channels ?? []] as const));
      setRoleChannels(Object.fromEntries(entries));
      setForm({ name: u.name, channels: (u.admin_channels ?? []).join(', '), roles: (u.admin_roles ?? []).join(', '), password: '', disabled: !!u.disabled });
    }, (err) => setError(message(err)));
  }, [db, name, reload]);
  const save = async (e: Event) => {
    e.preventDefault();
    setStatus(undefined);
    const target = creating ? form.name.trim() : name;
    if (!target) { setStatus('A name is needed.'); return; }
    const body: Record<string, unknown> = { admin_channels: splitList(form.channels), admin_roles: splitList(form.roles), disabled: form.disabled };
    if (form.password) body.password = form.password;
    try {
      if (creating) {
        // PUT would replace an existing user: refuse to overwrite one by accident.
        try { await get(dbPath(db, '_user', target)); setStatus(`A user “${target}” exists already.`); return; } catch (err) { if (!(err instanceof ApiError && err.status === 404)) throw err; }
        await call('PUT', dbPath(db, '_user', target), { name: target, ...body });
        location.hash = href(db, 'users', target);
      } else {
        await call('PUT', dbPath(db, '_user', target), { name: target, ...body });
        setStatus('Saved.');
        setReload(reload + 1);
      }
    } catch (err) { setStatus(message(err)); }
  };
  const set = (k: keyof typeof form) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setForm({ ...form, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  return (
    <>
      <p><a href={href(db, 'users')}>← All users</a></p>
      <h1 tabIndex={-1}>{creating ? 'Create a user' : <>User <code>{name}</code></>}</h1>
      <ErrorLine error={error} />
      <form class="stack" onSubmit={save}>
        {creating && <Field label="Name"><input required value={form.name} onInput={set('name')} autocomplete="off" /></Field>}
        <Field label="Admin channels" hint="Comma-separated"><input value={form.channels} onInput={set('channels')} /></Field>
        <Field label="Admin roles" hint="Comma-separated"><input value={form.roles} onInput={set('roles')} /></Field>
        <Field label={creating ? 'Password' : 'New password'} hint={creating ? undefined : 'Leave empty to keep the current one'}>
          <input type="password" value={form.password} onInput={set('password')} autocomplete="new-password" />
        </Field>
        <label class="check"><input type="checkbox" checked={form.disabled} onChange={set('disabled')} /> Disabled</label>
        <div class="row"><button type="submit">{creating ? 'Create' : 'Save'}</button></div>
        {status && <p role="status" class="status">{status}</p>}
      </form>
      {user && (
        <section aria-labelledby="h-eff">
          <h2 id="h-eff">Effective access</h2>
          <table class="grid" aria-label="Channels and where they come from">
            <thead><tr><th scope="col">Channel</th><th scope="col">Granted by</th></tr></thead>
            <tbody>
              {(user.all_channels ?? []).map((c) => (
                <tr key={c}><td>{c}</td><td>{sources(user, roleChannels, c).join('; ')}</td></tr>
              ))}
            </tbody>
          </table>
          <dl class="meta">
            <dt>All channels</dt><dd class="channels" data-testid="all-channels">{(user.all_channels ?? []).join(', ') || '(none)'}</dd>
            <dt>Roles</dt><dd>{(user.roles ?? []).join(', ') || '(none)'}</dd>
            {user.jwt_channels && <><dt>Channels from JWT claims</dt><dd>{user.jwt_channels.join(', ')}</dd></>}
            {user.jwt_roles && <><dt>Roles from JWT claims</dt><dd>{user.jwt_roles.join(', ')}</dd></>}
          </dl>
          <p class="muted">All channels include admin grants, roles' channels and grants made by the sync function (<code>access()</code>).</p>
        </section>
      )}
    </>
  );
}

export function Users({ db, name }: { db: string; name?: string }) {
  if (name === undefined) return <UserList db={db} />;
  return <UserForm key={name} db={db} name={name === '_new' ? undefined : name} />;
}

/** Users of a database: list (paged and searched on the server), create, edit, and effective access. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, dbPath, get, message } from '../api.ts';
import { PagedNames } from '../paged.tsx';
import { EffectiveAccess } from './user-access.tsx';
import { href } from '../route.ts';
import { ErrorLine, Field, splitList } from '../ui.tsx';

interface User { name: string; admin_channels?: string[]; admin_roles?: string[]; all_channels?: string[]; roles?: string[]; disabled?: boolean; email?: string; jwt_channels?: string[]; jwt_roles?: string[] }

interface Summary { name: string; email?: string; disabled: boolean }

function UserList({ db }: { db: string }) {
  return (
    <>
      <h1 tabIndex={-1}>Users of {db}</h1>
      <p><a href={href(db, 'users', '_new')}>Create a user</a></p>
      <PagedNames<Summary> path={dbPath(db, '_user', '')} extra={{ name_only: 'false' }} render={(rows) => (
        <table class="grid" aria-label="Users">
          <thead><tr><th scope="col">Name</th><th scope="col">Email</th><th scope="col">State</th></tr></thead>
          <tbody>
            {rows.map((u) => (
              <tr key={u.name}><td><a href={href(db, 'users', u.name)}>{u.name}</a></td><td>{u.email ?? ''}</td><td>{u.disabled ? 'disabled' : 'enabled'}</td></tr>
            ))}
          </tbody>
        </table>
      )} />
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
  useEffect(() => {
    if (creating) return;
    get<User>(dbPath(db, '_user', name)).then((u) => {
      setUser(u);
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
        <>
          <EffectiveAccess db={db} name={name!} reload={reload} />
          <dl class="meta">
            <dt>All channels</dt><dd class="channels" data-testid="all-channels">{(user.all_channels ?? []).join(', ') || '(none)'}</dd>
            <dt>Roles</dt><dd>{(user.roles ?? []).join(', ') || '(none)'}</dd>
            {user.jwt_channels && <><dt>Channels from JWT claims</dt><dd>{user.jwt_channels.join(', ')}</dd></>}
            {user.jwt_roles && <><dt>Roles from JWT claims</dt><dd>{user.jwt_roles.join(', ')}</dd></>}
          </dl>
        </>
      )}
    </>
  );
}

export function Users({ db, name }: { db: string; name?: string }) {
  if (name === undefined) return <UserList db={db} />;
  return <UserForm key={name} db={db} name={name === '_new' ? undefined : name} />;
}

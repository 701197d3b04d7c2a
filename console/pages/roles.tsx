/** Roles of a database: list (paged and searched on the server), create, and edit their admin channels. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, dbPath, get, message } from '../api.ts';
import { href } from '../route.ts';
import { PagedNames } from '../paged.tsx';
import { ErrorLine, Field, splitList } from '../ui.tsx';

interface Role { name: string; admin_channels?: string[]; all_channels?: string[] }

export function Roles({ db, name }: { db: string; name?: string }) {
  const [role, setRole] = useState<Role>();
  const [form, setForm] = useState({ name: '', channels: '' });
  const [status, setStatus] = useState<string>();
  const [error, setError] = useState<string>();
  const [reload, setReload] = useState(0);
  const creating = name === '_new';
  useEffect(() => {
    if (name && !creating) {
      get<Role>(dbPath(db, '_role', name)).then((r) => { setRole(r); setForm({ name: r.name, channels: (r.admin_channels ?? []).join(', ') }); }, (err) => setError(message(err)));
    }
  }, [db, name, reload]);
  const save = async (e: Event) => {
    e.preventDefault();
    setStatus(undefined);
    const target = creating ? form.name.trim() : name!;
    try {
      if (creating) {
        try { await get(dbPath(db, '_role', target)); setStatus(`A role “${target}” exists already.`); return; } catch (err) { if (!(err instanceof ApiError && err.status === 404)) throw err; }
      }
      await call('PUT', dbPath(db, '_role', target), { name: target, admin_channels: splitList(form.channels) });
      if (creating) location.hash = href(db, 'roles', target);
      else { setStatus('Saved.'); setReload(reload + 1); }
    } catch (err) { setStatus(message(err)); }
  };
  if (name === undefined) {
    return (
      <>
        <h1 tabIndex={-1}>Roles of {db}</h1>
        <p><a href={href(db, 'roles', '_new')}>Create a role</a></p>
        <PagedNames<{ name: string }> path={dbPath(db, '_role', '')} extra={{}} render={(rows) => (
          <ul class="list" aria-label="Roles">{rows.map((r) => <li key={r.name}><a href={href(db, 'roles', r.name)}>{r.name}</a></li>)}</ul>
        )} />
      </>
    );
  }
  return (
    <>
      <p><a href={href(db, 'roles')}>← All roles</a></p>
      <h1 tabIndex={-1}>{creating ? 'Create a role' : <>Role <code>{name}</code></>}</h1>
      <ErrorLine error={error} />
      <form class="stack" onSubmit={save}>
        {creating && <Field label="Name"><input required value={form.name} onInput={(e) => setForm({ ...form, name: (e.target as HTMLInputElement).value })} /></Field>}
        <Field label="Admin channels" hint="Comma-separated"><input value={form.channels} onInput={(e) => setForm({ ...form, channels: (e.target as HTMLInputElement).value })} /></Field>
        <div class="row"><button type="submit">{creating ? 'Create' : 'Save'}</button></div>
        {status && <p role="status" class="status">{status}</p>}
      </form>
      {role && <p>All channels (admin channels and sync function grants): <span class="channels">{(role.all_channels ?? []).join(', ') || '(none)'}</span></p>}
    </>
  );
}

/**
 * The sync function: view it, edit it (`PUT /{db}/_config/sync` with `If-Match`, so a concurrent
 * change is refused rather than overwritten; persistent mode only), and run a resync with its
 * progress (`POST /{db}/_resync?action=start` needs the database offline; `GET` reports progress),
 * and try it on a document before saving (sync-try.tsx).
 */
import { useEffect, useState } from 'preact/hooks';
import { call, dbPath, get, message } from '../api.ts';
import { ErrorLine, Field } from '../ui.tsx';
import { TryIt } from './sync-try.tsx';

interface Resync { status: string; docs_processed?: number; docs_changed?: number; last_error?: string; start_time?: string }

function ResyncPanel({ db }: { db: string }) {
  const [state, setState] = useState<string>();
  const [docCount, setDocCount] = useState(0);
  const [resync, setResync] = useState<Resync>();
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stop = false;
    (async () => {
      try {
        const info = await get(`${dbPath(db)}/`);
        const r = await get<Resync>(dbPath(db, '_resync'));
        if (stop) return;
        setState(info.state); setDocCount(info.doc_count + (info.doc_del_count ?? 0)); setResync(r);
      } catch (err) { if (!stop) setError(message(err)); }
    })();
    // While a resync runs its counters are read every second.
    const timer = resync?.status === 'running' || resync?.status === 'stopping' ? setTimeout(() => setTick(tick + 1), 1000) : undefined;
    return () => { stop = true; if (timer) clearTimeout(timer); };
  }, [db, tick, resync?.status]);
  const act = async (method: string, path: string) => {
    setError(undefined);
    try { await call(method, path); } catch (err) { setError(message(err)); }
    setTick(tick + 1);
  };
  const done = resync?.docs_processed ?? 0;
  return (
    <section aria-labelledby="h-resync">
      <h2 id="h-resync">Resync</h2>
      <p>Resync runs the current sync function again over every document, to recompute channels and grants. The database must be offline while it runs.</p>
      <p>Database state: <strong data-testid="db-state">{state ?? '…'}</strong></p>
      <div class="row">
        <button type="button" disabled={state !== 'Online'} onClick={() => act('POST', dbPath(db, '_offline'))}>Take offline</button>
        <button type="button" disabled={state !== 'Offline' || resync?.status === 'running'} onClick={() => act('POST', `${dbPath(db, '_resync')}?action=start`)}>Start resync</button>
        <button type="button" disabled={resync?.status !== 'running'} onClick={() => act('POST', `${dbPath(db, '_resync')}?action=stop`)}>Stop resync</button>
        <button type="button" disabled={state !== 'Offline' || resync?.status === 'running'} onClick={() => act('POST', dbPath(db, '_online'))}>Bring online</button>
      </div>
      <ErrorLine error={error} />
      {resync && (
        <div>
          <label class="field"><span>Progress</span>
            <progress max={Math.max(docCount, done, 1)} value={resync.status === 'completed' && done > 0 ? Math.max(docCount, done) : done} />
          </label>
          <p role="status" data-testid="resync-status">Status: {resync.status}; documents processed: {done}; changed: {resync.docs_changed ?? 0}{resync.last_error ? `; error: ${resync.last_error}` : ''}</p>
        </div>
      )}
    </section>
  );
}

export function SyncFunction({ db }: { db: string }) {
  const [source, setSource] = useState<string>();
  const [etag, setEtag] = useState<string>();
  const [text, setText] = useState('');
  const [status, setStatus] = useState<string>();
  const [error, setError] = useState<string>();
  const [reload, setReload] = useState(0);
  useEffect(() => {
    fetch(dbPath(db, '_config', 'sync'), { credentials: 'same-origin' }).then(async (r) => {
      const t = await r.text();
      if (!r.ok) { setError(`${r.status}: ${t}`); return; }
      setSource(t); setText(t); setEtag(r.headers.get('Etag') ?? undefined); setError(undefined);
    }, (err) => setError(String(err)));
  }, [db, reload]);
  const save = async () => {
    setStatus(undefined);
    try {
      const res = await fetch(dbPath(db, '_config', 'sync'), {
        method: 'PUT', credentials: 'same-origin', body: text,
        headers: { 'Content-Type': 'application/javascript', ...(etag && etag !== '""' ? { 'If-Match': etag } : {}) },
      });
      if (!res.ok) {
        const b = await res.json().catch(() => ({}));
        const hint = res.status === 412 ? ' Someone changed it meanwhile: load the current version, then edit again.' : '';
        setStatus(`The server refused it: ${res.status} ${b.reason ?? ''}.${hint}`);
        return;
      }
      setStatus('Saved. Existing documents keep their channels until a resync.');
      setReload(reload + 1);
    } catch (err) { setStatus(message(err)); }
  };
  return (
    <>
      <h1 tabIndex={-1}>Sync function of {db}</h1>
      <ErrorLine error={error} />
      {source !== undefined && (
        <section aria-labelledby="h-fn">
          <h2 id="h-fn">Function</h2>
          {source === '' && <p class="muted">No sync function is set: the default one (channels from the document’s <code>channels</code> property) applies.</p>}
          <Field label="Sync function source" hint={etag && etag !== '""' ? `Version ${etag}: saving fails if someone else changed it meanwhile.` : 'Editable over REST in persistent mode (a 3.x start-up config).'}>
            <textarea rows={14} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
          </Field>
          <div class="row">
            <button type="button" disabled={text === source} onClick={save}>Save</button>
            <button type="button" disabled={text === source} onClick={() => setText(source)}>Revert</button>
            <button type="button" onClick={() => { setStatus(undefined); setReload(reload + 1); }}>Load current version</button>
          </div>
          {status && <p role="status" class="status">{status}</p>}
        </section>
      )}
      <TryIt db={db} edited={source !== undefined && text !== source && text.trim() !== '' ? text : undefined} />
      <ResyncPanel db={db} />
    </>
  );
}

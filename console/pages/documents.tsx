/**
 * Documents of a database: listed by id prefix and paged on the server (`_all_docs` with
 * startkey/endkey/limit), and one document: body (as text), revision tree, channels and access
 * from `_raw`, edit as a new revision, delete, purge.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, currentChannels, dbPath, get, message, qs, type RawSync } from '../api.ts';
import { href } from '../route.ts';
import { confirmed, ErrorLine, Field } from '../ui.tsx';
import { RevTree } from './revtree.tsx';

const PAGE = 25;
/** Types previewed inline. Not SVG (it can carry script) and nothing else: the rest is download-only. */
const PREVIEW = /^image\/(png|jpeg|gif|webp)$/;

interface AttStub { content_type?: string; length?: number; digest?: string; revpos?: number }

/**
 * Attachments of the current revision. Links carry `download`, so an attachment of type text/html
 * is saved, never opened as a page on the admin origin (where it would act with the operator's
 * credentials); only raster images are shown inline.
 */
function Attachments({ db, id, atts }: { db: string; id: string; atts: Record<string, AttStub> }) {
  const names = Object.keys(atts).sort();
  return (
    <section aria-labelledby="h-atts">
      <h2 id="h-atts">Attachments</h2>
      {names.length === 0 ? <p class="muted">None.</p> : (
        <ul class="atts">
          {names.map((n) => {
            const a = atts[n];
            const url = dbPath(db, id, ...n.split('/'));
            return (
              <li key={n}>
                <a href={url} download={n.split('/').pop()}>{n}</a> <span class="muted">{a.content_type ?? 'unknown type'}, {a.length ?? '?'} bytes</span>
                {a.content_type && PREVIEW.test(a.content_type) && <div><img class="preview" src={url} alt={`Preview of ${n}`} /></div>}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

function DocList({ db }: { db: string }) {
  const [prefix, setPrefix] = useState('');
  const [starts, setStarts] = useState<string[]>(['']); // startkey of each page seen
  const [rows, setRows] = useState<{ id: string; rev: string }[]>([]);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string>();
  const [newId, setNewId] = useState('');
  const start = starts[starts.length - 1];
  useEffect(() => {
    const q = qs({ limit: PAGE + 1, startkey: JSON.stringify(start || prefix), endkey: prefix ? JSON.stringify(`${prefix}\uffff`) : undefined });
    get<{ rows: { id: string; value: { rev: string } }[] }>(`${dbPath(db, '_all_docs')}${q}`).then((r) => {
      setRows(r.rows.slice(0, PAGE).map((x) => ({ id: x.id, rev: x.value.rev })));
      setMore(r.rows.length > PAGE);
      setError(undefined);
    }, (err) => setError(message(err)));
  }, [db, prefix, start]);
  return (
    <>
      <h1 tabIndex={-1}>Documents in {db}</h1>
      <form class="row" onSubmit={(e) => { e.preventDefault(); if (newId) location.hash = href(db, 'docs', newId); }}>
        <Field label="New or existing document id"><input value={newId} onInput={(e) => setNewId((e.target as HTMLInputElement).value)} /></Field>
        <button type="submit">Open</button>
      </form>
      <Field label="Search by id prefix">
        <input type="search" value={prefix} onInput={(e) => { setPrefix((e.target as HTMLInputElement).value); setStarts(['']); }} />
      </Field>
      <ErrorLine error={error} />
      <table class="grid" aria-label="Documents">
        <thead><tr><th scope="col">Id</th><th scope="col">Current revision</th></tr></thead>
        <tbody>
          {rows.map((r) => <tr key={r.id}><td><a href={href(db, 'docs', r.id)}>{r.id}</a></td><td><code>{r.rev}</code></td></tr>)}
        </tbody>
      </table>
      {rows.length === 0 && !error && <p>No documents{prefix ? ` starting with “${prefix}”` : ''}.</p>}
      <div class="row">
        <button type="button" disabled={starts.length === 1} onClick={() => setStarts(starts.slice(0, -1))}>Previous page</button>
        <button type="button" disabled={!more} onClick={() => setStarts([...starts, `${rows[rows.length - 1].id}\u0000`])}>Next page</button>
      </div>
    </>
  );
}

interface Loaded { raw?: { _sync: RawSync; [k: string]: unknown }; body?: Record<string, unknown>; missing: boolean }

function DocView({ db, id }: { db: string; id: string }) {
  const [doc, setDoc] = useState<Loaded>();
  const [text, setText] = useState('');
  const [baseRev, setBaseRev] = useState<string>();
  const [error, setError] = useState<string>();
  const [status, setStatus] = useState<string>();
  const [reload, setReload] = useState(0);
  useEffect(() => {
    (async () => {
      try {
        const raw = await get(dbPath(db, '_raw', id));
        let body: Record<string, unknown> | undefined;
        try { body = await get(dbPath(db, id)); } catch (err) { if (!(err instanceof ApiError && err.status === 404)) throw err; }
        setDoc({ raw, body, missing: false });
        const { _id, _rev, _revisions, ...rest } = (body ?? {}) as Record<string, unknown>;
        setText(JSON.stringify(rest, null, 2));
        setBaseRev(body ? String(_rev) : raw._sync.rev);
        setError(undefined);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) { setDoc({ missing: true }); setText('{\n  \n}'); setBaseRev(undefined); setError(undefined); }
        else setError(message(err));
      }
    })();
  }, [db, id, reload]);

  let parseError: string | undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(text); if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) parseError = 'The body must be a JSON object.'; } catch (err) { parseError = `Invalid JSON: ${(err as Error).message}`; }

  const save = async () => {
    setStatus(undefined);
    try {
      const r = await call('PUT', `${dbPath(db, id)}${qs({ rev: baseRev })}`, parsed);
      setStatus(`Saved as revision ${r.body.rev}.`);
      setReload(reload + 1);
    } catch (err) { setStatus(`The server refused the save: ${message(err)}`); }
  };
  const remove = async () => {
    if (!baseRev || !confirmed(`Delete document “${id}”? This writes a tombstone revision.`)) return;
    try { await call('DELETE', `${dbPath(db, id)}${qs({ rev: baseRev })}`); setStatus('Deleted.'); setReload(reload + 1); } catch (err) { setStatus(message(err)); }
  };
  const purge = async () => {
    if (!confirmed(`Purge document “${id}”? Every revision is removed for good and clients are not told.`)) return;
    try { await call('POST', dbPath(db, '_purge'), { [id]: ['*'] }); setStatus('Purged.'); setReload(reload + 1); } catch (err) { setStatus(message(err)); }
  };

  const sync = doc?.raw?._sync;
  const deleted = new Set<string>();
  if (sync?.history.deleted) for (const i of sync.history.deleted) deleted.add(sync.history.revs[i]);
  if (sync && (sync.flags ?? 0) & 1) deleted.add(sync.rev);
  return (
    <>
      <p><a href={href(db, 'docs')}>← All documents</a></p>
      <h1 tabIndex={-1}>Document <code>{id}</code></h1>
      <ErrorLine error={error} />
      {doc?.missing && <p>No such document yet: saving creates it.</p>}
      {sync && (
        <div class="cols">
          <section aria-labelledby="h-meta">
            <h2 id="h-meta">Metadata</h2>
            <dl class="meta">
              <dt>Current revision</dt><dd><code>{sync.rev}</code>{deleted.has(sync.rev) && ' (deleted)'}</dd>
              <dt>Sequence</dt><dd>{sync.sequence}</dd>
              <dt>Channels</dt><dd class="channels">{currentChannels(sync).join(', ') || '(none)'}</dd>
              <dt>Access grants</dt>
              <dd>{sync.access ? Object.entries(sync.access).map(([u, ch]) => <div key={u}>{u}: {Object.keys(ch).join(', ')}</div>) : '(none)'}</dd>
              {sync.role_access && <><dt>Role grants</dt><dd>{Object.entries(sync.role_access).map(([u, r]) => <div key={u}>{u}: {Object.keys(r).join(', ')}</div>)}</dd></>}
            </dl>
          </section>
          <section aria-labelledby="h-tree">
            <h2 id="h-tree">Revision tree</h2>
            <RevTree history={sync.history} winner={sync.rev} deleted={deleted} />
          </section>
        </div>
      )}
      {doc?.body && <Attachments db={db} id={id} atts={(doc.body._attachments ?? {}) as Record<string, AttStub>} />}
      {doc?.body && (
        <section aria-labelledby="h-body">
          <h2 id="h-body">Current body</h2>
          {/* Text, never HTML: a body holding markup is shown, not run. */}
          <pre class="body" data-testid="doc-body">{JSON.stringify(doc.body, null, 2)}</pre>
        </section>
      )}
      {doc && (
        <section aria-labelledby="h-edit">
          <h2 id="h-edit">{doc.missing ? 'Create' : 'Edit (saved as a new revision)'}</h2>
          <Field label={`Body (JSON), based on revision ${baseRev ?? '(new document)'}`}>
            <textarea rows={12} spellcheck={false} value={text} aria-invalid={parseError ? 'true' : 'false'}
              onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
          </Field>
          <ErrorLine error={parseError} />
          <div class="row">
            <button type="button" disabled={!!parseError} onClick={save}>Save</button>
            {!doc.missing && <button type="button" class="danger" onClick={remove}>Delete…</button>}
            {!doc.missing && <button type="button" class="danger" onClick={purge}>Purge…</button>}
            {!doc.missing && <button type="button" onClick={() => setReload(reload + 1)}>Reload</button>}
          </div>
          {status && <p role="status" class="status">{status}</p>}
        </section>
      )}
    </>
  );
}

export function Documents({ db, id }: { db: string; id?: string }) {
  return id === undefined ? <DocList db={db} /> : <DocView key={id} db={db} id={id} />;
}

/**
 * "Try it": the sync function dry run (`POST /{db}/_sync`), server-side in the same sandbox and
 * time limit as a write, storing nothing. Runs the function being edited (or the saved one) over a
 * stored document or a pasted body, with an optional oldDoc, as the admin or as a stored user.
 */
import { useState } from 'preact/hooks';
import { call, dbPath, message } from '../api.ts';
import { ErrorLine, Field } from '../ui.tsx';

interface DryRun {
  doc_id: string; rev: string; user: string | null;
  channels?: string[]; access?: Record<string, string[]>; roles?: Record<string, string[]>; expiry?: number;
  rejection?: { status: number; error: string; reason: string };
}

/** A JSON object from a textarea, or an error naming the field; empty text is "not given". */
function parseObject(text: string, what: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  let v: unknown;
  try { v = JSON.parse(text); } catch (err) { throw new Error(`${what}: invalid JSON (${(err as Error).message})`); }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: must be a JSON object`);
  return v as Record<string, unknown>;
}

function Grants({ label, map, testid }: { label: string; map?: Record<string, string[]>; testid: string }) {
  const entries = Object.entries(map ?? {});
  return (
    <>
      <dt>{label}</dt>
      <dd data-testid={testid}>{entries.length ? entries.map(([who, what]) => `${who} → ${what.join(', ')}`).join('; ') : '(none)'}</dd>
    </>
  );
}

export function TryIt({ db, edited }: { db: string; edited?: string }) {
  const [docId, setDocId] = useState('');
  const [body, setBody] = useState('');
  const [oldDoc, setOldDoc] = useState('');
  const [user, setUser] = useState('');
  const [useEdited, setUseEdited] = useState(true);
  const [result, setResult] = useState<DryRun>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async (e: Event) => {
    e.preventDefault();
    setResult(undefined); setError(undefined); setBusy(true);
    try {
      const req: Record<string, unknown> = {};
      if (docId.trim()) req.doc_id = docId.trim();
      const doc = parseObject(body, 'Document body');
      const old = parseObject(oldDoc, 'oldDoc');
      if (doc) req.doc = doc;
      if (old) req.oldDoc = old;
      if (user.trim()) req.user = user.trim();
      if (useEdited && edited !== undefined) req.sync_function = edited;
      setResult((await call<DryRun>('POST', dbPath(db, '_sync'), req)).body);
    } catch (err) { setError(message(err)); }
    setBusy(false);
  };
  const r = result;
  return (
    <section aria-labelledby="h-try">
      <h2 id="h-try">Try it</h2>
      <p class="muted">Runs the function over one revision on the server, in the same sandbox and time limit as a real write, and stores nothing. Give a stored document’s id (it is <code>doc</code>; with a body below it becomes <code>oldDoc</code>), a body, or both.</p>
      <form onSubmit={run}>
        <div class="row">
          <Field label="Stored document id"><input value={docId} onInput={(e) => setDocId((e.target as HTMLInputElement).value)} /></Field>
          <Field label="Run as user" hint="Empty: as the admin (every require* passes)"><input value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} autocomplete="off" /></Field>
        </div>
        <Field label="Document body (JSON, optional)">
          <textarea rows={5} spellcheck={false} value={body} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} />
        </Field>
        <Field label="oldDoc (JSON, optional)" hint="Leave it empty when a stored document is named">
          <textarea rows={3} spellcheck={false} value={oldDoc} onInput={(e) => setOldDoc((e.target as HTMLTextAreaElement).value)} />
        </Field>
        {edited !== undefined && (
          <label class="check"><input type="checkbox" checked={useEdited} onChange={(e) => setUseEdited((e.target as HTMLInputElement).checked)} /> Use the function as edited above (unsaved)</label>
        )}
        <div class="row"><button type="submit" disabled={busy}>Try it</button></div>
      </form>
      <ErrorLine error={error} />
      {r && (
        <div aria-live="polite" data-testid="dry-run">
          {r.rejection
            ? <p class="verdict no" data-testid="dry-run-verdict">Rejected: {r.rejection.status} {r.rejection.error}: {r.rejection.reason}</p>
            : <p class="verdict yes" data-testid="dry-run-verdict">Accepted{r.user ? ` as ${r.user}` : ' as the admin'}.</p>}
          <dl class="meta">
            <dt>Revision</dt><dd><code>{r.doc_id}</code> {r.rev}</dd>
            {!r.rejection && (
              <>
                <dt>Channels</dt><dd class="channels" data-testid="dry-run-channels">{r.channels?.join(', ') || '(none: only admins would see it)'}</dd>
                <Grants label="Channel grants (access)" map={r.access} testid="dry-run-access" />
                <Grants label="Role grants (role)" map={r.roles} testid="dry-run-roles" />
                <dt>Expiry</dt><dd>{r.expiry !== undefined ? new Date(r.expiry * 1000).toISOString() : '(none)'}</dd>
              </>
            )}
          </dl>
        </div>
      )}
    </section>
  );
}

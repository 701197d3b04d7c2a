/**
 * A user's effective access from `GET /{db}/_user/{name}/_access`: each channel and role with every
 * path to it (admin grant, role and how the role has it, the granting document, a JWT claim) and
 * the sequence from which it counts.
 */
import { useEffect, useState } from 'preact/hooks';
import { dbPath, get, message } from '../api.ts';
import { href } from '../route.ts';
import { ErrorLine } from '../ui.tsx';

type Doc = { type: 'document'; doc_id: string; since: number; collection?: string };
type Source = { type: 'public' | 'admin' | 'jwt'; since: number } | Doc
  | { type: 'role'; role: string; since: number; via: { type: 'admin'; since: number } | Doc };
interface Provenance { since: number; sources: Source[] }
interface Explanation { channels: Record<string, Provenance>; roles: Record<string, Provenance>; collections: Record<string, Record<string, Provenance>> }

function DocLink({ db, d }: { db: string; d: Doc }) {
  // Named collections' documents have no page yet: their id is shown as text.
  return d.collection ? <code>{d.collection}/{d.doc_id}</code> : <a href={href(db, 'docs', d.doc_id)}>{d.doc_id}</a>;
}

function SourceText({ db, s }: { db: string; s: Source }) {
  switch (s.type) {
    case 'public': return <>everyone (the public channel)</>;
    case 'admin': return <>admin grant</>;
    case 'jwt': return <>JWT claim</>;
    case 'document': return <>access() by document <DocLink db={db} d={s} /></>;
    case 'role': return (
      <>role <a href={href(db, 'roles', s.role)}>{s.role}</a>
        {s.via.type === 'admin' ? ' (its admin grant)' : <> (granted to the role by document <DocLink db={db} d={s.via} />)</>}
      </>
    );
  }
}

function Table({ db, label, first, map }: { db: string; label: string; first: string; map: Record<string, Provenance> }) {
  return (
    <table class="grid" aria-label={label}>
      <thead><tr><th scope="col">{first}</th><th scope="col">Since sequence</th><th scope="col">Granted by</th></tr></thead>
      <tbody>
        {Object.entries(map).map(([k, p]) => (
          <tr key={k}>
            <td>{k}</td>
            <td class="num">{p.since}</td>
            <td>{p.sources.map((s, i) => <span key={i}>{i > 0 && '; '}<SourceText db={db} s={s} />{p.sources.length > 1 && ` (from ${s.since})`}</span>)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function EffectiveAccess({ db, name, reload }: { db: string; name: string; reload: number }) {
  const [x, setX] = useState<Explanation>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    get<Explanation>(dbPath(db, '_user', name, '_access')).then((v) => { setX(v); setError(undefined); }, (err) => setError(message(err)));
  }, [db, name, reload]);
  return (
    <section aria-labelledby="h-eff">
      <h2 id="h-eff">Effective access</h2>
      <ErrorLine error={error} />
      {x && (
        <>
          <Table db={db} label="Channels and where they come from" first="Channel" map={x.channels} />
          {Object.keys(x.roles).length > 0 && <Table db={db} label="Roles and where they come from" first="Role" map={x.roles} />}
          {Object.entries(x.collections).map(([c, map]) => <Table key={c} db={db} label={`Channels of collection ${c}`} first={`Channel of ${c}`} map={map} />)}
          <p class="muted">A channel counts from the earliest sequence any of its paths gives it; through a role, from when the user got the role or the role got the channel, whichever is later.</p>
        </>
      )}
    </section>
  );
}

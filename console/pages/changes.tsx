/**
 * The database's changes as they happen: the admin continuous `_changes` feed read through a
 * streaming fetch (one JSON object per line), filtered by document id prefix in the page and
 * pausable (pausing closes the feed; resuming continues from the last sequence seen). It starts at the
 * database's current sequence when the page opens.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { dbPath, get, qs } from '../api.ts';
import { href } from '../route.ts';
import { ErrorLine, Field } from '../ui.tsx';

interface Change { seq: number | string; id: string; changes: { rev: string }[]; deleted?: boolean; removed?: string[] }

const KEEP = 500;

export function Changes({ db }: { db: string }) {
  const [rows, setRows] = useState<Change[]>([]);
  const [paused, setPaused] = useState(false);
  const [filter, setFilter] = useState('');
  // A channel filter is applied by the server (`filter=sync_gateway/bychannel`): the feed restarts.
  const [channel, setChannel] = useState('');
  const [channelInput, setChannelInput] = useState('');
  const [error, setError] = useState<string>();
  // Undefined until the feed opens: then the database's update_seq (Sync Gateway has no `since=now`).
  const since = useRef<string | number>();
  useEffect(() => {
    if (paused) return;
    const abort = new AbortController();
    (async () => {
      try {
        if (since.current === undefined) since.current = (await get(`${dbPath(db)}/`)).update_seq as number;
        const res = await fetch(`${dbPath(db, '_changes')}${qs({ feed: 'continuous', since: since.current, heartbeat: 30000, ...(channel ? { filter: 'sync_gateway/bychannel', channels: channel } : {}) })}`, { credentials: 'same-origin', signal: abort.signal });
        if (!res.ok || !res.body) { setError(`${res.status}: ${await res.text()}`); return; }
        setError(undefined);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          const got: Change[] = [];
          for (const line of lines) {
            if (!line.trim()) continue;
            const c = JSON.parse(line);
            if (c.id !== undefined) got.push(c);
            if (c.seq !== undefined || c.last_seq !== undefined) since.current = c.seq ?? c.last_seq;
          }
          if (got.length) setRows((r) => [...got.reverse(), ...r].slice(0, KEEP));
        }
      } catch (err) {
        if (!abort.signal.aborted) setError(`The feed stopped: ${(err as Error).message}`);
      }
    })();
    return () => abort.abort();
  }, [db, paused, channel]);
  const shown = rows.filter((r) => r.id.startsWith(filter));
  return (
    <>
      <h1 tabIndex={-1}>Live changes in {db}</h1>
      <div class="row">
        <Field label="Filter by document id prefix"><input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} /></Field>
        <form class="row" onSubmit={(e) => { e.preventDefault(); setChannel(channelInput.trim()); }}>
          <Field label="Only channel (server-side filter)"><input value={channelInput} onInput={(e) => setChannelInput((e.target as HTMLInputElement).value)} /></Field>
          <button type="submit">Apply</button>
        </form>
        <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>{paused ? 'Resume' : 'Pause'}</button>
        <button type="button" onClick={() => setRows([])}>Clear</button>
      </div>
      <p role="status" class="muted">{paused ? 'Paused.' : `Following the feed${channel ? ` of channel ${channel}` : ''} from the moment this page opened.`} {rows.length} change(s) received.</p>
      <ErrorLine error={error} />
      <table class="grid" aria-label="Changes, newest first">
        <thead><tr><th scope="col">Sequence</th><th scope="col">Document</th><th scope="col">Revision</th><th scope="col">Note</th></tr></thead>
        <tbody>
          {shown.map((c) => (
            <tr key={`${c.seq}`}>
              <td class="num">{String(c.seq)}</td>
              <td><a href={href(db, 'docs', c.id)}>{c.id}</a></td>
              <td><code>{c.changes?.[0]?.rev}</code></td>
              <td>{c.deleted ? 'deleted' : ''}{c.removed ? `removed from ${c.removed.join(', ')}` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

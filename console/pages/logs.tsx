/**
 * The gateway's recent log lines (`GET /_log_tail`, the in-memory buffer: already redacted like the
 * log files), followed every couple of seconds, and the console level and keys, changed through
 * `/_logging` as with curl.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, get, message, qs } from '../api.ts';
import { LOG_KEYS, LOG_LEVELS } from '../../src/log/levels.ts';
import { ErrorLine, Field, splitList } from '../ui.tsx';

interface Tail { lines: { seq: number; line: string }[]; last_seq: number; dropped: number; console: { log_level: string; log_keys: string[] } }

const POLL_MS = 2000;
const KEEP = 2000;

export function Logs() {
  const [lines, setLines] = useState<{ seq: number; line: string }[]>([]);
  const [consoleCfg, setConsoleCfg] = useState<Tail['console']>();
  const [keysText, setKeysText] = useState('');
  const [filter, setFilter] = useState('');
  const [follow, setFollow] = useState(true);
  const [status, setStatus] = useState<string>();
  const [error, setError] = useState<string>();
  const last = useRef(0);
  const shownKeys = useRef<string>();
  const list = useRef<HTMLOListElement>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const t = await get<Tail>(`/_log_tail${qs({ since: last.current || undefined, limit: last.current ? undefined : 500 })}`);
        if (stop) return;
        last.current = t.last_seq;
        if (t.lines.length) setLines((old) => [...old, ...t.lines].slice(-KEEP));
        // The keys field follows the server only when the server's keys change, not while typing.
        const keys = t.console.log_keys.join(', ');
        if (keys !== shownKeys.current) { shownKeys.current = keys; setKeysText(keys); }
        setConsoleCfg(t.console);
        setError(undefined);
      } catch (err) { if (!stop) setError(message(err)); }
      if (!stop && follow) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => { stop = true; if (timer) clearTimeout(timer); };
  }, [follow, reload]);

  // Following keeps the newest line in view, as `tail -f` does.
  useEffect(() => { if (follow && list.current) list.current.scrollTop = list.current.scrollHeight; }, [lines, follow, filter]);

  const setLevel = async (level: string) => {
    setStatus(undefined);
    try {
      await call('PUT', `/_logging${qs({ logLevel: level })}`);
      setStatus(`Console level set to ${level}.`);
      setReload((n) => n + 1);
    } catch (err) { setStatus(message(err)); }
  };
  const setKeys = async (e: Event) => {
    e.preventDefault();
    setStatus(undefined);
    try {
      await call('PUT', '/_logging', Object.fromEntries(splitList(keysText).map((k) => [k, true])));
      setStatus('Console keys replaced.');
      setReload((n) => n + 1);
    } catch (err) { setStatus(message(err)); }
  };
  const shown = filter ? lines.filter((l) => l.line.includes(filter)) : lines;
  return (
    <>
      <h1 tabIndex={-1}>Logs</h1>
      <ErrorLine error={error} />
      <section aria-labelledby="h-logcfg">
        <h2 id="h-logcfg">Console logging</h2>
        <p class="muted">The last lines below include every console line and the info-and-above lines of every key, whatever the console shows.</p>
        <div class="row">
          <Field label="Console log level">
            <select value={consoleCfg?.log_level ?? ''} onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}>
              {LOG_LEVELS.map((l) => <option key={l} value={l}>{l}</option>)}
            </select>
          </Field>
          <form class="row" onSubmit={setKeys}>
            <Field label="Console log keys" hint={`Comma-separated; known: ${LOG_KEYS.join(' ')}`}>
              <input value={keysText} onInput={(e) => setKeysText((e.target as HTMLInputElement).value)} />
            </Field>
            <button type="submit">Set keys</button>
          </form>
        </div>
        {status && <p role="status" class="status">{status}</p>}
      </section>
      <section aria-labelledby="h-lines">
        <h2 id="h-lines">Last lines</h2>
        <div class="row">
          <Field label="Show lines containing"><input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} /></Field>
          <button type="button" onClick={() => setFollow(!follow)}>{follow ? 'Pause' : 'Follow'}</button>
          <button type="button" onClick={() => setLines([])}>Clear view</button>
        </div>
        <p role="status" class="muted">{follow ? 'Following the log.' : 'Paused.'} {shown.length} line{shown.length === 1 ? '' : 's'} shown.</p>
        <ol class="log" ref={list} aria-label="Log lines, oldest first">
          {shown.map((l) => <li key={l.seq}>{l.line}</li>)}
        </ol>
      </section>
    </>
  );
}

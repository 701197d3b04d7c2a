/**
 * "Why can't this user see this document?", answered from the admin API: the document's current
 * channels (`_raw`), the user's channels (`all_channels` of `_user`), and what links or fails to.
 */
import { useState } from 'preact/hooks';
import { currentChannels, dbPath, get, message, type RawSync } from '../api.ts';
import { ErrorLine, Field } from '../ui.tsx';

interface Answer { docChannels: string[]; userChannels: string[]; shared: string[]; disabled: boolean; deleted: boolean; star: boolean }

export function Why({ db }: { db: string }) {
  const [user, setUser] = useState('');
  const [doc, setDoc] = useState('');
  const [answer, setAnswer] = useState<Answer>();
  const [error, setError] = useState<string>();
  const ask = async (e: Event) => {
    e.preventDefault();
    setAnswer(undefined); setError(undefined);
    try {
      const [raw, u] = await Promise.all([
        get<{ _sync: RawSync }>(dbPath(db, '_raw', doc)).catch((err) => { throw new Error(`document “${doc}”: ${message(err)}`); }),
        get<{ all_channels?: string[]; disabled?: boolean }>(dbPath(db, '_user', user)).catch((err) => { throw new Error(`user “${user}”: ${message(err)}`); }),
      ]);
      const docChannels = currentChannels(raw._sync);
      const userChannels = u.all_channels ?? [];
      const star = userChannels.includes('*');
      const shared = star ? docChannels : docChannels.filter((c) => userChannels.includes(c));
      setAnswer({ docChannels, userChannels, shared, disabled: !!u.disabled, deleted: ((raw._sync.flags ?? 0) & 1) === 1, star });
    } catch (err) { setError(message(err)); }
  };
  const verdict = (a: Answer) => {
    if (a.disabled) return `No: user “${user}” is disabled, so they cannot sign in at all.`;
    if (a.shared.length > 0) return `Yes: “${user}” can see “${doc}” through ${a.star ? 'the * channel (every channel)' : `channel${a.shared.length > 1 ? 's' : ''} ${a.shared.join(', ')}`}.`;
    if (a.docChannels.length === 0) return `No: “${doc}” is in no channel, so only admins see it. The sync function assigned it none.`;
    return `No: “${doc}” is in ${a.docChannels.join(', ')}, and “${user}” has none of these. Grant one (admin_channels, a role, or access() in the sync function).`;
  };
  return (
    <>
      <h1 tabIndex={-1}>Why can’t this user see this document?</h1>
      <form class="row" onSubmit={ask}>
        <Field label="User name"><input required value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} /></Field>
        <Field label="Document id"><input required value={doc} onInput={(e) => setDoc((e.target as HTMLInputElement).value)} /></Field>
        <button type="submit">Explain</button>
      </form>
      <ErrorLine error={error} />
      {answer && (
        <section aria-live="polite" aria-labelledby="h-answer">
          <h2 id="h-answer">Answer</h2>
          <p class={`verdict ${answer.shared.length && !answer.disabled ? 'yes' : 'no'}`} data-testid="verdict">{verdict(answer)}</p>
          <dl class="meta">
            <dt>Document’s channels</dt><dd class="channels">{answer.docChannels.join(', ') || '(none)'}</dd>
            <dt>User’s channels</dt><dd class="channels">{answer.userChannels.join(', ') || '(none)'}</dd>
            <dt>Shared</dt><dd class="channels">{answer.shared.join(', ') || '(none: this is the missing link)'}</dd>
          </dl>
          {answer.deleted && <p class="muted">The current revision is a deletion: clients see it as a tombstone.</p>}
        </section>
      )}
    </>
  );
}

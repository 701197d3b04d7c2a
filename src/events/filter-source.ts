/**
 * Where a webhook `filter` comes from: Sync Gateway 3.x (`initEventHandlers` in
 * rest/server_context.go, through `loadJavaScript`/`readFromPath` in rest/config.go) reads
 *   - a value starting with `http://` or `https://` from that URL (GET; an answer ≥ 300 or a
 *     network error refuses the config),
 *   - else, a value naming an existing regular file, from that file,
 *   - else, the value itself as inline JavaScript (so a path to no file is compiled as JavaScript
 *     and refused as such). There is no `file://` form.
 * What is read is the filter; empty means none ("everything will be processed"). It is read once,
 * when the database's handlers are built (start-up, config change).
 */
import { readFile, stat } from 'node:fs/promises';
import { EventFilterError } from './filter.ts';
import { redactUrl, splitCredentials } from './webhook.ts';

/** Sync Gateway waits for the URL without a limit; a config change should not hang forever. */
export const FILTER_LOAD_TIMEOUT_MS = 30_000;

/**
 * The filter's JavaScript; throws EventFilterError naming `path` (the config key) when it cannot be
 * read. `onLoad` is told where it is read from (a URL with its credentials redacted, or a file).
 */
export async function loadFilterSource(value: string, path: string, onLoad: (from: string) => void = () => {}, timeoutMs = FILTER_LOAD_TIMEOUT_MS): Promise<string> {
  const isUrl = value.startsWith('http://') || value.startsWith('https://');
  const shown = isUrl ? redactUrl(value) : value;
  const failed = (why: string) => new EventFilterError(`${path}: Error loading JavaScript (WebhookFilter) from ${JSON.stringify(shown)}: ${why}`);
  if (isUrl) {
    onLoad(shown);
    let res: Response;
    try {
      // Credentials in the URL go as Basic auth (Go's client does this; fetch refuses such URLs).
      const { target, authorization } = splitCredentials(value);
      res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow', headers: authorization ? { authorization } : {} });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      throw failed(e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message));
    }
    if (res.status >= 300) {
      await res.body?.cancel().catch(() => {});
      throw failed(`${res.status} ${res.statusText}`.trim());
    }
    try {
      return await res.text();
    } catch (err) {
      throw failed((err as Error).message);
    }
  }
  const isFile = await stat(value).then((s) => s.isFile(), () => false);
  if (!isFile) return value; // inline JavaScript
  onLoad(shown);
  try {
    return await readFile(value, 'utf8');
  } catch (err) {
    throw failed((err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
}

/**
 * `event_handlers` of a database config (Sync Gateway's `EventHandlerConfig`, spec §4.1, plus
 * Syncgate's own `delivery` keys). The schema checks types and unknown keys; this checks values
 * and fills in defaults. Filters are compiled where they run (src/events/), which names the key too.
 */

export type EventDelivery = 'best_effort' | 'at_least_once';

export interface WebhookConfig {
  /** The key path, e.g. `databases.db.event_handlers.document_changed[0]`, for messages and status. */
  path: string;
  url: string;
  filter?: string;
  timeoutSecs: number;
  winningRevOnly: boolean;
  /** Syncgate's own: best effort (Sync Gateway's queue) unless `at_least_once`. */
  delivery: EventDelivery;
  /** at_least_once: changes per POST (1 = one document object, more = an array). */
  batchSize: number;
  /** at_least_once: attempts per change before it is recorded as failed. */
  maxAttempts: number;
  /** at_least_once: first retry delay; doubles per attempt up to `retryMaxMs`. */
  retryInitialMs: number;
  retryMaxMs: number;
}

export interface EventHandlersConfig {
  maxProcesses: number;
  waitForProcessMs: number;
  documentChanged: WebhookConfig[];
  dbStateChanged: WebhookConfig[];
}

export const DEFAULT_MAX_PROCESSES = 500;
export const DEFAULT_WAIT_FOR_PROCESS_MS = 100;
export const DEFAULT_WEBHOOK_TIMEOUT_SECS = 60;
export const DEFAULT_MAX_ATTEMPTS = 10;
export const DEFAULT_RETRY_INITIAL_MS = 1000;
export const DEFAULT_RETRY_MAX_MS = 60_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Builds the handlers of `databases.<db>.event_handlers`; each problem goes to `err` naming its key. */
export function buildEventHandlers(raw: unknown, path: string, err: (m: string) => void): EventHandlersConfig | undefined {
  if (!isObj(raw)) return undefined;
  const maxProcesses = typeof raw.max_processes === 'number' && raw.max_processes > 0 ? raw.max_processes : DEFAULT_MAX_PROCESSES;
  // Sync Gateway: a string of milliseconds; absent or unparsable means 100.
  const wait = typeof raw.wait_for_process === 'string' && /^\d+$/.test(raw.wait_for_process.trim()) ? Number(raw.wait_for_process.trim()) : DEFAULT_WAIT_FOR_PROCESS_MS;
  const handlers = (kind: 'document_changed' | 'db_state_changed'): WebhookConfig[] => {
    const list = Array.isArray(raw[kind]) ? raw[kind] as unknown[] : [];
    return list.flatMap((h, i) => {
      const w = buildWebhook(isObj(h) ? h : {}, `${path}.event_handlers.${kind}[${i}]`, kind, err);
      return w ? [w] : [];
    });
  };
  return { maxProcesses, waitForProcessMs: wait, documentChanged: handlers('document_changed'), dbStateChanged: handlers('db_state_changed') };
}

function buildWebhook(h: Obj, path: string, kind: string, err: (m: string) => void): WebhookConfig | undefined {
  let ok = true;
  const fail = (m: string) => { ok = false; err(m); };
  if (h.handler !== 'webhook') fail(`${path}.handler: Unknown event handler type ${JSON.stringify(h.handler ?? '')}: only "webhook" is supported`);
  const url = typeof h.url === 'string' ? h.url : '';
  if (!url) fail(`${path}.url: a webhook needs a url`);
  else {
    let parsed: URL | undefined;
    try { parsed = new URL(url); } catch { /* below */ }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) fail(`${path}.url: not an http(s) URL`);
  }
  const options = isObj(h.options) ? h.options : undefined;
  if (options && kind === 'db_state_changed') fail(`${path}.options: db_state_changed handlers take no options`);
  const delivery = h.delivery === 'at_least_once' ? 'at_least_once' : 'best_effort';
  if (h.delivery !== undefined && kind === 'db_state_changed') fail(`${path}.delivery: only document_changed handlers have a delivery mode`);
  for (const k of ['batch_size', 'max_attempts', 'retry_initial_ms', 'retry_max_ms'] as const) {
    if (h[k] !== undefined && delivery !== 'at_least_once') fail(`${path}.${k}: applies only with "delivery": "at_least_once"`);
    if (h[k] === 0) fail(`${path}.${k}: must be at least 1`);
  }
  const n = (k: string, d: number) => (typeof h[k] === 'number' ? h[k] as number : d);
  const config: WebhookConfig = {
    path, url,
    timeoutSecs: n('timeout', DEFAULT_WEBHOOK_TIMEOUT_SECS) || DEFAULT_WEBHOOK_TIMEOUT_SECS,
    winningRevOnly: options?.winning_rev_only === true,
    delivery,
    batchSize: n('batch_size', 1),
    maxAttempts: n('max_attempts', DEFAULT_MAX_ATTEMPTS),
    retryInitialMs: n('retry_initial_ms', DEFAULT_RETRY_INITIAL_MS),
    retryMaxMs: n('retry_max_ms', DEFAULT_RETRY_MAX_MS),
  };
  if (typeof h.filter === 'string' && h.filter.trim() !== '') config.filter = h.filter;
  return ok ? config : undefined;
}

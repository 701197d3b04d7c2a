/**
 * Child process of the fan-out benchmark: holds a share of the live listeners so that no one client
 * process pays for 10,000 sockets. argv[2] is JSON: { url, since, from, count, channels, kinds, filter }.
 * Listener i (from..from+count) follows channel `fan-<i % channels>` with feed kinds[i % kinds.length].
 * Reports "open" once every request is sent, then for each change the time (ms since the epoch,
 * sub-millisecond) at which each listener saw it: { doc, times: number[] }.
 */
import http from 'node:http';
import { WebSocket } from 'ws';

interface Spec { url: string; since: number; from: number; count: number; channels: number; kinds: string[]; filter: boolean; sessions?: string[] }
const spec = JSON.parse(process.argv[2]!) as Spec;
const now = () => performance.timeOrigin + performance.now();
/** doc id -> arrival times of its first sighting, one per listener. */
const seen = new Map<string, number[]>();
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
let complained = false;
/** Feeds that failed or closed, by kind: a missed listener is then explained, not guessed at. */
const lost: Record<string, number> = {};
const lose = (kind: string) => { lost[kind] = (lost[kind] ?? 0) + 1; };

function saw(ids: string[]): void {
  const t = now();
  for (const id of ids) {
    let list = seen.get(id);
    if (!list) seen.set(id, (list = []));
    list.push(t);
  }
}

function query(i: number, feed: string, since: number): string {
  const ch = `fan-${i % spec.channels}`;
  return `${spec.url}/_changes?feed=${feed}&since=${since}&heartbeat=0&timeout=600000${spec.filter ? `&filter=sync_gateway/bychannel&channels=${ch}` : ''}`;
}

/** Listener i's session cookie, when each listener is a user of its own. */
function headers(i: number): Record<string, string> {
  return spec.sessions ? { cookie: `SyncGatewaySession=${spec.sessions[i - spec.from]}` } : {};
}

function longpoll(i: number, since: number): void {
  http.get(query(i, 'longpoll', since), { agent, headers: headers(i) }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c) => { text += c; });
    res.on('end', () => {
      let body: { results?: { id: string }[]; last_seq: number };
      try { body = JSON.parse(text); } catch { body = { last_seq: since }; }
      if (!body.results) {
        // A refused or cut-off poll: say so once, and poll again as a client would.
        if (!complained) console.error(`longpoll answered ${res.statusCode}: ${JSON.stringify(text.slice(0, 200))}`);
        complained = true;
        setTimeout(() => longpoll(i, since), 1000);
        return;
      }
      const ids = body.results.map((r: { id: string }) => r.id);
      saw(ids);
      // Re-arm after every answer already received is timed: one process stands in for thousands
      // of devices here, and building a request (~0.1 ms) would delay the timing of the next answer.
      setImmediate(longpoll, i, body.last_seq);
    });
  }).on('error', (err: NodeJS.ErrnoException) => lose(`longpoll error ${err.code ?? err.message}`));
}

function continuous(i: number): void {
  http.get(query(i, 'continuous', spec.since), { agent: false, headers: headers(i) }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) saw([JSON.parse(line).id]);
      }
    });
    res.on('end', () => lose(`continuous ended (${res.statusCode})`));
  }).on('error', (err: NodeJS.ErrnoException) => lose(`continuous error ${err.code ?? err.message}`));
}

function websocket(i: number): void {
  const ws = new WebSocket(`${spec.url.replace(/^http/, 'ws')}/_changes?feed=websocket`, { perMessageDeflate: false, headers: headers(i) });
  ws.on('open', () => {
    ws.send(JSON.stringify({ since: spec.since, ...(spec.filter ? { filter: 'sync_gateway/bychannel', channels: `fan-${i % spec.channels}` } : {}) }));
  });
  ws.on('message', (data) => {
    const text = data.toString();
    if (!text) return;
    const entries = JSON.parse(text) as { id: string }[];
    if (entries.length) saw(entries.map((e) => e.id));
  });
  ws.on('error', (err: NodeJS.ErrnoException) => lose(`websocket error ${err.code ?? err.message}`));
  ws.on('close', (code) => lose(`websocket closed ${code}`));
}

for (let i = spec.from; i < spec.from + spec.count; i++) {
  const kind = spec.kinds[i % spec.kinds.length];
  if (kind === 'longpoll') longpoll(i, spec.since);
  else if (kind === 'continuous') continuous(i);
  else websocket(i);
  // Open sockets in small bursts, as clients arrive: a backlog of thousands of SYNs at once overflows.
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
}
process.send!({ open: true });
process.on('message', (m: { report?: string }) => {
  if (m.report === undefined) return;
  process.send!({ doc: m.report, times: seen.get(m.report) ?? [], lost });
});
process.on('disconnect', () => process.exit(0));

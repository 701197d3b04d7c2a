/** Every database's state and counters, and live rates charted from `/_expvar`. */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { dbPath, get, message } from '../api.ts';
import { ErrorLine } from '../ui.tsx';

interface DbInfo { db_name: string; state: string; doc_count: number; update_seq: number }
interface Expvar {
  memstats: Record<string, number>;
  syncgateway: { global: { resource_utilization: Record<string, number> }; per_db: Record<string, { database: Record<string, number> }> };
}

/** Live `_changes` feeds open now on one database (longpoll, continuous, WebSocket). */
function feedsOf(x: Expvar | undefined, db: string): number | undefined {
  const d = x?.syncgateway.per_db[db]?.database;
  return d && (d.num_changes_feeds_longpoll ?? 0) + (d.num_changes_feeds_continuous ?? 0) + (d.num_changes_feeds_websocket ?? 0);
}

const POLL_MS = 3000;
const POINTS = 100;

function totals(x: Expvar) {
  let writes = 0, reads = 0, feeds = 0;
  for (const d of Object.values(x.syncgateway.per_db)) {
    writes += d.database.num_doc_writes ?? 0;
    reads += d.database.num_doc_reads_rest ?? 0;
    feeds += (d.database.num_changes_feeds_longpoll ?? 0) + (d.database.num_changes_feeds_continuous ?? 0) + (d.database.num_changes_feeds_websocket ?? 0);
  }
  return { writes, reads, feeds, rss: x.memstats.rss ?? x.memstats.Sys ?? 0 };
}

/** Document writes/s and reads/s (from counter deltas) and open feeds, the last few minutes. */
function RateChart() {
  const box = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string>();
  useEffect(() => {
    const data: [number[], number[], number[], number[]] = [[], [], [], []];
    let prev: { t: number; writes: number; reads: number } | undefined;
    const width = () => Math.max(280, (box.current?.clientWidth ?? 600) - 8);
    const plot = new uPlot({
      width: width(), height: 220, title: 'Document writes and reads per second',
      series: [{}, { label: 'writes/s', stroke: '#d9480f', width: 2 }, { label: 'reads/s', stroke: '#1c7ed6', width: 2 }, { label: 'open feeds', stroke: '#2f9e44', width: 1, dash: [4, 4] }],
      axes: [{ stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } }, { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } }],
    }, data, box.current!);
    const poll = async () => {
      try {
        const x = await get<Expvar>('/_expvar');
        const t = Date.now() / 1000;
        const now = totals(x);
        if (prev) {
          const dt = Math.max(0.001, t - prev.t);
          data[0].push(t); data[1].push((now.writes - prev.writes) / dt); data[2].push((now.reads - prev.reads) / dt); data[3].push(now.feeds);
          if (data[0].length > POINTS) data.forEach((s) => s.shift());
          plot.setData(data);
          // How many points are drawn, for tests and for the curious.
          box.current?.setAttribute('data-points', String(data[0].length));
        }
        prev = { t, writes: now.writes, reads: now.reads };
        setError(undefined);
      } catch (err) { setError(message(err)); }
    };
    poll();
    const timer = setInterval(poll, POLL_MS);
    const onResize = () => plot.setSize({ width: width(), height: 220 });
    addEventListener('resize', onResize);
    return () => { clearInterval(timer); removeEventListener('resize', onResize); plot.destroy(); };
  }, []);
  return (
    <section aria-label="Live rates">
      <div ref={box} class="chart" role="img" aria-label="Chart of document writes and reads per second, refreshed every 3 seconds" />
      <ErrorLine error={error} />
    </section>
  );
}

export function Overview() {
  const [dbs, setDbs] = useState<DbInfo[]>();
  const [expvar, setExpvar] = useState<Expvar>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const load = async () => {
      try {
        const names = await get<string[]>('/_all_dbs');
        setDbs(await Promise.all(names.map((n) => get<DbInfo>(`${dbPath(n)}/`))));
        setExpvar(await get<Expvar>('/_expvar'));
        setError(undefined);
      } catch (err) { setError(message(err)); }
    };
    load();
    const timer = setInterval(load, POLL_MS * 2);
    return () => clearInterval(timer);
  }, []);
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <ErrorLine error={error} />
      <table class="grid" aria-label="Databases">
        <thead><tr><th scope="col">Database</th><th scope="col">State</th><th scope="col">Documents</th><th scope="col">Last sequence</th><th scope="col">Open feeds</th><th scope="col">Open</th></tr></thead>
        <tbody>
          {dbs?.map((d) => (
            <tr key={d.db_name}>
              <td>{d.db_name}</td>
              <td><span class={`state state-${d.state.toLowerCase()}`}>{d.state}</span></td>
              <td class="num">{d.doc_count}</td>
              <td class="num">{d.update_seq}</td>
              <td class="num">{feedsOf(expvar, d.db_name) ?? '…'}</td>
              <td><a href={`#/db/${encodeURIComponent(d.db_name)}/docs`}>Documents</a></td>
            </tr>
          ))}
        </tbody>
      </table>
      {dbs?.length === 0 && <p>No databases.</p>}
      {expvar && (
        <p class="muted" data-testid="process">
          Process memory (RSS): {(totals(expvar).rss / 1048576).toFixed(0)} MiB;
          WebSocket connections (BLIP replications and WebSocket feeds): {expvar.syncgateway.global.resource_utilization.num_websocket_connections ?? 0}
        </p>
      )}
      <RateChart />
    </>
  );
}

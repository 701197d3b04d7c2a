/**
 * Every database's state and counters (BLIP replications included), and live charts drawn from
 * `/_expvar`: rates from counter deltas, and the p95 latency of the requests between two samples
 * from the request-duration histogram (console/quantile.ts).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { dbPath, get, message } from '../api.ts';
import { type Latency, quantileBetween } from '../quantile.ts';
import { ErrorLine } from '../ui.tsx';

interface DbInfo { db_name: string; state: string; doc_count: number; update_seq: number }
interface Expvar {
  memstats: Record<string, number>;
  syncgateway: { global: { resource_utilization: Record<string, number>; http_request_duration?: Latency }; per_db: Record<string, { database: Record<string, number> }> };
}
interface Sample { t: number; x: Expvar }

const POLL_MS = 3000;
const POINTS = 100;

/** Live `_changes` feeds open now on one database (longpoll, continuous, WebSocket). */
function feedsOf(x: Expvar | undefined, db: string): number | undefined {
  const d = x?.syncgateway.per_db[db]?.database;
  return d && (d.num_changes_feeds_longpoll ?? 0) + (d.num_changes_feeds_continuous ?? 0) + (d.num_changes_feeds_websocket ?? 0);
}

function sumDbs(x: Expvar, key: string): number {
  return Object.values(x.syncgateway.per_db).reduce((n, d) => n + (d.database[key] ?? 0), 0);
}

const ru = (key: string) => (x: Expvar) => x.syncgateway.global.resource_utilization[key] ?? 0;

/**
 * A series: a counter charted as its rate per second, a gauge charted as it is, or (`between`) a
 * value computed from two consecutive samples; null leaves a gap.
 */
interface Series {
  label: string; stroke: string; value: (x: Expvar) => number; rate: boolean; dash?: number[];
  between?: (prev: Expvar, cur: Expvar) => number | null;
}

function p95ms(prev: Expvar, cur: Expvar): number | null {
  const a = prev.syncgateway.global.http_request_duration;
  const b = cur.syncgateway.global.http_request_duration;
  const q = a && b ? quantileBetween(a, b, 0.95) : undefined;
  return q === undefined ? null : q * 1000;
}

const CHARTS: { title: string; series: Series[] }[] = [
  {
    title: 'HTTP responses per second, by status',
    series: [
      { label: '2xx/s', stroke: '#2f9e44', value: ru('num_http_responses_2xx'), rate: true },
      { label: '3xx/s', stroke: '#1c7ed6', value: ru('num_http_responses_3xx'), rate: true },
      { label: '4xx/s', stroke: '#f08c00', value: ru('num_http_responses_4xx'), rate: true },
      { label: '5xx/s', stroke: '#e03131', value: ru('num_http_responses_5xx'), rate: true },
    ],
  },
  {
    title: 'Document writes and reads per second; open feeds',
    series: [
      { label: 'writes/s', stroke: '#d9480f', value: (x) => sumDbs(x, 'num_doc_writes'), rate: true },
      { label: 'reads/s', stroke: '#1c7ed6', value: (x) => sumDbs(x, 'num_doc_reads_rest'), rate: true },
      { label: 'open feeds', stroke: '#2f9e44', value: (x) => sumDbs(x, 'num_changes_feeds_longpoll') + sumDbs(x, 'num_changes_feeds_continuous') + sumDbs(x, 'num_changes_feeds_websocket'), rate: false, dash: [4, 4] },
    ],
  },
  {
    title: 'p95 request latency (ms), live feeds excluded',
    series: [{ label: 'p95 ms', stroke: '#c2255c', value: () => 0, rate: false, between: p95ms }],
  },
  {
    title: 'Process memory (MiB)',
    series: [
      { label: 'resident', stroke: '#7048e8', value: (x) => (x.memstats.rss ?? 0) / 1048576, rate: false },
      { label: 'JS heap used', stroke: '#1098ad', value: (x) => (x.memstats.heapUsed ?? 0) / 1048576, rate: false },
    ],
  },
];

/** One chart fed by the page's samples: the last few minutes, redrawn on each new sample. */
function LiveChart({ title, series, sample }: { title: string; series: Series[]; sample?: Sample }) {
  const box = useRef<HTMLDivElement>(null);
  const state = useRef<{ plot: uPlot; data: number[][]; prev?: Sample }>();
  useEffect(() => {
    const width = () => Math.max(280, (box.current?.clientWidth ?? 600) - 8);
    const data: number[][] = [[], ...series.map(() => [])];
    const axis = { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } };
    const plot = new uPlot({
      width: width(), height: 200, title,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, ...(s.dash ? { dash: s.dash } : {}) }))],
      axes: [axis, axis],
    }, data as uPlot.AlignedData, box.current!);
    state.current = { plot, data };
    const onResize = () => plot.setSize({ width: width(), height: 200 });
    addEventListener('resize', onResize);
    return () => { removeEventListener('resize', onResize); plot.destroy(); };
  }, []);
  useEffect(() => {
    const st = state.current;
    if (!st || !sample) return;
    const prev = st.prev;
    st.prev = sample;
    if (!prev) return;
    const dt = Math.max(0.001, sample.t - prev.t);
    st.data[0].push(sample.t);
    series.forEach((s, i) => st.data[i + 1].push(s.between ? s.between(prev.x, sample.x) as number
      : s.rate ? Math.max(0, (s.value(sample.x) - s.value(prev.x)) / dt) : s.value(sample.x)));
    if (st.data[0].length > POINTS) st.data.forEach((d) => d.shift());
    st.plot.setData(st.data as uPlot.AlignedData);
    // How many points are drawn, for tests and for the curious.
    box.current?.setAttribute('data-points', String(st.data[0].length));
    box.current?.setAttribute('data-last', JSON.stringify(Object.fromEntries(series.map((s, i) => [s.label, st.data[i + 1][st.data[0].length - 1]]))));
  }, [sample]);
  return <div ref={box} class="chart" role="img" aria-label={`Chart: ${title}, refreshed every ${POLL_MS / 1000} seconds`} />;
}

export function Overview() {
  const [dbs, setDbs] = useState<DbInfo[]>();
  const [sample, setSample] = useState<Sample>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const load = async () => {
      try {
        const x = await get<Expvar>('/_expvar');
        setSample({ t: Date.now() / 1000, x });
        const names = await get<string[]>('/_all_dbs');
        setDbs(await Promise.all(names.map((n) => get<DbInfo>(`${dbPath(n)}/`))));
        setError(undefined);
      } catch (err) { setError(message(err)); }
    };
    load();
    const timer = setInterval(load, POLL_MS);
    return () => clearInterval(timer);
  }, []);
  const x = sample?.x;
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <ErrorLine error={error} />
      <table class="grid" aria-label="Databases">
        <thead><tr><th scope="col">Database</th><th scope="col">State</th><th scope="col">Documents</th><th scope="col">Last sequence</th><th scope="col">Open feeds</th><th scope="col">BLIP connections</th><th scope="col">Open</th></tr></thead>
        <tbody>
          {dbs?.map((d) => (
            <tr key={d.db_name}>
              <td>{d.db_name}</td>
              <td><span class={`state state-${d.state.toLowerCase()}`}>{d.state}</span></td>
              <td class="num">{d.doc_count}</td>
              <td class="num">{d.update_seq}</td>
              <td class="num">{feedsOf(x, d.db_name) ?? '…'}</td>
              <td class="num">{x?.syncgateway.per_db[d.db_name]?.database.num_blip_connections ?? '…'}</td>
              <td><a href={`#/db/${encodeURIComponent(d.db_name)}/docs`}>Documents</a></td>
            </tr>
          ))}
        </tbody>
      </table>
      {dbs?.length === 0 && <p>No databases.</p>}
      {x && (
        <p class="muted" data-testid="process">
          Process memory (RSS): {((x.memstats.rss ?? x.memstats.Sys ?? 0) / 1048576).toFixed(0)} MiB;
          WebSocket connections (BLIP replications and WebSocket feeds): {x.syncgateway.global.resource_utilization.num_websocket_connections ?? 0}
        </p>
      )}
      <section aria-label="Live rates" class="charts">
        {CHARTS.map((c) => <LiveChart key={c.title} title={c.title} series={c.series} sample={sample} />)}
      </section>
    </>
  );
}

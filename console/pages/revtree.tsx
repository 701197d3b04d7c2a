/**
 * A document's revision tree from `_raw`'s `_sync.history` (revs + parent indexes) as an SVG:
 * one column per generation, one row per branch; the winner is outlined, other live leaves
 * (conflicts) are marked, tombstones dashed. Labels are SVG text nodes: a revision id is never HTML.
 */
import type { RawHistory } from '../api.ts';

const COL = 120, ROW = 44, R = 9, PAD = 24;
/** Room left of the first node for its centred label. */
const LEFT = 48;

export function RevTree({ history, winner, deleted }: { history: RawHistory; winner: string; deleted: Set<string> }) {
  const n = history.revs.length;
  const children: number[][] = history.revs.map(() => []);
  history.parents.forEach((p, i) => { if (p >= 0 && p < n) children[p].push(i); });
  const gen = (i: number) => parseInt(history.revs[i], 10) || 1;
  // Rows: depth-first, each extra child opens a new row below; leaves are nodes without children.
  const row = new Array<number>(n).fill(0);
  let rows = 0;
  const place = (i: number, r: number) => {
    row[i] = r;
    children[i].sort((a, b) => (history.revs[b] === winner ? 1 : 0) - (history.revs[a] === winner ? 1 : 0));
    children[i].forEach((c, k) => place(c, k === 0 ? r : ++rows));
  };
  history.parents.forEach((p, i) => { if (p < 0 || p >= n) { place(i, rows); rows++; } });
  const minGen = Math.min(...history.revs.map((_, i) => gen(i)));
  const x = (i: number) => LEFT + (gen(i) - minGen) * COL;
  const y = (i: number) => PAD + row[i] * ROW;
  const leaves = history.revs.map((_, i) => i).filter((i) => children[i].length === 0);
  const liveLeaves = leaves.filter((i) => !deleted.has(history.revs[i]));
  const width = LEFT + PAD + (Math.max(...history.revs.map((_, i) => gen(i))) - minGen) * COL + 60;
  const height = PAD * 2 + Math.max(0, rows - 1) * ROW + 10;
  const conflicts = liveLeaves.length > 1;
  return (
    <figure class="revtree">
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img"
        aria-label={`Revision tree: ${n} revisions, ${leaves.length} leaves${conflicts ? `, in conflict (${liveLeaves.length} live leaves)` : ''}`}>
        {history.parents.map((p, i) => p >= 0 && p < n && (
          <line key={`e${i}`} x1={x(p)} y1={y(p)} x2={x(i)} y2={y(i)} class="edge" />
        ))}
        {history.revs.map((rev, i) => {
          const isLeaf = children[i].length === 0;
          const cls = ['node', rev === winner ? 'winner' : '', deleted.has(rev) ? 'deleted' : '', isLeaf && !deleted.has(rev) && rev !== winner ? 'conflict' : ''].join(' ');
          return (
            <g key={rev} class={cls} data-rev={rev}>
              <circle cx={x(i)} cy={y(i)} r={R} />
              <text x={x(i)} y={y(i) - R - 4} text-anchor="middle">{rev.length > 14 ? `${rev.slice(0, 12)}…` : rev}</text>
              <title>{`${rev}${rev === winner ? ' (current)' : ''}${deleted.has(rev) ? ' (deleted)' : ''}${isLeaf && rev !== winner && !deleted.has(rev) ? ' (conflict)' : ''}`}</title>
            </g>
          );
        })}
      </svg>
      <figcaption>
        {conflicts ? <strong class="conflict-note">Conflict: {liveLeaves.length} live leaves ({liveLeaves.map((i) => history.revs[i]).join(', ')}); current is {winner}.</strong>
          : <span>No conflict; current is {winner}.</span>}
        {' '}Filled outline: current revision; orange: conflicting leaf; dashed: deleted.
      </figcaption>
    </figure>
  );
}

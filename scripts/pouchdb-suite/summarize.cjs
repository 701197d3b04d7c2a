#!/usr/bin/env node
'use strict';
// Summaries for run.sh's result folders.
//   summarize.cjs --line <out> <file>                 one line for one test file
//   summarize.cjs --summary <out> <target> [baseline] the whole run; for syncgate, the diff against the baseline
//   summarize.cjs --make-baseline <out>               baseline-pass.txt + baseline-times.json from a pouchdb-server run
//   summarize.cjs --diff <out> [baseline]             only the regressions of a finished run
// A test's key is "<file>\t<full title>"; a key that occurs several times passes only if every occurrence passed.
const fs = require('fs');
const path = require('path');

const HERE = __dirname;

function readRows(out, f) {
  const p = path.join(out, `${f}.jsonl`);
  if (!fs.existsSync(p)) return { rows: [], ended: false };
  const rows = [];
  let ended = false;
  for (const line of fs.readFileSync(p, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.end) { ended = true; continue; }
    r.file = `test.${f}.js`;
    rows.push(r);
  }
  return { rows, ended };
}

function filesOf(out) {
  const p = path.join(out, 'files.txt');
  if (!fs.existsSync(p)) return [];
  return fs.readFileSync(p, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const [name, rc, secs] = l.split(' ');
    return { name, rc: Number(rc), secs: Number(secs) };
  });
}

function counts(rows) {
  const c = { passed: 0, failed: 0, hookFailed: 0, pending: 0, timeouts: 0 };
  for (const r of rows) {
    if (r.state === 'passed') c.passed++;
    else if (r.state === 'pending') c.pending++;
    else if (r.state === 'failed') {
      if (r.type === 'hook') c.hookFailed++; else c.failed++;
      if (/Timeout of \d+ms exceeded/.test(r.err?.message ?? '')) c.timeouts++;
    }
  }
  return c;
}

function passKeys(rows) {
  const state = new Map();
  for (const r of rows) {
    if (r.type === 'hook') continue;
    const k = `${r.file}\t${r.title}`;
    const ok = r.state === 'passed';
    state.set(k, state.has(k) ? state.get(k) && ok : ok);
  }
  return state;
}

function allRows(out) {
  const files = filesOf(out);
  const per = files.map((f) => ({ ...f, ...readRows(out, f.name) }));
  return { files: per, rows: per.flatMap((f) => f.rows) };
}

function fmtCounts(c) {
  return `pass ${String(c.passed).padStart(4)}  fail ${String(c.failed + c.hookFailed).padStart(4)}` +
    (c.hookFailed ? ` (${c.hookFailed} hooks)` : '') + (c.timeouts ? `  timeouts ${c.timeouts}` : '') +
    (c.pending ? `  pending ${c.pending}` : '');
}

function readBaseline(baseline) {
  if (!baseline || !fs.existsSync(baseline)) return null;
  return fs.readFileSync(baseline, 'utf8').split('\n').filter(Boolean);
}

function diff(out, baseline) {
  const base = readBaseline(baseline);
  if (!base) return null;
  const { files, rows } = allRows(out);
  const ran = new Set(files.map((f) => `test.${f.name}.js`));
  const now = passKeys(rows);
  const failed = [], missing = [];
  const byKey = new Map();
  for (const r of rows) if (r.type !== 'hook' && r.state === 'failed') byKey.set(`${r.file}\t${r.title}`, r);
  for (const k of base) {
    if (!ran.has(k.split('\t')[0])) continue;
    if (!now.has(k)) missing.push(k);
    else if (!now.get(k)) failed.push(k);
  }
  const newPasses = [...now].filter(([k, ok]) => ok && !base.includes(k)).map(([k]) => k);
  return { failed, missing, newPasses, byKey };
}

function writeDiff(out, d) {
  const lines = [];
  lines.push(`# tests passing on pouchdb-server (baseline) that FAIL here: ${d.failed.length}`);
  for (const k of d.failed) {
    const r = d.byKey.get(k);
    lines.push(`${k}\t${(r?.err?.message ?? '').split('\n')[0].replace(/http:\/\/127\.0\.0\.1:\d+/g, 'HOST').slice(0, 200)}`);
  }
  lines.push(`# tests passing on pouchdb-server that did NOT RUN here (a hook failed, or the file crashed / timed out): ${d.missing.length}`);
  lines.push(...d.missing);
  lines.push(`# tests passing here but not in the baseline: ${d.newPasses.length}`);
  lines.push(...d.newPasses);
  fs.writeFileSync(path.join(out, 'regressions.txt'), lines.join('\n') + '\n');
  return lines;
}

const [mode, out, ...rest] = process.argv.slice(2);
if (mode === '--line') {
  const f = rest[0];
  const { rows, ended } = readRows(out, f);
  const file = filesOf(out).find((x) => x.name === f);
  console.log(`${fmtCounts(counts(rows))}  ${file ? file.secs.toFixed(1) : '?'} s` +
    (ended ? '' : '  (mocha did not finish: crashed or killed, see log)') + (file && file.rc > 1 && !ended ? ` rc=${file.rc}` : ''));
} else if (mode === '--summary') {
  const [target, baseline] = rest;
  const { files, rows } = allRows(out);
  const times = fs.existsSync(path.join(HERE, 'baseline-times.json')) ? JSON.parse(fs.readFileSync(path.join(HERE, 'baseline-times.json'), 'utf8')) : {};
  const wall = fs.existsSync(path.join(out, 'wall.txt')) ? Number(fs.readFileSync(path.join(out, 'wall.txt'), 'utf8')) : NaN;
  const lines = [`${target}: ${out}`, ''];
  for (const f of files) {
    const b = times[f.name];
    lines.push(`${('test.' + f.name + '.js').padEnd(30)} ${fmtCounts(counts(f.rows))}  ${f.secs.toFixed(1).padStart(7)} s` +
      (b && target !== 'pouchdb-server' ? `  (pouchdb-server ${b.toFixed(1)} s, x${(f.secs / b).toFixed(1)})` : '') + (f.ended ? '' : '  NOT FINISHED'));
  }
  const total = counts(rows);
  const baseWall = files.reduce((s, f) => s + (times[f.name] ?? NaN), 0);
  lines.push('', `TOTAL ${fmtCounts(total)}   wall ${wall.toFixed(1)} s` +
    (target !== 'pouchdb-server' && baseWall ? ` (pouchdb-server ${baseWall.toFixed(1)} s for these files, x${(wall / baseWall).toFixed(1)})` : ''));
  const lostMs = rows.filter((r) => /Timeout of \d+ms exceeded/.test(r.err?.message ?? '')).reduce((s, r) => s + (r.duration ?? 0), 0);
  if (lostMs) lines.push(`      of which ${(lostMs / 1000).toFixed(0)} s spent in tests that timed out`);
  const slow = rows.filter((r) => r.type !== 'hook' && (r.duration ?? 0) >= 2000 || /Timeout of/.test(r.err?.message ?? ''))
    .sort((a, b) => (b.duration ?? 0) - (a.duration ?? 0)).slice(0, 25);
  if (slow.length) {
    lines.push('', 'slowest tests (>= 2 s, or timed out):');
    for (const r of slow) lines.push(`  ${String(r.duration ?? '?').padStart(6)} ms ${r.state.padEnd(6)} ${r.file} ${r.title}`);
  }
  fs.writeFileSync(path.join(out, 'pass.txt'), [...passKeys(rows)].filter(([, ok]) => ok).map(([k]) => k).sort().join('\n') + '\n');
  let diffLines = [];
  if (target === 'syncgate') {
    const d = diff(out, baseline);
    if (d) {
      diffLines = writeDiff(out, d);
      lines.push('', `vs baseline (${baseline}): ${d.failed.length} fail here, ${d.missing.length} did not run here, ` +
        `${d.newPasses.length} pass only here; list in ${path.join(out, 'regressions.txt')}`);
    } else {
      lines.push('', `no baseline at ${baseline}: run "run.sh pouchdb-server" then "node summarize.cjs --make-baseline <its results dir>"`);
    }
  }
  fs.writeFileSync(path.join(out, 'summary.txt'), lines.join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify({ target, wall, total, files: files.map((f) => ({ name: f.name, secs: f.secs, rc: f.rc, finished: f.ended, ...counts(f.rows) })) }, null, 1));
  // The long list first, the summary last (what stays on screen).
  console.log((diffLines.length ? diffLines.join('\n') + '\n\n' : '') + lines.join('\n'));
} else if (mode === '--make-baseline') {
  const { files, rows } = allRows(out);
  const keys = [...passKeys(rows)].filter(([, ok]) => ok).map(([k]) => k).sort();
  fs.writeFileSync(path.join(HERE, 'baseline-pass.txt'), keys.join('\n') + '\n');
  fs.writeFileSync(path.join(HERE, 'baseline-times.json'), JSON.stringify(Object.fromEntries(files.map((f) => [f.name, f.secs])), null, 1) + '\n');
  console.log(`baseline-pass.txt: ${keys.length} tests; baseline-times.json: ${files.length} files (from ${out})`);
} else if (mode === '--diff') {
  const d = diff(out, rest[0] ?? path.join(HERE, 'baseline-pass.txt'));
  if (!d) { console.error('no baseline'); process.exitCode = 2; } else console.log(writeDiff(out, d).join('\n'));
} else {
  console.error('usage: summarize.cjs --line|--summary|--make-baseline|--diff <results dir> ...');
  process.exitCode = 2;
}

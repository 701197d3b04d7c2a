#!/usr/bin/env node
'use strict';
// Groups the regressions of a run (tests passing in baseline-pass.txt that fail or do not run here)
// by a likely cause, from the error message and the test's title. The rules are heuristics written
// from reading the failing tests (see README.md); "other" is what no rule explains.
//   node categorize.cjs <results dir> [--full]     prints groups (titles with --full) and writes <dir>/categories.txt
const fs = require('fs');
const path = require('path');

const out = process.argv[2];
const full = process.argv.includes('--full');
const base = fs.readFileSync(path.join(__dirname, 'baseline-pass.txt'), 'utf8').split('\n').filter(Boolean);
const rows = [];
for (const f of fs.readdirSync(out).filter((x) => x.endsWith('.jsonl'))) {
  for (const line of fs.readFileSync(path.join(out, f), 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.end || r.type === 'hook') continue;
    r.key = `test.${f.replace(/\.jsonl$/, '')}.js\t${r.title}`;
    rows.push(r);
  }
}
const ran = new Set(rows.map((r) => r.key.split('\t')[0]));
const byKey = new Map();
for (const r of rows) {
  const prev = byKey.get(r.key);
  if (!prev || (prev.state === 'passed' && r.state !== 'passed')) byKey.set(r.key, r);
}

// [category, test(message, title)]; first match wins, so the specific rules come first.
const RULES = [
  ['DID NOT RUN: an earlier hook of its describe failed (mocha skips the rest) or the file crashed / was killed',
    (m) => m.startsWith('(did not run')],
  ['PUT /{db}/ answers 201 with an empty body (PouchDB parses JSON: "invalid json response body ... Unexpected end of JSON input") [fixed in main 126d413]',
    (m) => /invalid json response body.*Unexpected end of JSON input/.test(m)],
  ['OUT OF SCOPE: design docs - views, filter functions, _view changes, validate_doc_update, GET/PUT /_design/ (README: deliberate)',
    (m, t) => /Unknown filter|unknown URL/.test(m) ||
      /ddoc|design doc|views|view |_view|filter not present|`view`|`filters`|throw inside a filter|Changes limit and filter|shorthand function name|validate_doc_update|#2268|#3270|#2935|Basic views|Concurrent queries|Changes filter$|_conflicts key|doc count after multiple replications/.test(t)],
  ['FIXABLE: inline attachments (attachments=true in GET/_all_docs/_changes) carry "length"; CouchDB omits length (and stub) when data is inlined',
    (m, t) => /expected \d+ to not exist/.test(m) && /atts|Attachments replicate/.test(t) || /#2771 allDocs|#3074 .*changes\(\)/.test(t)],
  ['FIXABLE?: stub naming an attachment the parent revision lacks: CouchDB 412 missing_stub; Syncgate 400 "Unknown attachment digest", or accepts when the digest is known from another doc',
    (m, t) => /issue 2803|#8456/.test(t)],
  ['FIXABLE: attachment names starting with "_" are accepted; CouchDB answers 400 bad_request',
    (m, t) => /3357 Attachment names/.test(t)],
  ['FIXABLE: open_revs with a malformed rev ("keys") is reported {missing}; CouchDB answers 400 bad_request',
    (m, t) => /open_revs with wrong params/.test(t)],
  ['BORDERLINE: _replication_* fields refused (400); they are CouchDB special members (PouchDB reserves them too)',
    (m, t) => /Replication fields \(#2442\)/.test(t)],
  ['DELIBERATE: bodies of non-leaf revisions (and their attachments) are not kept: GET ?rev=<old> is 404',
    (m, t) => /Retrieve old revision|Get revisions of removed doc|opts.revs=true with rev other than winning|getAttachment with (specific rev|diff revs)|#2818 - revisions keep attachments/.test(t)],
  ['DELIBERATE: a bad doc in _bulk_docs fails its own row (CouchDB fails the whole request with 400): _id "_invalid", new_edits=false without _rev, "_zing" members',
    (m, t) => /invalid doc id|No _rev and new_edits=false|Testing with invalid docs|Doc validation/.test(t)],
  ['DELIBERATE: revs_limit 100 (CouchDB 1000)', (m, t) => /revs_limit/.test(t)],
  ['time-out (5 s): the test waited for an event or callback that never came (often an error thrown inside a callback)',
    (m) => /Timeout of \d+ms exceeded/.test(m)],
  ['other', () => true],
];

const groups = new Map();
let failed = 0, missing = 0;
for (const k of base) {
  if (!ran.has(k.split('\t')[0])) continue;
  const r = byKey.get(k);
  let msg;
  if (!r) { missing++; msg = '(did not run: an earlier hook failed or the file crashed)'; }
  else if (r.state === 'passed') continue;
  else { failed++; msg = r.err?.message ?? ''; }
  const title = k.split('\t')[1];
  const [cat] = RULES.find(([, test]) => test(msg, title));
  if (!groups.has(cat)) groups.set(cat, []);
  groups.get(cat).push({ key: k, msg: msg.split('\n')[0].replace(/http:\/\/127\.0\.0\.1:\d+/g, 'HOST').slice(0, 160), duration: r?.duration });
}
const lines = [`${out}: ${failed} fail here, ${missing} did not run (of ${base.length} passing on pouchdb-server)`];
for (const [cat, list] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
  const lost = list.filter((x) => /Timeout of/.test(x.msg)).length;
  lines.push('', `## ${list.length}  ${cat}` + (lost ? `  [${lost} time-outs]` : ''));
  const msgs = new Map();
  for (const x of list) msgs.set(x.msg, (msgs.get(x.msg) ?? 0) + 1);
  for (const [m, n] of [...msgs].sort((a, b) => b[1] - a[1]).slice(0, 8)) lines.push(`   ${String(n).padStart(4)} x ${m}`);
  if (full) for (const x of list) lines.push(`   - ${x.key.replace('\t', ' :: ')}  [${x.duration ?? '-'} ms] ${x.msg.slice(0, 100)}`);
}
fs.writeFileSync(path.join(out, 'categories.txt'), lines.join('\n') + '\n');
console.log(lines.join('\n'));

#!/usr/bin/env bash
# Runs PouchDB 9.0.0's own node integration tests (mocha over tests/integration/test.<name>.js,
# local adapter "memory", remote = COUCH_HOST) against a freshly started server.
#
#   run.sh pouchdb-server [files...]
#   run.sh syncgate [checkout[@ref]] [files...]
#
#   POUCHDB_TREE  PouchDB's source at 194c0754b (the 9.0.0 release), built: npm install --ignore-scripts;
#                 BUILD_NODE=1 node bin/build-modules.js. Keep it outside this repository (it is theirs).
#   checkout  a Syncgate working tree (default: this repository), run as it is on disk (uncommitted
#             changes included); "checkout@ref" instead runs `git archive ref` of it, exported to a
#             temp dir (node_modules symlinked), so the tree can move while the suite runs.
#   files     test names (replication, test.sync.js, ...); default: the 15 files below.
#
# Environment: TIMEOUT (mocha per-test timeout, default 5000 as their bin/test-node.sh),
#   SEED (Math.random seed, default 1), FILE_TIMEOUT (seconds per file before it is killed,
#   default 3600), BASELINE (pass list to diff against, default ./baseline-pass.txt).
# Results: results/<target>-<UTC timestamp>/ : <file>.jsonl (one line per test), <file>.log (spec
#   output), server.log, summary.txt / summary.json, and for syncgate regressions.txt (tests that
#   pass on pouchdb-server but not here).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
POUCH="${POUCHDB_TREE:?set POUCHDB_TREE to a built PouchDB 9.0.0 source tree (see the top of this file)}"
DEFAULT_FILES=(replication sync changes attachments conflicts revs_diff bulk_get bulk_docs basics all_docs get replication_events retry design_docs http)
: "${TIMEOUT:=5000}"
: "${SEED:=1}"
: "${FILE_TIMEOUT:=3600}"
: "${BASELINE:=$HERE/baseline-pass.txt}"

usage() { sed -n 2,18p "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
TARGET="$1"; shift
CHECKOUT="$REPO"
case "$TARGET" in
  syncgate)
    if [ $# -ge 1 ] && { [ -d "${1%@*}" ] || [[ "$1" == */* ]]; }; then CHECKOUT="$1"; shift; fi ;;
  pouchdb-server) ;;
  *) usage ;;
esac
FILES=("$@"); [ ${#FILES[@]} -gt 0 ] || FILES=("${DEFAULT_FILES[@]}")
for i in "${!FILES[@]}"; do f="${FILES[$i]}"; f="${f#test.}"; FILES[$i]="${f%.js}"; done
for f in "${FILES[@]}"; do [ -f "$POUCH/tests/integration/test.$f.js" ] || { echo "no such test file: test.$f.js" >&2; exit 2; }; done
[ -f "$POUCH/packages/node_modules/pouchdb/lib/index.js" ] || { echo "PouchDB is not built in $POUCH (see the top of run.sh: npm install --ignore-scripts; BUILD_NODE=1 node bin/build-modules.js)" >&2; exit 2; }

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${RESULTS:-$REPO/.tmp/pouchdb-suite}/$TARGET-$STAMP"
mkdir -p "$OUT"
TMP="$(mktemp -d /tmp/pouchdb-suite.XXXXXX)"
SERVER_PID=""; DOWN_PID=""; MOCHA_PID=""

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

cleanup() {
  # the mocha subshell's child `timeout` leads its own process group: stop that group
  [ -n "$MOCHA_PID" ] && { pkill -TERM -P "$MOCHA_PID" 2>/dev/null; kill "$MOCHA_PID" 2>/dev/null; }
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ -n "$DOWN_PID" ] && kill "$DOWN_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the server under test ------------------------------------------------------------------
SG_DIR=""
if [ "$TARGET" = syncgate ]; then
  if [[ "$CHECKOUT" == *@* ]]; then
    REPO="${CHECKOUT%@*}"; REF="${CHECKOUT##*@}"
    SG_DIR="$TMP/syncgate"; mkdir -p "$SG_DIR"
    git -C "$REPO" archive "$REF" | tar -x -C "$SG_DIR" || { echo "git archive $REF of $REPO failed" >&2; exit 2; }
    ln -s "$(cd "$REPO" && pwd)/node_modules" "$SG_DIR/node_modules"
    echo "syncgate: $REPO at $REF = $(git -C "$REPO" rev-parse "$REF")" | tee "$OUT/target.txt"
  else
    SG_DIR="$(cd "$CHECKOUT" && pwd)"
    if git -C "$SG_DIR" rev-parse HEAD >/dev/null 2>&1; then
      { echo "syncgate: working tree $SG_DIR at $(git -C "$SG_DIR" rev-parse HEAD) ($(git -C "$SG_DIR" rev-parse --abbrev-ref HEAD))";
        echo "uncommitted:"; git -C "$SG_DIR" status --short; } | tee "$OUT/target.txt"
    else
      echo "syncgate: $SG_DIR (not a git checkout)" | tee "$OUT/target.txt"
    fi
  fi
fi

start_server() {
  local log="$OUT/server.log"
  ADMIN_PORT="$(free_port)"
  if [ "$TARGET" = syncgate ]; then
    local pub met; pub="$(free_port)"; met="$(free_port)"
    # No databases: the tests create theirs with PUT /{db}/ on the admin port, which opens them on
    # the default server `walrus:` (in memory): nothing is written to disk.
    cat > "$TMP/syncgate.json" <<EOF
{
  "interface": "127.0.0.1:$pub",
  "adminInterface": "127.0.0.1:$ADMIN_PORT",
  "metricsInterface": "127.0.0.1:$met",
  "logging": {"console": {"enabled": true, "log_level": "warn", "log_keys": ["HTTP"]}},
  "databases": {}
}
EOF
    cp "$TMP/syncgate.json" "$OUT/syncgate.json"
    # cwd = the checkout, so that tsx finds its tsconfig.json (walrus: storage writes no files).
    (cd "$SG_DIR" && exec node --import tsx src/cli.ts "$TMP/syncgate.json") >>"$log" 2>&1 &
    SERVER_PID=$!
  else
    mkdir -p "$TMP/pouchdb-server"
    # cwd = a temp dir: pouchdb-server writes config.json and log.txt where it runs.
    # --unhandled-rejections=warn: pouchdb-server 4.2 (written for node <= 14) lets a changes-filter
    # error escape as an unhandled rejection ("missing json key" for a filter not in the ddoc, in
    # test.changes.js), which kills node >= 15; node 14 and older only warned.
    (cd "$TMP/pouchdb-server" && exec node --unhandled-rejections=warn "$REPO/node_modules/pouchdb-server/bin/pouchdb-server" \
       --in-memory --no-stdout-logs -o 127.0.0.1 -p "$ADMIN_PORT" -c "$TMP/pouchdb-server/config.json") >>"$log" 2>&1 &
    SERVER_PID=$!
  fi
  COUCH_HOST="http://127.0.0.1:$ADMIN_PORT"
  for _ in $(seq 1 120); do
    if curl -sf -o /dev/null "$COUCH_HOST/"; then echo "server up: $COUCH_HOST (pid $SERVER_PID)"; return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "server did not start; see $log" >&2; tail -20 "$log" >&2; exit 1
}

start_server
# test.replication.js expects a server answering 500 to everything on port 3010 (their test-node.sh).
if (: < /dev/tcp/127.0.0.1/3010) 2>/dev/null; then
  echo "port 3010 already in use: the 'down server' test uses whatever listens there" | tee -a "$OUT/notes.txt"
else
  (cd "$POUCH" && exec node bin/down-server.js 3010) >/dev/null 2>&1 & DOWN_PID=$!
fi

# ---- the tests ------------------------------------------------------------------------------
T0=$(date +%s.%N)
for f in "${FILES[@]}"; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server died before test.$f.js; restarting it" | tee -a "$OUT/notes.txt"
    start_server
  fi
  t1=$(date +%s.%N)
  printf '%-32s ' "test.$f.js"
  (cd "$POUCH" && RESULT_JSONL="$OUT/$f.jsonl" COUCH_HOST="$COUCH_HOST" ADAPTERS=memory VIEW_ADAPTERS=memory \
     SEED="$SEED" TESTS_DIR="$TMP/pouch-tmp" timeout -k 10 "$FILE_TIMEOUT" ./node_modules/.bin/mocha --exit --timeout "$TIMEOUT" \
     --require=./tests/integration/node.setup.js --reporter "$HERE/reporter.cjs" "tests/integration/test.$f.js") \
     >"$OUT/$f.log" 2>&1 &
  MOCHA_PID=$!   # in the background + wait, so that a SIGINT/SIGTERM to run.sh is handled at once
  wait "$MOCHA_PID"; rc=$?; MOCHA_PID=""
  t2=$(date +%s.%N)
  echo "$f $rc $(echo "$t2 - $t1" | bc)" >> "$OUT/files.txt"
  node "$HERE/summarize.cjs" --line "$OUT" "$f"
done
T3=$(date +%s.%N)
echo "$(echo "$T3 - $T0" | bc)" > "$OUT/wall.txt"
kill -0 "$SERVER_PID" 2>/dev/null || echo "server was not running at the end" | tee -a "$OUT/notes.txt"
[ "$TARGET" = syncgate ] && [[ "$CHECKOUT" != *@* ]] && git -C "$SG_DIR" status --short > "$OUT/checkout-status-after.txt" 2>/dev/null

node "$HERE/summarize.cjs" --summary "$OUT" "$TARGET" "$BASELINE"
echo "results: $OUT"

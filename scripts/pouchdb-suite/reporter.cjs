'use strict';
// Mocha reporter for the harness: the usual "spec" output on stdout, plus one JSON line per
// finished test (or failed hook) appended to $RESULT_JSONL as it happens, so that a run cut short
// (crash, kill) still leaves what it got. Lines: {file, title, state, duration, err?}.
const fs = require('fs');
const path = require('path');
// Mocha is resolved from the PouchDB tree (the cwd), not from here.
const Mocha = require(require.resolve('mocha', { paths: [process.cwd()] }));
const { Spec } = Mocha.reporters;
const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } = Mocha.Runner.constants;

class HarnessReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const out = process.env.RESULT_JSONL;
    if (!out) throw new Error('RESULT_JSONL is not set');
    const write = (test, state, err) => {
      const row = {
        file: test.file ? path.basename(test.file) : null,
        title: test.fullTitle(),
        type: test.type, // 'test' or 'hook'
        state,
        duration: test.duration ?? null,
      };
      if (err) {
        row.err = {
          message: String(err.message ?? err).slice(0, 2000),
          status: err.status, name: err.name,
          stack: String(err.stack ?? '').split('\n').slice(0, 8).join('\n'),
        };
      }
      fs.appendFileSync(out, JSON.stringify(row) + '\n');
    };
    runner.on(EVENT_TEST_PASS, (t) => write(t, 'passed'));
    runner.on(EVENT_TEST_FAIL, (t, err) => write(t, 'failed', err));
    runner.on(EVENT_TEST_PENDING, (t) => write(t, 'pending'));
    runner.once(EVENT_RUN_END, () => {
      fs.appendFileSync(out, JSON.stringify({ end: true, stats: runner.stats }) + '\n');
    });
  }
}

module.exports = HarnessReporter;

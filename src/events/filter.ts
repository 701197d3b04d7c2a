/**
 * An event handler's `filter`: compiled once into its own V8 context and run per event under a time
 * limit, like the sync function (src/sync/): the input goes in as one JSON string and the verdict
 * comes out as a primitive, so user code never holds a host object; eval and Function are off.
 */
import vm from 'node:vm';

export const DEFAULT_FILTER_TIMEOUT_MS = 1000;

export class EventFilterError extends Error {}

/** Runs in the sandbox: `true`, `false` or the strings "true"/"false" decide; anything else is "no". */
const BOOTSTRAP = `
(function (userFn) {
  'use strict';
  var parseJSON = JSON.parse;
  Object.defineProperty(globalThis, 'console', {
    value: Object.freeze({ log: function () {}, warn: function () {}, error: function () {} }), writable: false, configurable: false
  });
  return function run(input) {
    var args = parseJSON(input);
    var v = userFn(args[0], args[1]);
    if (v === true || v === 'true') return 1;
    if (v === false || v === 'false') return 0;
    return -1;
  };
})
`;

const RUN = new vm.Script('__syncgate_run(__syncgate_input)', { filename: 'event-filter-call' });

export type FilterVerdict = 'pass' | 'reject' | 'error';

export class EventFilter {
  private readonly context: vm.Context;

  /** Throws EventFilterError naming `path` (the config key) when the source does not compile. */
  constructor(readonly source: string, path: string, private readonly timeoutMs = DEFAULT_FILTER_TIMEOUT_MS) {
    this.context = vm.createContext(Object.create(null), {
      name: path, codeGeneration: { strings: false, wasm: false }, microtaskMode: 'afterEvaluate',
    });
    if (/\bimport\s*\(/.test(source)) throw new EventFilterError(`${path}: the filter may not use import()`);
    let userFn: unknown;
    try {
      userFn = new vm.Script(`(${source}\n)`, { filename: path }).runInContext(this.context, { timeout: timeoutMs });
    } catch (err) {
      throw new EventFilterError(`${path}: the filter does not compile: ${(err as Error).message}`);
    }
    if (typeof userFn !== 'function') throw new EventFilterError(`${path}: the filter must be a function`);
    const bootstrap = new vm.Script(BOOTSTRAP, { filename: 'event-filter-bootstrap' }).runInContext(this.context) as (f: unknown) => unknown;
    Object.defineProperty(this.context, '__syncgate_run', { value: bootstrap(userFn), writable: false, configurable: false });
  }

  /**
   * Calls the filter with (event, second) given as JSON texts: (doc, oldDoc) for document_changed,
   * (state object) for db_state_changed. A throw, a time-out or a non-boolean answer is 'error'.
   */
  run(eventJson: string, secondJson: string | null = null): FilterVerdict {
    this.context.__syncgate_input = `[${eventJson},${secondJson ?? 'null'}]`;
    try {
      const v = RUN.runInContext(this.context, { timeout: this.timeoutMs }) as number;
      return v === 1 ? 'pass' : v === 0 ? 'reject' : 'error';
    } catch {
      return 'error';
    }
  }
}

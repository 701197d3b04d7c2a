/** Database configs over REST, the pure parts: versions, merge, redaction, persistent-mode checks. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  checkDbConfig, configFunction, mergeDbConfig, parseDbConfigText, redactDbConfig, withConfigFunction, withoutJavascript,
} from '../../src/config/db-config.ts';
import { configVersion } from '../../src/db-configs.ts';
import { HttpError } from '../../src/errors.ts';

const refused = (fn: () => unknown, status: number, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === status && re.test(e.reason));

describe('database config versions (SG GenerateDatabaseConfigVersionID)', () => {
  it('generation + 1, md5 over the previous digest\'s length byte, the digest, the canonical config', () => {
    const c1 = { name: 'db', bucket: 'db', revs_limit: 200 };
    const v1 = configVersion('', c1);
    assert.equal(v1, `1-${createHash('md5').update(Buffer.of(0)).update('{"bucket":"db","name":"db","revs_limit":200}').digest('hex')}`);
    const d1 = v1.slice(2);
    const v2 = configVersion(v1, { ...c1, revs_limit: 300 });
    assert.equal(v2, `2-${createHash('md5').update(Buffer.of(32)).update(d1).update('{"bucket":"db","name":"db","revs_limit":300}').digest('hex')}`);
    assert.notEqual(configVersion(v2, c1), v1, 'going back to an earlier config is still a new version');
  });
});

describe('database config bodies', () => {
  it('merge: present fields replace (false and 0 too), objects merge, arrays are replaced', () => {
    const base = { a: 1, off: true, cache: { rev_cache: { size: 10 }, x: 1 }, list: [1, 2], keep: 'k' };
    assert.deepEqual(mergeDbConfig(base, { a: 0, off: false, cache: { rev_cache: { shard_count: 4 } }, list: [3] }),
      { a: 0, off: false, cache: { rev_cache: { size: 10, shard_count: 4 }, x: 1 }, list: [3], keep: 'k' });
    assert.deepEqual(base.cache.rev_cache, { size: 10 }, 'the stored config is not modified');
  });

  it('checks: unknown keys as SG words them, nulls are absent, persistent mode refuses credentials and principals', () => {
    refused(() => checkDbConfig({ revs_limt: 1 }, false, []), 400, /^JSON Unknown Field: json: unknown field "revs_limt"$/);
    assert.deepEqual(checkDbConfig({ revs_limit: null, sync: 'function(){}' }, true, []), { sync: 'function(){}' });
    assert.deepEqual(checkDbConfig({ server: 'sqlite:x', users: {} }, false, []), { server: 'sqlite:x', users: {} });
    refused(() => checkDbConfig({ server: 'sqlite:x' }, true, []), 400, /^Persisted database config does not support customization of the "server" field$/);
    refused(() => checkDbConfig([], true, []), 400, /JSON object/);
    const warnings: string[] = [];
    checkDbConfig({ cache: { rev_cache: { size: 10 } } }, true, warnings);
    assert.match(warnings.join(), /cache is not supported yet/);
  });

  it('text: back-quoted strings, env expansion unless turned off, bad JSON is a 400', () => {
    assert.deepEqual(parseDbConfigText('{"sync": `function(doc) {\n}`}', true), { sync: 'function(doc) {\n}' });
    assert.deepEqual(parseDbConfigText('{"sync": "a$$b"}', true), { sync: 'a$b' });
    assert.deepEqual(parseDbConfigText('{"sync": "a$$b"}', false), { sync: 'a$$b' });
    assert.deepEqual(parseDbConfigText('', true), {});
    refused(() => parseDbConfigText('{"a": }', true), 400, /^Bad JSON: /);
  });

  it('redaction, include_javascript=false, and the functions of the default collection', () => {
    const c = {
      password: 'p', guest: { password: 'g' }, users: { a: { password: 'x' }, b: {} }, sync: 's', import_filter: 'f',
      replications: { r: { remote: 'https://u:pw@h/db', password: 'p' } }, event_handlers: { document_changed: [{ handler: 'webhook', filter: 'js' }] },
    };
    const r = redactDbConfig(c);
    assert.equal(r.password, 'xxxxx');
    assert.deepEqual(r.guest, { password: 'xxxxx' });
    assert.deepEqual(r.users, { a: { password: 'xxxxx' }, b: {} });
    assert.deepEqual(r.replications, { r: { remote: 'https://u:xxxxx@h/db', password: 'xxxxx' } });
    assert.equal(c.password, 'p', 'a copy');
    const nj = withoutJavascript(c);
    assert.equal(nj.sync, undefined);
    assert.equal(nj.import_filter, undefined);
    assert.deepEqual(nj.event_handlers, { document_changed: [{ handler: 'webhook', filter: '' }] });
    const scoped = { scopes: { _default: { collections: { _default: { sync: 'fn' } } } } };
    assert.equal(configFunction(scoped, 'sync'), 'fn');
    assert.deepEqual(withConfigFunction(scoped, 'sync', undefined), { scopes: { _default: { collections: { _default: {} } } } });
    assert.equal(configFunction(withConfigFunction({}, 'import_filter', 'g'), 'import_filter'), 'g');
  });
});

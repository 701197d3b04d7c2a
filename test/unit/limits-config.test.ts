/** The `limits` config block and the SG connection/timeout keys: defaults, validation, key paths. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfigText } from '../../src/config/index.ts';
import { DEFAULT_LIMITS } from '../../src/config/build.ts';

const parse = (top: Record<string, unknown>) => parseConfigText(JSON.stringify({ ...top, databases: { db: {} } }), 'test.json');
const problems = (top: Record<string, unknown>): string[] => {
  try {
    parse(top);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected a config error');
};

describe('config: limits', () => {
  it('has safe defaults: lockout on, rate limits off, SG-sized documents', () => {
    const c = parse({});
    assert.deepEqual(c.limits, DEFAULT_LIMITS);
    assert.equal(c.limits.loginMaxFailures, 5);
    assert.equal(c.limits.loginFailureWindowSecs, 300);
    assert.equal(c.limits.loginLockoutSecs, 900);
    assert.equal(c.limits.requestsPerAddress, 0);
    assert.equal(c.limits.maxDocumentBytes, 20 * 1024 * 1024);
    assert.equal(c.maxIncomingConnections, 0);
    assert.equal(c.warnings.length, 0);
  });

  it('reads every key, case-insensitively as Sync Gateway matches keys', () => {
    const c = parse({
      Limits: {
        login_max_failures: 3, login_failure_window_secs: 60, login_lockout_secs: 120, requests_per_address: 100,
        requests_per_user: 50, RATE_WINDOW_SECS: 10, max_changes_feeds_per_user: 4, max_connections_per_address: 20,
        max_body_bytes: 2048, max_document_bytes: 1000, max_attachment_bytes: 500, max_bulk_docs: 10,
        max_channels_per_doc: 7, trusted_proxies: ['127.0.0.1', '::1'],
      },
      MaxIncomingConnections: 500,
      ServerReadTimeout: 30,
    });
    assert.deepEqual(c.limits, {
      loginMaxFailures: 3, loginFailureWindowSecs: 60, loginLockoutSecs: 120, requestsPerAddress: 100,
      requestsPerUser: 50, rateWindowSecs: 10, maxChangesFeedsPerUser: 4, maxConnectionsPerAddress: 20,
      maxBodyBytes: 2048, maxDocumentBytes: 1000, maxAttachmentBytes: 500, maxBulkDocs: 10,
      maxChannelsPerDoc: 7, trustedProxies: ['127.0.0.1', '::1'],
    });
    assert.equal(c.maxIncomingConnections, 500);
    assert.equal(c.serverReadTimeout, 30);
  });

  it('names the key path of every problem', () => {
    const p = problems({
      limits: {
        login_lockout_secs: 0, max_body_bytes: 10, requests_per_user: 5, rate_window_secs: 0,
        trusted_proxies: ['nginx.local'], max_bulk_docs: -1, max_bulk_doc: 3,
      },
    });
    const text = p.join('\n');
    assert.match(text, /limits\.login_lockout_secs: must be at least 1 while limits\.login_max_failures is set/);
    assert.match(text, /limits\.max_body_bytes: must be at least 1024/);
    assert.match(text, /limits\.rate_window_secs: must be at least 1/);
    assert.match(text, /limits\.trusted_proxies\[0\]: "nginx\.local" is not an IP address/);
    assert.match(text, /limits\.max_bulk_docs: expected a non-negative integer/);
    assert.match(text, /unknown key "max_bulk_doc" at limits\.max_bulk_doc/);
  });

  it('warns that ServerWriteTimeout is not applied (it would cut live feeds)', () => {
    const c = parse({ ServerWriteTimeout: 30 });
    assert.ok(c.warnings.some((w) => w.includes('ServerWriteTimeout is not supported yet and is ignored')));
    assert.equal(parse({ ServerWriteTimeout: 0 }).warnings.length, 0);
  });
});

/**
 * PouchDB behaviours that depend on CouchDB details Sync Gateway leaves out (issue 20): an
 * unmodified PouchDB client against a real gateway, one behaviour per test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB, remoteDb } from '../helpers/pouchdb.ts';

describe('PouchDB against Syncgate: CouchDB details', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway();
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('the http adapter creates a database (PUT /{db}/ answers {"ok":true})', async () => {
    // Without skip_setup PouchDB GETs the database and, on 404, PUTs it and parses the answer.
    const remote = new PouchDB(`${gw.adminUrl}/made_by_pouch`);
    const info = await remote.info();
    assert.equal(info.db_name, 'made_by_pouch');
    const put = await remote.put({ _id: 'x', channels: ['*'] });
    assert.equal(put.ok, true);
    assert.equal((await req(`${gw.adminUrl}/made_by_pouch/x`)).status, 200);
  });
});

/** An unmodified PouchDB (in-memory adapter + HTTP adapter + replication), as apps use it. */
import PouchDBCore from 'pouchdb-core';
import memoryAdapter from 'pouchdb-adapter-memory';
import httpAdapter from 'pouchdb-adapter-http';
import replication from 'pouchdb-replication';

export const PouchDB = PouchDBCore.plugin(memoryAdapter).plugin(httpAdapter).plugin(replication);

let counter = 0;
/** A fresh in-memory local database. */
export function localDb(): any {
  return new PouchDB(`local-${process.pid}-${++counter}-${Date.now()}`, { adapter: 'memory' });
}

export function remoteDb(url: string): any {
  return new PouchDB(url, { skip_setup: true });
}

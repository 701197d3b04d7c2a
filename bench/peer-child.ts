/**
 * Child process: the peer, pouchdb-server's own stack (express + express-pouchdb + PouchDB on
 * LevelDB, the modules pouchdb-server itself loads), in express-pouchdb's `minimumForPouchDB`
 * mode with no request log, so the peer pays for nothing the benchmark does not use.
 * argv[2]: directory for the LevelDB files. Reports its port over IPC; exits on "stop".
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

const dir = process.argv[2]!;
// pouchdb-server's dependencies are resolved from its own folder (it pins PouchDB 7).
const req = createRequire(createRequire(import.meta.url).resolve('pouchdb-server/package.json'));
const express = req('express');
const PouchDB = req('pouchdb-core')
  .plugin(req('pouchdb-adapter-http'))
  .plugin(req('pouchdb-replication'))
  .plugin(req('pouchdb-mapreduce'))
  .plugin(req('pouchdb-adapter-leveldb'));
const app = express();
app.use(req('express-pouchdb')(PouchDB.defaults({ prefix: dir.endsWith('/') ? dir : dir + '/' }), {
  mode: 'minimumForPouchDB', inMemoryConfig: true,
}));
const server = app.listen(0, '127.0.0.1', () => {
  process.send!({ ready: true, public: (server.address() as AddressInfo).port });
});
server.keepAliveTimeout = 60_000;
process.on('message', (m: { stop?: boolean }) => {
  if (!m.stop) return;
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
process.on('disconnect', () => process.exit(0));

/**
 * The PostgreSQL ConfigStore: table `_syncgate.db_configs` in the bootstrap server's database, shared
 * by every node. Each write is one transaction that also sends `NOTIFY syncgate_db_configs` (delivered
 * only if it commits), so other nodes of the group reload within moments instead of at their next
 * poll; polling stays the safety net for a missed notification. Inserts take an advisory lock so two
 * nodes cannot give one bucket to two databases.
 */
import pg from 'pg';
import type { ConfigStore, InsertResult, StoredDbConfig } from '../config-store.ts';
import { describeConnectError, type PostgresConnectOptions, PostgresConnectError, planConnection } from './connect.ts';
import { storageError } from './collection.ts';

const SCHEMA = '_syncgate';
const T = `"${SCHEMA}".db_configs`;
const CHANNEL = 'syncgate_db_configs';
const RELISTEN_MS = 1000;

const MIGRATIONS = [
  `CREATE TABLE ${T} (
     group_id text NOT NULL,
     db text NOT NULL,
     bucket text NOT NULL,
     version text NOT NULL,
     config text NOT NULL,
     sg_version text NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (group_id, db)
   );
   CREATE INDEX db_configs_by_bucket ON ${T} (bucket);`,
];

interface Row { db: string; bucket: string; version: string; config: string; sg_version: string }
const toStored = (r: Row): StoredDbConfig => ({ db: r.db, bucket: r.bucket, version: r.version, config: JSON.parse(r.config), sgVersion: r.sg_version });

export async function openPostgresConfigStore(o: PostgresConnectOptions, log?: { warn(msg: string): void }): Promise<PostgresConfigStore> {
  const plan = planConnection(o);
  for (const w of plan.warnings) log?.warn(`Config: ${w}`);
  const pool = new pg.Pool({ ...plan.config, max: 3 });
  pool.on('error', (err) => log?.warn(`Config: idle PostgreSQL connection lost: ${err.message}`));
  try {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`syncgate:${SCHEMA}`]);
      const exists = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [SCHEMA]);
      if (exists.rowCount === 0) await c.query(`CREATE SCHEMA "${SCHEMA}"`);
      await c.query(`CREATE TABLE IF NOT EXISTS "${SCHEMA}".config_migrations (version integer PRIMARY KEY)`);
      const r = await c.query<{ v: number | null }>(`SELECT max(version) AS v FROM "${SCHEMA}".config_migrations`);
      const current = Number(r.rows[0].v ?? 0);
      if (current > MIGRATIONS.length) throw new PostgresConnectError(`PostgreSQL schema "${SCHEMA}" has config version ${current}, newer than this Syncgate supports (${MIGRATIONS.length})`);
      for (let v = current; v < MIGRATIONS.length; v++) {
        await c.query(MIGRATIONS[v]);
        await c.query(`INSERT INTO "${SCHEMA}".config_migrations (version) VALUES ($1)`, [v + 1]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof PostgresConnectError) throw err;
    throw new PostgresConnectError(`bootstrap.server: ${describeConnectError(err, plan, o)}`);
  }
  return new PostgresConfigStore(pool, plan.config);
}

export class PostgresConfigStore implements ConfigStore {
  private readonly pool: pg.Pool;
  private readonly clientConfig: pg.ClientConfig;
  private closed = false;
  private listener?: pg.Client;
  private relisten?: NodeJS.Timeout;
  private wasLost = false;
  private readonly watchers = new Set<{ group: string; fn: (db: string) => void }>();

  constructor(pool: pg.Pool, clientConfig: pg.ClientConfig) {
    this.pool = pool;
    this.clientConfig = clientConfig;
  }

  private async q<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw storageError(err);
    }
  }

  /** One transaction; the notification goes out with the commit. */
  private async tx<T>(group: string, db: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw storageError(err);
    }
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify([group, db])]);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw storageError(err);
    } finally {
      c.release();
    }
  }

  async list(group: string): Promise<StoredDbConfig[]> {
    return (await this.q<Row>(`SELECT db, bucket, version, config, sg_version FROM ${T} WHERE group_id = $1 ORDER BY db`, [group])).rows.map(toStored);
  }

  async get(group: string, db: string): Promise<StoredDbConfig | undefined> {
    const r = await this.q<Row>(`SELECT db, bucket, version, config, sg_version FROM ${T} WHERE group_id = $1 AND db = $2`, [group, db]);
    return r.rows[0] && toStored(r.rows[0]);
  }

  async insert(group: string, c: StoredDbConfig): Promise<InsertResult> {
    return this.tx(group, c.db, async (cl): Promise<InsertResult> => {
      // Serialises inserts of every node: the bucket check and the insert are one step.
      await cl.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['syncgate:db_configs:insert']);
      if ((await cl.query(`SELECT 1 FROM ${T} WHERE group_id = $1 AND db = $2`, [group, c.db])).rowCount) return 'exists';
      const owner = await cl.query<{ group_id: string; db: string }>(`SELECT group_id, db FROM ${T} WHERE bucket = $1 LIMIT 1`, [c.bucket]);
      if (owner.rows[0]) return { bucketUsedBy: owner.rows[0].group_id === group ? owner.rows[0].db : `${owner.rows[0].db} (group ${owner.rows[0].group_id})` };
      await cl.query(`INSERT INTO ${T} (group_id, db, bucket, version, config, sg_version) VALUES ($1, $2, $3, $4, $5, $6)`,
        [group, c.db, c.bucket, c.version, JSON.stringify(c.config), c.sgVersion]);
      return 'inserted';
    });
  }

  async replace(group: string, c: StoredDbConfig, expectedVersion: string): Promise<boolean> {
    return this.tx(group, c.db, async (cl) => {
      const r = await cl.query(`UPDATE ${T} SET version = $1, config = $2, sg_version = $3, updated_at = now() WHERE group_id = $4 AND db = $5 AND version = $6`,
        [c.version, JSON.stringify(c.config), c.sgVersion, group, c.db, expectedVersion]);
      return r.rowCount === 1;
    });
  }

  async delete(group: string, db: string): Promise<boolean> {
    return this.tx(group, db, async (cl) => (await cl.query(`DELETE FROM ${T} WHERE group_id = $1 AND db = $2`, [group, db])).rowCount === 1);
  }

  watch(group: string, fn: (db: string) => void): () => void {
    const w = { group, fn };
    this.watchers.add(w);
    if (!this.listener && !this.relisten) void this.listen();
    return () => { this.watchers.delete(w); };
  }

  /** A dedicated LISTEN connection, re-made after a loss (polling covers what was missed). */
  private async listen(): Promise<void> {
    this.relisten = undefined;
    if (this.closed || this.watchers.size === 0) return;
    const client = new pg.Client(this.clientConfig);
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.wasLost = true;
      client.end().catch(() => {});
      if (!this.closed) this.relisten = setTimeout(() => { void this.listen(); }, RELISTEN_MS).unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (m) => {
      let group: string;
      let db: string;
      try { [group, db] = JSON.parse(m.payload ?? '') as [string, string]; } catch { return; }
      for (const w of this.watchers) if (w.group === group) { try { w.fn(db); } catch { /* the watcher's own */ } }
    });
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (this.closed) { await client.end(); return; }
      // Back after a loss: whatever changed meanwhile was not announced, so every watcher looks now.
      if (this.wasLost) for (const w of this.watchers) { try { w.fn(''); } catch { /* the watcher's own */ } }
      this.wasLost = false;
    } catch {
      lost();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.relisten);
    const l = this.listener;
    this.listener = undefined;
    if (l) await l.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

/**
 * The SQLite ConfigStore: `_config.sqlite3` in the bootstrap directory, WAL, synchronous=FULL. Every
 * write is one statement in its own transaction, so a killed process leaves the old or the new config.
 * Several processes may share the directory (one group or several): SQLite's locking serialises them.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigStore, InsertResult, StoredDbConfig } from '../config-store.ts';

const MIGRATIONS = [
  `CREATE TABLE db_configs (
     group_id TEXT NOT NULL,
     db TEXT NOT NULL,
     bucket TEXT NOT NULL,
     version TEXT NOT NULL,
     config TEXT NOT NULL,
     sg_version TEXT NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (group_id, db)
   ) WITHOUT ROWID;
   CREATE INDEX db_configs_by_bucket ON db_configs (bucket);`,
];

export const CONFIG_FILE = '_config.sqlite3';

interface Row { db: string; bucket: string; version: string; config: string; sg_version: string }

const toStored = (r: Row): StoredDbConfig => ({ db: r.db, bucket: r.bucket, version: r.version, config: JSON.parse(r.config), sgVersion: r.sg_version });

export class SqliteConfigStore implements ConfigStore {
  private readonly db: Database.Database;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.db = new Database(join(dir, CONFIG_FILE));
    try {
      const v = this.db.pragma('user_version', { simple: true }) as number;
      if (v > MIGRATIONS.length) throw new Error(`${CONFIG_FILE} has schema version ${v}, newer than this Syncgate supports (${MIGRATIONS.length})`);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      for (let i = v; i < MIGRATIONS.length; i++) {
        this.db.transaction(() => { this.db.exec(MIGRATIONS[i]); this.db.pragma(`user_version = ${i + 1}`); }).immediate();
      }
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  async list(group: string): Promise<StoredDbConfig[]> {
    return (this.db.prepare('SELECT db, bucket, version, config, sg_version FROM db_configs WHERE group_id = ? ORDER BY db').all(group) as Row[]).map(toStored);
  }

  async get(group: string, db: string): Promise<StoredDbConfig | undefined> {
    const r = this.db.prepare('SELECT db, bucket, version, config, sg_version FROM db_configs WHERE group_id = ? AND db = ?').get(group, db) as Row | undefined;
    return r && toStored(r);
  }

  async insert(group: string, c: StoredDbConfig): Promise<InsertResult> {
    return this.db.transaction((): InsertResult => {
      if (this.db.prepare('SELECT 1 FROM db_configs WHERE group_id = ? AND db = ?').get(group, c.db)) return 'exists';
      const owner = this.db.prepare('SELECT group_id, db FROM db_configs WHERE bucket = ?').get(c.bucket) as { group_id: string; db: string } | undefined;
      if (owner) return { bucketUsedBy: owner.group_id === group ? owner.db : `${owner.db} (group ${owner.group_id})` };
      this.db.prepare('INSERT INTO db_configs (group_id, db, bucket, version, config, sg_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(group, c.db, c.bucket, c.version, JSON.stringify(c.config), c.sgVersion, Date.now());
      return 'inserted';
    }).immediate();
  }

  async replace(group: string, c: StoredDbConfig, expectedVersion: string): Promise<boolean> {
    const r = this.db.prepare('UPDATE db_configs SET version = ?, config = ?, sg_version = ?, updated_at = ? WHERE group_id = ? AND db = ? AND version = ?')
      .run(c.version, JSON.stringify(c.config), c.sgVersion, Date.now(), group, c.db, expectedVersion);
    return r.changes === 1;
  }

  async delete(group: string, db: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM db_configs WHERE group_id = ? AND db = ?').run(group, db).changes === 1;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

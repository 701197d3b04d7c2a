import type { Database } from '../db/database.ts';
import type { DbAuth } from '../auth/index.ts';

/** What the HTTP layer needs from the gateway: the databases it serves, by name. */
export interface DatabaseRegistry {
  get(name: string): Database | undefined;
  /** The database's access-control services. */
  authFor(name: string): DbAuth | undefined;
  names(): string[];
  /** Creates a database from a Sync Gateway database config (admin `PUT /{db}/`). */
  create(name: string, config: Record<string, unknown>): Promise<void>;
  remove(name: string): Promise<boolean>;
}

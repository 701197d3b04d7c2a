import type { Database } from '../db/database.ts';

/** What the HTTP layer needs from the gateway: the databases it serves, by name. */
export interface DatabaseRegistry {
  get(name: string): Database | undefined;
  names(): string[];
  /** Creates a database from a Sync Gateway database config (admin `PUT /{db}/`). */
  create(name: string, config: Record<string, unknown>): Promise<void>;
  remove(name: string): Promise<boolean>;
}

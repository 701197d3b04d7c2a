import type { Database } from '../db/database.ts';
import type { DbAuth } from '../auth/index.ts';
import type { HandlerStatus } from '../events/handlers.ts';

/** What the HTTP layer needs from the gateway: the databases it serves, by name. */
export interface DatabaseRegistry {
  get(name: string): Database | undefined;
  /** The database's access-control services. */
  authFor(name: string): DbAuth | undefined;
  names(): string[];
  /** Creates a database from a Sync Gateway database config (admin `PUT /{db}/`). */
  create(name: string, config: Record<string, unknown>): Promise<void>;
  remove(name: string): Promise<boolean>;
  /** `GET /{db}/_event_handlers`: each handler's counts (empty when none); undefined for an unknown db. */
  eventHandlerStatus?(name: string): Promise<HandlerStatus[] | undefined>;
}

import type { Database } from '../db/database.ts';
import type { DbAuth } from '../auth/index.ts';
import type { HandlerStatus } from '../events/handlers.ts';
import type { ReplicationRegistry } from '../replication/isgr/registry.ts';

/** `GET /{db}/_config` options (spec sg3-admin §1.5). */
export interface DbConfigReadOptions {
  includeRuntime: boolean;
  includeJavascript: boolean;
  refresh: boolean;
}

/** A config and its version (absent in non-persistent mode, where configs have none). */
export interface VersionedConfig {
  config: Record<string, unknown>;
  version?: string;
}

/**
 * Database configs over REST (`/{db}/_config...`, `/_config`, `PUT|DELETE /{db}/`). Persistent mode
 * keeps them in the ConfigStore; with a 2.x file they live in memory only, as in Sync Gateway's
 * non-persistent mode. Every method throws an HttpError for a refused request and changes nothing then.
 */
/** How a config change over REST is validated. */
export interface ChangeOptions {
  /** `?disable_oidc_validation=true`: OIDC providers' discovery documents are not fetched. */
  disableOidcValidation?: boolean;
}

export interface DbConfigService {
  readonly persistent: boolean;
  /** `PUT /{db}/` with the body's raw text. */
  create(name: string, body: string, opts?: ChangeOptions): Promise<void>;
  /** `DELETE /{db}/`: false when there is no such database. */
  remove(name: string): Promise<boolean>;
  get(name: string, opts: DbConfigReadOptions): Promise<VersionedConfig>;
  /** `PUT` (replace) or `POST` (merge) `/{db}/_config`; returns the new version. */
  update(name: string, body: string, opts: { merge: boolean; ifMatch?: string } & ChangeOptions): Promise<string | undefined>;
  /** `GET /{keyspace}/_config/sync|import_filter`; `coll` unset: `_default._default`. */
  getFunction(name: string, which: 'sync' | 'import_filter', coll?: { scope: string; name: string }): Promise<{ source: string; version: string }>;
  /** `PUT` (a source) or `DELETE` (undefined) `/{keyspace}/_config/sync|import_filter`. */
  setFunction(
    name: string, which: 'sync' | 'import_filter', source: string | undefined, ifMatch?: string, coll?: { scope: string; name: string },
  ): Promise<void>;
  serverConfig(includeRuntime: boolean): Promise<Record<string, unknown>>;
  /** `PUT /_config`: runtime logging settings (not persisted). */
  updateServerConfig(body: unknown): Promise<void>;
}

/** What the HTTP layer needs from the gateway: the databases it serves, by name. */
export interface DatabaseRegistry {
  get(name: string): Database | undefined;
  /** The database's access-control services. */
  authFor(name: string): DbAuth | undefined;
  names(): string[];
  readonly configs: DbConfigService;
  /** `GET /{db}/_event_handlers`: each handler's counts (empty when none); undefined for an unknown db. */
  eventHandlerStatus?(name: string): Promise<HandlerStatus[] | undefined>;
  /** ISGR (`/{db}/_replication...`, `/_status`): the database's replications; undefined for an unknown db. */
  replications?(name: string): ReplicationRegistry | undefined;
}

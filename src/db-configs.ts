/**
 * Database configs over REST, both modes (spec sg3-admin §1): persistent (a 3.x start-up file, the
 * configs in the ConfigStore, shared by the nodes of a group) and non-persistent (a 2.x file: configs
 * in memory, as Sync Gateway's legacy mode). A change is validated whole (shape, forbidden fields,
 * the sync function compiles) before anything is written, written with its version in one
 * transaction (compare-and-swap on the version), then applied by the host building a new Database
 * and swapping it in. Other nodes' changes arrive by polling every `config_update_frequency`, and
 * sooner through the store's watch (PostgreSQL NOTIFY).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DatabaseConfig, GatewayConfig } from './config/index.ts';
import {
  checkDbConfig, type CollectionRef, configFunction, type ConfigFunction, defaultDbConfig, mergeDbConfig, parseDbConfigText, redactDbConfig,
  runtimeDbConfig, withConfigFunction, withoutJavascript, withRuntimeFunctions,
} from './config/db-config.ts';
import { runtimeLogging, startupConfigView } from './config/startup-view.ts';
import { HttpError } from './errors.ts';
import type { ChangeOptions, DbConfigReadOptions, DbConfigService, VersionedConfig } from './http/registry.ts';
import { canonicalJson } from './json/index.ts';
import type { Logger } from './log/index.ts';
import type { ConfigStore, StoredDbConfig } from './storage/config-store.ts';
import { SyncFunction, SyncFunctionError } from './sync/index.ts';

const SG_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const MAX_CAS_RETRIES = 10;

type Obj = Record<string, unknown>;

/** What the service needs from the gateway that runs the databases. */
export interface DatabaseHost {
  has(name: string): boolean;
  names(): string[];
  /** The config the running database was built from (non-persistent mode reads it). */
  running(name: string): DatabaseConfig | undefined;
  /** Builds a database from `config` and swaps it in for the running one, if any. */
  apply(config: DatabaseConfig): Promise<void>;
  /** Fetches each `oidc` provider's discovery document (SG's OIDC config validation); one problem per failure. */
  oidcProblems(config: DatabaseConfig): Promise<string[]>;
  /** Stops and removes a running database; false if there was none. */
  unload(name: string): Promise<boolean>;
  readonly logger: Logger;
  readonly config: GatewayConfig;
}

/**
 * SG's `GenerateDatabaseConfigVersionID`: `<previous generation + 1>-<md5 hex>` over one byte with the
 * length of the previous version's digest, that digest, then the canonical JSON of the config.
 */
export function configVersion(previous: string, config: Obj): string {
  const dash = previous.indexOf('-');
  const gen = previous === '' ? 0 : Number(previous.slice(0, dash));
  const prevDigest = previous === '' ? '' : previous.slice(dash + 1);
  const digest = createHash('md5')
    .update(Buffer.of(Buffer.byteLength(prevDigest) & 0xff))
    .update(prevDigest)
    .update(canonicalJson(config))
    .digest('hex');
  return `${gen + 1}-${digest}`;
}

/**
 * Whether a sync function or import filter compiles, for the config checks: undefined, or what is
 * wrong as Sync Gateway's message continues it ("(line 2): Unexpected token").
 */
export function compileCheck(dbName: string): (source: string) => string | undefined {
  return (source) => {
    try {
      new SyncFunction(source, dbName);
      return undefined;
    } catch (err) {
      if (!(err instanceof SyncFunctionError)) throw err;
      // "databases.db.sync: the sync function does not compile (line 2): Unexpected token" → the detail.
      return err.message.replace(/^databases\.[^:]*: /, '').replace(/^the sync function does not compile ?/, '');
    }
  };
}

/** The If-Match check of SG's `headerDoesNotMatchEtag`: the quoted version must appear in the header. */
function checkIfMatch(ifMatch: string | undefined, version: string): void {
  if (ifMatch && !ifMatch.includes(`"${version}"`)) throw new HttpError(412, 'Provided If-Match header does not match current config version');
}

export class DbConfigs implements DbConfigService {
  private readonly host: DatabaseHost;
  private store?: ConfigStore;
  private readonly openStore?: () => Promise<ConfigStore>;
  /** Version of the config each running database was built from (persistent mode). */
  private readonly loaded = new Map<string, string>();
  /** Applies run one at a time, so a poll never interleaves with a REST change. */
  private queue: Promise<unknown> = Promise.resolve();
  private pollTimer?: NodeJS.Timeout;
  private unwatch?: () => void;
  private stopped = false;

  /** `openStore` is given in persistent mode; the store opens at `start()`. */
  constructor(host: DatabaseHost, openStore?: () => Promise<ConfigStore>) {
    this.host = host;
    this.openStore = openStore;
  }

  get persistent(): boolean { return this.openStore !== undefined; }

  private get group(): string { return this.host.config.persistent!.groupId; }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Checks a body and builds what it would run with; throws a 400 naming every problem. `previous`
   * is the config the database has now, for an update (its scopes are fixed).
   */
  private validate(name: string, config: Obj, previous?: Obj): DatabaseConfig {
    const warnings: string[] = [];
    const runtime = runtimeDbConfig(name, config, this.host.config.persistent, process.cwd(), warnings, { compile: compileCheck(name), previous });
    for (const w of warnings) this.host.logger.warn(`Config: ${name}: ${w}`);
    return runtime;
  }

  /**
   * The network half of validation, for changes made over REST only (not for configs read at
   * start-up or from other nodes, where a provider that is down must not stop the database):
   * unless `?disable_oidc_validation=true`, every OIDC provider must answer its discovery.
   */
  private async checkOidc(runtime: DatabaseConfig, opts: ChangeOptions): Promise<void> {
    if (opts.disableOidcValidation || !runtime.oidc) return;
    const problems = await this.host.oidcProblems(runtime);
    if (problems.length) throw new HttpError(400, problems.length === 1 ? problems[0] : `${problems.length} errors:\n${problems.join('\n')}`);
  }

  private parseBody(body: string): Obj {
    const expand = this.host.config.persistent?.allowDbConfigEnvVars ?? true;
    const warnings: string[] = [];
    const config = checkDbConfig(parseDbConfigText(body, expand), this.persistent, warnings);
    for (const w of warnings) this.host.logger.warn(`Config: ${w}`);
    return config;
  }

  // ---- start-up and other nodes' changes ---------------------------------------------------

  /** Opens every database of the group, then follows changes. A config that no longer loads is logged and skipped. */
  async start(): Promise<void> {
    if (!this.openStore) return;
    this.store = await this.openStore();
    await this.sync(true);
    const p = this.host.config.persistent!;
    this.pollTimer = setInterval(() => { void this.sync(false); }, p.configUpdateFrequencyMs);
    this.pollTimer.unref();
    this.unwatch = this.store.watch?.(this.group, () => { void this.sync(false); });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    this.unwatch?.();
    await this.queue;
    await this.store?.close();
  }

  /** Brings the running databases in line with the store: new, changed and deleted configs. */
  sync(initial: boolean): Promise<void> {
    return this.serialized(async () => {
      if (this.stopped || !this.store) return;
      let configs: StoredDbConfig[];
      try {
        configs = await this.store.list(this.group);
      } catch (err) {
        this.host.logger.warn(`Config: cannot read the database configs of group "${this.group}": ${(err as Error).message}`);
        return;
      }
      const seen = new Set<string>();
      for (const c of configs) {
        seen.add(c.db);
        if (this.loaded.get(c.db) === c.version) continue;
        try {
          await this.host.apply(this.validate(c.db, c.config));
          this.loaded.set(c.db, c.version);
          this.host.logger.info(`Config: ${initial ? 'loaded' : 'applied'} database "${c.db}" config version ${c.version}`);
        } catch (err) {
          this.loaded.set(c.db, c.version); // logged once per version, not on every poll
          this.host.logger.warn(`Config: Must repair invalid database config for "${c.db}" for it to be usable: ${(err as Error).message}`);
        }
      }
      for (const name of [...this.loaded.keys()]) {
        if (seen.has(name)) continue;
        this.loaded.delete(name);
        await this.host.unload(name);
        this.host.logger.info(`Config: database "${name}" was removed from group "${this.group}"`);
      }
    });
  }

  // ---- REST --------------------------------------------------------------------------------

  async create(name: string, body: string, opts: ChangeOptions = {}): Promise<void> {
    const config = this.parseBody(body);
    if (config.name !== undefined && config.name !== name) {
      throw new HttpError(400, `When providing a name in the JSON body (${config.name}), ensure it matches the name in the path (${name}).`);
    }
    config.name = name;
    if (this.persistent && config.bucket === undefined) config.bucket = name;
    const runtime = this.validate(name, config);
    await this.checkOidc(runtime, opts);
    return this.serialized(async () => {
      if (this.host.has(name)) throw new HttpError(412, `Duplicate database name ${JSON.stringify(name)}`);
      if (!this.store) {
        await this.openOrFail(runtime);
        return;
      }
      const stored: StoredDbConfig = { db: name, bucket: runtime.bucket, version: configVersion('', config), config, sgVersion: SG_VERSION };
      const r = await this.store.insert(this.group, stored);
      if (r === 'exists') throw new HttpError(412, `Duplicate database name ${JSON.stringify(name)}`);
      if (r !== 'inserted') throw new HttpError(409, `couldn't load database: bucket ${JSON.stringify(runtime.bucket)} is already used by database ${r.bucketUsedBy}`);
      try {
        await this.openOrFail(runtime);
      } catch (err) {
        await this.store.delete(this.group, name).catch(() => {});
        throw err;
      }
      this.loaded.set(name, stored.version);
    });
  }

  private async openOrFail(runtime: DatabaseConfig): Promise<void> {
    try {
      await this.host.apply(runtime);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      this.host.logger.warn(`Config: couldn't load database "${runtime.name}": ${(err as Error).message}`);
      throw new HttpError(500, `couldn't load database: ${(err as Error).message}`);
    }
  }

  remove(name: string): Promise<boolean> {
    return this.serialized(async () => {
      if (this.store) {
        try {
          await this.store.delete(this.group, name);
        } catch (err) {
          throw new HttpError(500, `couldn't remove database ${JSON.stringify(name)}: ${(err as Error).message}`);
        }
        this.loaded.delete(name);
        await this.host.unload(name);
        return true;
      }
      return this.host.unload(name);
    });
  }

  private async fetch(name: string): Promise<StoredDbConfig> {
    const stored = await this.store!.get(this.group, name);
    if (!stored) throw new HttpError(404, 'database config not found');
    return stored;
  }

  async get(name: string, opts: DbConfigReadOptions): Promise<VersionedConfig> {
    let config: Obj;
    let version: string | undefined;
    if (this.store) {
      const stored = await this.fetch(name);
      version = stored.version;
      if (opts.refresh) { this.loaded.delete(name); await this.sync(false); }
      config = { ...stored.config };
      for (const k of ['username', 'password', 'cacertpath', 'keypath', 'certpath']) delete config[k];
    } else {
      const running = this.host.running(name);
      if (!running) throw new HttpError(404, 'database config not found');
      config = { ...running.raw, name };
    }
    if (opts.includeRuntime) {
      const running = this.host.running(name);
      config = mergeDbConfig(defaultDbConfig(!!this.host.config.sslCert), { ...(running?.raw ?? config), name });
      if (config.allow_conflicts === false && (running?.raw ?? config).revs_limit === undefined) config.revs_limit = 50;
      config = withRuntimeFunctions(config);
    }
    config = redactDbConfig(config);
    if (!opts.includeJavascript) config = withoutJavascript(config);
    return { config, version };
  }

  /**
   * The compare-and-swap loop of every persistent change: read, check If-Match, change, validate,
   * write if the version has not moved (else again), then apply. Nothing is written on a refusal.
   */
  private change(name: string, ifMatch: string | undefined, edit: (stored: Obj) => Obj, opts: ChangeOptions = {}): Promise<string> {
    return this.serialized(async () => {
      for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
        const stored = await this.fetch(name);
        checkIfMatch(ifMatch, stored.version);
        const next = edit(stored.config);
        next.name = name;
        if (next.bucket === undefined) next.bucket = stored.bucket;
        if (next.bucket !== stored.bucket) throw new HttpError(404, 'database config not found');
        const runtime = this.validate(name, next, stored.config);
        await this.checkOidc(runtime, opts);
        const version = configVersion(stored.version, next);
        const ok = await this.store!.replace(this.group, { db: name, bucket: stored.bucket, version, config: next, sgVersion: SG_VERSION }, stored.version);
        if (!ok) continue; // another node changed it meanwhile: start over from its version
        await this.openOrFail(runtime);
        this.loaded.set(name, version);
        return version;
      }
      throw new HttpError(503, 'The database config is changing too often, try again');
    });
  }

  async update(name: string, body: string, opts: { merge: boolean; ifMatch?: string } & ChangeOptions): Promise<string | undefined> {
    const patch = this.parseBody(body);
    if (patch.name !== undefined && patch.name !== name) {
      throw new HttpError(400, 'Cannot update database name. This requires removing and re-creating the database with a new name');
    }
    if (!this.store) {
      // Non-persistent mode (SG's handlePutDbConfig): the body replaces the config in memory; PUT and
      // POST alike. Without `server` (and its credentials) it keeps the running one's: a body that
      // only changes the sync function must not move the database onto an empty in-memory store.
      const running = this.host.running(name)?.raw ?? {};
      const next: Obj = { ...patch, name };
      if (next.server === undefined) {
        for (const k of ['server', 'username', 'password', 'certpath', 'keypath', 'cacertpath', 'pool_size']) if (running[k] !== undefined) next[k] = running[k];
      }
      const runtime = this.validate(name, next, running);
      await this.checkOidc(runtime, opts);
      await this.serialized(() => this.openOrFail(runtime));
      return undefined;
    }
    return this.change(name, opts.ifMatch, (stored) => (opts.merge ? mergeDbConfig(stored, patch) : { ...patch }), opts);
  }

  /**
   * `GET /{keyspace}/_config/sync|import_filter`: the collection's function as stored ('' when it
   * has none: the default is not shown), with the config's version. `coll` unset: `_default._default`.
   */
  async getFunction(name: string, which: ConfigFunction, coll?: CollectionRef): Promise<{ source: string; version: string }> {
    if (!this.store) return { source: '', version: '' };
    const stored = await this.fetch(name);
    return { source: configFunction({ ...stored.config, name }, which, coll), version: stored.version };
  }

  /** `PUT` (a source) or `DELETE` (undefined) `/{keyspace}/_config/sync|import_filter`: a config change like any other. */
  async setFunction(name: string, which: ConfigFunction, source: string | undefined, ifMatch?: string, coll?: CollectionRef): Promise<void> {
    if (!this.store) throw new HttpError(400, 'endpoint only supports persistent config mode');
    await this.change(name, ifMatch, (stored) => withConfigFunction({ ...stored, name }, which, source, coll));
  }

  async serverConfig(includeRuntime: boolean): Promise<Obj> {
    const out = startupConfigView(this.host.config);
    if (includeRuntime) {
      const logging = out.logging as Obj;
      out.logging = { ...logging, console: { ...(logging.console as Obj | undefined), log_level: this.host.logger.level, log_keys: this.host.logger.getConsoleKeys() } };
      const databases: Obj = {};
      for (const name of this.host.names().sort()) {
        databases[name] = (await this.get(name, { includeRuntime: true, includeJavascript: true, refresh: false }).catch(() => undefined))?.config;
      }
      out.databases = databases;
    }
    return out;
  }

  async updateServerConfig(body: unknown): Promise<void> {
    const { level, keys } = runtimeLogging(body);
    if (level !== undefined) this.host.logger.setConsoleLevel(level);
    if (keys !== undefined) {
      const bad = this.host.logger.setConsoleKeys(Object.fromEntries(keys.map((k) => [k, true])), true);
      for (const k of bad) this.host.logger.warn(`HTTP: Invalid log key: ${k}`);
    }
  }
}

/**
 * A database's run state, as Sync Gateway 3.x reports it in `GET /{db}/` and `/_status`, and the
 * refusal that every handler not marked offline-capable gives while the database is not online.
 */
import { HttpError } from '../errors.ts';

export type DbState = 'Offline' | 'Starting' | 'Online' | 'Stopping' | 'Resyncing';

/** Sync Gateway's 503 for a request that needs an online database (`rest/handler.go`). */
export function notOnlineError(state: DbState): HttpError {
  if (state === 'Offline') return new HttpError(503, 'DB is currently under maintenance');
  return new HttpError(503, `DB is ${state} - try again later`);
}

/** What the state transitions need of a database (Database implements it). */
export interface StatefulDb {
  readonly state: DbState;
  readonly isClosed: boolean;
  /** The one place run states change; Online and Offline transitions raise db_state_changed with `reason`. */
  setState(state: DbState, reason?: string): void;
  /** Ends live feeds and replication connections; the database can serve new ones later. */
  endFeeds(): void;
  /** Resolves once no request or write is under way. */
  idle(): Promise<void>;
}

/**
 * `POST /{db}/_offline` (`TakeDbOffline`): Online → Stopping → Offline. Live feeds end first, then
 * in-flight requests and writes finish; new ones are refused with 503 from the moment it begins.
 */
export async function takeOffline(db: StatefulDb): Promise<void> {
  const s = db.state;
  if (s === 'Offline' || s === 'Resyncing' || s === 'Stopping') return;
  if (s !== 'Online') throw new HttpError(503, `Unable to take Database offline, database must be in Online state but was ${s}`);
  db.setState('Stopping');
  db.endFeeds();
  await db.idle();
  db.setState('Offline', 'ADMIN Request');
}

/**
 * `POST /{db}/_online`: answers at once; after `delaySecs` an Offline database goes Starting →
 * Online (in any other state by then, nothing happens, as in Sync Gateway). Returns the timer.
 */
export function scheduleOnline(db: StatefulDb, delaySecs: number, log?: (msg: string) => void): NodeJS.Timeout | undefined {
  const s = db.state;
  if (s === 'Online' || s === 'Starting') return undefined;
  if (s === 'Resyncing') throw new HttpError(503, 'Database _resync is in progress, this may take some time, try again later');
  const timer = setTimeout(() => {
    if (db.isClosed) return;
    if (db.state !== 'Offline') {
      log?.(`Unable to bring database online: it is ${db.state}, not Offline`);
      return;
    }
    db.setState('Starting');
    db.setState('Online', 'DB loaded from config');
    log?.('Database is now Online');
  }, Math.max(0, delaySecs) * 1000);
  timer.unref();
  return timer;
}

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

/**
 * Admin `GET /_log_tail` (Syncgate's own; Sync Gateway has no such endpoint): the last lines of the
 * gateway's in-memory log buffer (src/log/buffer.ts), for the console's Logs page and for operators
 * without shell access to the log files.
 *
 * - `since=N`: only lines after serial N (the `last_seq` of a previous answer), to follow the log;
 * - `limit=N`: at most the newest N of them (default and maximum: the buffer's size).
 *
 * Answers `{"lines":[{"seq":1,"line":"..."}],"last_seq":N,"dropped":N,"console":{"log_level":...,
 * "log_keys":[...]}}`; `dropped` counts lines after `since` the buffer no longer holds. The lines
 * are the Logger's formatted output, already redacted like the log files. The console level and
 * keys are changed through `/_logging`, as in Sync Gateway.
 */
import type { Logger } from '../../log/index.ts';
import { intParam, type RequestContext } from '../context.ts';
import type { Route } from '../router.ts';

export function logTailRoutes(logger: Logger): Route[] {
  const tail = async (ctx: RequestContext) => {
    const since = intParam(ctx.query, 'since', 0)!;
    const limit = Math.min(intParam(ctx.query, 'limit', logger.buffer.maxLines)!, logger.buffer.maxLines);
    const read = logger.buffer.read(since, limit);
    await ctx.sendJson(200, JSON.stringify({
      ...read,
      console: { log_level: logger.getConsoleLevel(), log_keys: logger.getConsoleKeys() },
    }));
  };
  // Quiet: a console following the log every few seconds must not fill it with its own requests.
  return [{ methods: ['GET'], pattern: '/_log_tail', handler: tail, adminOnly: true, quiet: true }];
}

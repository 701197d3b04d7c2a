/**
 * Admin `/_logging` (spec §4.2, §8; Sync Gateway 2.x `handleGetLogging` / `handleSetLogging`):
 * - `GET` → the enabled console keys, `{"HTTP":true,...}`;
 * - `PUT` replaces the console keys with the body's `{"Key": true|false}`, `POST` merges them;
 * - `?logLevel=none|error|warn|info|debug|trace` sets the console level (deprecated `?level=1|2|3`
 *   = info|warn|error, clamped to 1..3 as Sync Gateway does); the body may then be empty.
 * Success is 200 with an empty body. Unknown keys are ignored with a warning, as Sync Gateway does.
 */
import { HttpError } from '../../errors.ts';
import { isLogLevel, type Logger, type LogLevel } from '../../log/index.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';

const DEPRECATED_LEVELS: readonly LogLevel[] = ['info', 'warn', 'error'];

function requestedLevel(ctx: RequestContext, logger: Logger): LogLevel | undefined {
  const logLevel = ctx.query.get('logLevel');
  if (logLevel !== null && logLevel !== '') {
    if (!isLogLevel(logLevel)) throw new HttpError(400, `unrecognized level: ${logLevel}`);
    return logLevel;
  }
  const level = ctx.query.get('level');
  if (level === null || level === '') return undefined;
  if (!/^-?\d+$/.test(level)) throw new HttpError(400, `Invalid value for level: ${level}`);
  logger.warn('HTTP: Using deprecated query parameter: "level". Use "logLevel" instead.');
  const n = Math.min(3, Math.max(1, Number(level)));
  return DEPRECATED_LEVELS[n - 1];
}

export function loggingRoutes(logger: Logger): Route[] {
  const get = async (ctx: RequestContext) => {
    const keys = Object.fromEntries(logger.getConsoleKeys().map((k) => [k, true]));
    await ctx.sendJson(200, JSON.stringify(keys));
  };

  const set = async (ctx: RequestContext) => {
    const level = requestedLevel(ctx, logger);
    const body = await ctx.body();
    if (level !== undefined) {
      logger.setConsoleLevel(level);
      logger.info(`Setting log level to: ${level}`);
      if (body.length === 0) throw new HttpError(200, 'OK');
    }
    let keys: unknown;
    try {
      keys = JSON.parse(body.toString('utf8'));
    } catch {
      keys = undefined;
    }
    if (keys === null || typeof keys !== 'object' || Array.isArray(keys) || !Object.values(keys).every((v) => typeof v === 'boolean')) {
      throw new HttpError(400, 'Invalid JSON or non-boolean values');
    }
    const unknown = logger.setConsoleKeys(keys as Record<string, boolean>, ctx.method === 'PUT');
    for (const k of unknown) logger.warn(`HTTP: Invalid log key: ${k}`);
    throw new HttpError(200, 'OK');
  };

  return [
    { methods: ['GET'], pattern: '/_logging', handler: get, adminOnly: true },
    { methods: ['PUT', 'POST'], pattern: '/_logging', handler: set, adminOnly: true },
  ];
}

/**
 * Logging (spec §8): Sync Gateway's leveled, keyed text lines on the console and in per-level
 * rotated files, with run-time changes and redaction. See logger.ts for the Logger, files.ts for
 * the files, config.ts for building a Logger from the loaded config.
 */
export { LogBuffer, type LogBufferOptions, type LogBufferRead, type BufferedLine, DEFAULT_LOG_BUFFER_BYTES, DEFAULT_LOG_BUFFER_LINES } from './buffer.ts';
export { Logger, type LoggerOptions, type RequestActor } from './logger.ts';
export type { LogLevel, LineLevel } from './levels.ts';
export { LOG_KEYS, LOG_LEVELS, canonicalKey, isLogLevel, messageKey } from './levels.ts';
export type { RedactionLevel } from './redact.ts';
export { REDACTED, REDACTION_LEVELS, redactor, sanitizeQuery, sanitizeRequestTarget } from './redact.ts';
export type { FileLevel, FileLoggerSettings } from './files.ts';
export { FILE_LEVELS } from './files.ts';
export { createLogger, fileLoggerSettings, LoggingSetupError, prepareLogDirectory, type LoggingSettings, type CreateLoggerOptions } from './config.ts';


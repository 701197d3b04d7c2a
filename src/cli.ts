/**
 * `syncgate [flags] [config.json ...]`. With no config file, serves database "db" from
 * ./data/db.sqlite3. Flags follow Sync Gateway's names; both `-flag` and `--flag` are accepted.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, defaultConfig, loadConfigFiles } from './config/index.ts';
import { Gateway } from './gateway.ts';
import { createLogger } from './log/index.ts';
import { VERSION } from './http/routes/database.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const HELP = `Usage: syncgate [options] [config.json ...]

Runs a Sync Gateway compatible sync server. With no config file it serves the database "db"
from ./data/db.sqlite3 (public API on :4984, admin API on 127.0.0.1:4985). The config file is a
Sync Gateway 2.x file (with "databases"), or a 3.x start-up file (with "bootstrap": databases are
then created over the admin API and kept at bootstrap.server).

Options:
  -interface ADDR        public API listen address (default :4984)
  -adminInterface ADDR   admin API listen address (default 127.0.0.1:4985)
  -metricsInterface ADDR metrics listen address (default 127.0.0.1:4986)
  -url URL               server of the default database: sqlite:<path>, memory:, walrus: or
                         postgres://user:password@host:port/dbname
  -dbname NAME           name of the default database (default db)
  -log KEYS              console log keys, comma-separated (e.g. HTTP,CRUD,Changes)
  -logFilePath DIR       write sg_error.log, sg_warn.log, sg_info.log... into DIR
  -pretty                indent JSON responses
  -verbose               log debug messages
  --hash-password        read a password on stdin, print its bcrypt hash (for admin_users)
  -h, --help             show this help
  -v, --version          print the version
`;

/** Go-style single-dash long flags (`-interface`) become `--interface` for parseArgs. */
function normalizeArgs(argv: string[]): string[] {
  return argv.map((a) => (/^-[A-Za-z]{2,}/.test(a) ? '-' + a : a));
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: normalizeArgs(argv),
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      'hash-password': { type: 'boolean' },
      version: { type: 'boolean', short: 'v' },
      interface: { type: 'string' },
      adminInterface: { type: 'string' },
      metricsInterface: { type: 'string' },
      url: { type: 'string' },
      dbname: { type: 'string' },
      pretty: { type: 'boolean' },
      log: { type: 'string' },
      logFilePath: { type: 'string' },
      verbose: { type: 'boolean' },
    },
  });
  if (values.help) { process.stdout.write(HELP); return 0; }
  if (values.version) { process.stdout.write(`syncgate ${pkg.version}\n`); return 0; }
  if (values['hash-password']) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (password.length < 3) throw new Error('the password must be at least 3 characters');
    const { default: bcrypt } = await import('bcryptjs');
    process.stdout.write(`${await bcrypt.hash(password, 10)}\n`);
    return 0;
  }

  const config = positionals.length > 0 ? loadConfigFiles(positionals) : defaultConfig();
  if (positionals.length === 0 && (values.url || values.dbname)) {
    const text = JSON.stringify({ databases: { [values.dbname ?? 'db']: { server: values.url ?? 'sqlite:data/db.sqlite3', users: { GUEST: { disabled: false, admin_channels: ['*'] } } } } });
    const { parseConfigText } = await import('./config/index.ts');
    config.databases = parseConfigText(text, 'command line').databases;
  }
  if (values.interface) config.interface = values.interface;
  if (values.adminInterface) config.adminInterface = values.adminInterface;
  if (values.metricsInterface) config.metricsInterface = values.metricsInterface;
  if (values.pretty) config.pretty = true;
  if (values.log) {
    config.logging.logKeys = values.log.split(',').map((k) => k.trim()).filter(Boolean);
    config.logging.consoleEnabled = true;
  }
  if (values.logFilePath) config.logging.logFilePath = values.logFilePath;
  // Console lines are held until the listeners are up: a start-up failure is then exactly one line.
  let held: string[] | null = [];
  const logger = createLogger(config.logging, {
    verbose: values.verbose,
    write: (line) => { if (held) held.push(line); else process.stderr.write(line + '\n'); },
  });
  logger.banner(`==== Couchbase Sync Gateway/${VERSION}(Syncgate ${pkg.version}) CE ====`);
  logger.logConfiguration();
  const gateway = new Gateway(config, { logger });
  try {
    await gateway.start();
  } catch (err) {
    held = null;
    await gateway.stop().catch(() => {});
    await logger.close().catch(() => {});
    throw err;
  }
  process.stderr.write(held.map((l) => l + '\n').join(''));
  held = null;

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`Received ${signal}: shutting down`);
    // In-flight requests finish, listeners close, databases close; the log files are flushed last.
    gateway.stop().then(() => logger.close()).then(() => process.exit(0), async (err) => {
      logger.error(`Error during shutdown: ${(err as Error).message}`);
      await logger.close().catch(() => {});
      process.exit(1);
    });
  };
  // A sync function can leave a rejected promise behind (an async helper that throws): log it, never
  // let it take the server down.
  process.on('unhandledRejection', (reason) => logger.warn(`Javascript: unhandled rejection in sync function: ${String(reason)}`));
  process.on('SIGHUP', () => { logger.reopen().catch((err) => logger.error(`Logging: cannot reopen log files: ${(err as Error).message}`)); });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return -1; // keep running
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
}, (err: unknown) => {
  // Start-up failures: one line that says what is wrong and where, and a non-zero exit.
  const msg = err instanceof ConfigError ? err.message
    : (err as NodeJS.ErrnoException)?.code === 'EADDRINUSE' ? `cannot listen: address already in use (${(err as Error).message})`
      : (err as Error)?.message ?? String(err);
  process.stderr.write(`${new Date().toISOString()} [ERR] ${msg}\n`);
  process.exit(1);
});

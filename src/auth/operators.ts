/**
 * Optional HTTP Basic authentication for the admin and metrics ports (`admin_users`,
 * `metrics_users`), which Sync Gateway 2.x lacks: operator accounts whose bcrypt hashes live in the
 * config file. Without them the ports stay open to whoever can reach them (loopback by default).
 */
import { HttpError } from '../errors.ts';
import { basicCredentials } from './authenticate.ts';
import type { LoginLockout } from './lockout.ts';
import { VerifiedPasswords } from './verified-passwords.ts';

export interface OperatorAuthOptions {
  /** The gateway's login lockout; `scope` keeps the admin and metrics ports' counts apart. */
  lockout?: LoginLockout;
  scope?: string;
}

export class OperatorAuth {
  private readonly users: ReadonlyMap<string, string>;
  private readonly verified = new VerifiedPasswords();
  private readonly opts: OperatorAuthOptions;

  /** `users`: operator name → bcrypt hash. */
  constructor(users: Record<string, string>, opts: OperatorAuthOptions = {}) {
    this.users = new Map(Object.entries(users));
    this.opts = opts;
  }

  /**
   * Returns the operator's name, or throws 401 `Login required` / `Invalid login`. `address` (the
   * client's) keys the login lockout: a locked (name, address) pair gets `Invalid login` unchecked.
   */
  async check(authorization: string | undefined, address = ''): Promise<string> {
    const cred = basicCredentials(authorization);
    if (!cred) throw new HttpError(401, 'Login required');
    const hash = this.users.get(cred.name);
    // Unknown names still cost a bcrypt, so timing does not tell which operator names exist.
    const verify = async () => ((await this.verified.matches(cred.name, cred.password, hash ?? DUMMY_HASH)) && hash ? cred.name : undefined);
    const lockout = this.opts.lockout;
    const name = lockout ? await lockout.attempt(this.opts.scope ?? 'operators', cred.name, address, cred.password, verify) : await verify();
    if (name === undefined) throw new HttpError(401, 'Invalid login');
    return name;
  }
}

/** A valid bcrypt hash of a random string nobody knows. */
const DUMMY_HASH = '$2b$10$vt4Y.YmGf8B81583I9GLa.ZBxQWrG6t5OimZDZsmnlSKsfoCGclWC';

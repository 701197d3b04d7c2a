/**
 * Optional HTTP Basic authentication for the admin and metrics ports (`admin_users`,
 * `metrics_users`), which Sync Gateway 2.x lacks: operator accounts whose bcrypt hashes live in the
 * config file. Without them the ports stay open to whoever can reach them (loopback by default).
 */
import { HttpError } from '../errors.ts';
import { basicCredentials } from './authenticate.ts';
import { VerifiedPasswords } from './verified-passwords.ts';

export class OperatorAuth {
  private readonly users: ReadonlyMap<string, string>;
  private readonly verified = new VerifiedPasswords();

  /** `users`: operator name → bcrypt hash. */
  constructor(users: Record<string, string>) {
    this.users = new Map(Object.entries(users));
  }

  /** Returns the operator's name, or throws 401 `Login required` / `Invalid login`. */
  async check(authorization: string | undefined): Promise<string> {
    const cred = basicCredentials(authorization);
    if (!cred) throw new HttpError(401, 'Login required');
    const hash = this.users.get(cred.name);
    // Unknown names still cost a bcrypt, so timing does not tell which operator names exist.
    const ok = await this.verified.matches(cred.name, cred.password, hash ?? DUMMY_HASH);
    if (!ok || !hash) throw new HttpError(401, 'Invalid login');
    return cred.name;
  }
}

/** A valid bcrypt hash of a random string nobody knows. */
const DUMMY_HASH = '$2b$10$vt4Y.YmGf8B81583I9GLa.ZBxQWrG6t5OimZDZsmnlSKsfoCGclWC';

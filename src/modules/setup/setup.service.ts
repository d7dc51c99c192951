// First run: while nobody holds `admin` (and never in production), a one-time
// token in DATA_DIR/setup-token lets whoever can read that file create the
// first admin. The file is the secret's only copy: it never reaches a log.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import type { Db } from '../../db/connect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { userRoles, type users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import type { AppServices, Deps } from '../../deps.js';
import type { Logger } from '../../lib/logger.js';
import { problem } from '../../lib/problem.js';
import { SUPER_ROLE } from '../../security/permissions.js';
import { assertPasswordNotCommon, hashPassword } from '../../security/passwords.js';
import { toUser } from '../users/users.view.js';
import type { User } from '../users/users.schemas.js';
import { createUserWithRoles } from '../users/users.create.js';

/** 256 random bits, base64url. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export const setupTokenPath = (dataDir: string) => join(dataDir, 'setup-token');

async function adminExists(db: Db | Tx): Promise<boolean> {
  const rows = await db.select({ id: userRoles.userId }).from(userRoles).where(eq(userRoles.roleName, SUPER_ROLE)).limit(1);
  return rows.length > 0;
}

/** The token in the file, or null when there is no well-formed one (a symlink does not count). */
async function readToken(path: string): Promise<string | null> {
  try {
    if (!(await lstat(path)).isFile()) return null;
    const token = (await readFile(path, 'utf8')).trim();
    return TOKEN.test(token) ? token : null;
  } catch {
    return null;
  }
}

async function removeToken(path: string, logger: Logger): Promise<void> {
  try {
    await rm(path, { force: true });
  } catch (err) {
    logger.warn({ err, path }, 'could not remove the setup token file');
  }
}

/**
 * At start, after the database is prepared: while setup is open, make sure the
 * token file exists (0600; a token from an earlier start is kept) and log its
 * path; once it is closed (an admin exists, or production), remove a leftover
 * file. Returns the file's path while setup is open and the file is there, else null.
 */
export async function prepareSetupToken(deps: Pick<Deps, 'config' | 'database' | 'logger'>): Promise<string | null> {
  const path = setupTokenPath(deps.config.dataDir);
  if (deps.config.production || (await adminExists(deps.database.db))) {
    await removeToken(path, deps.logger);
    return null;
  }
  try {
    if ((await readToken(path)) === null) {
      await mkdir(deps.config.dataDir, { recursive: true, mode: 0o700 });
      await rm(path, { force: true });
      // `wx`: a new regular file, never one someone put there (or a symlink).
      await writeFile(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    }
    await chmod(path, 0o600);
  } catch (err) {
    // A read-only DATA_DIR (a database URL needs nothing else there) must not stop the start.
    deps.logger.warn(
      { err, path },
      'no admin yet, and the setup token could not be written: set BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD',
    );
    return null;
  }
  deps.logger.info({ path }, 'no admin yet: create the first one with the setup token in this file (POST /setup/admin, or /console)');
  return path;
}

/** Whether first-run setup is open: nobody holds `admin`, and not in production. */
export async function isSetupOpen(svc: Pick<AppServices, 'config' | 'database'>): Promise<boolean> {
  return !svc.config.production && !(await adminExists(svc.database.db));
}

/** Setup is closed once anyone holds `admin`, and always in production: the route then answers as if it did not exist. */
export async function assertSetupOpen(svc: Pick<AppServices, 'config' | 'database'>): Promise<void> {
  if (!(await isSetupOpen(svc))) problem('not_found', 'No route for POST /setup/admin');
}

/** Compared as digests of equal length, in constant time. */
function sameToken(expected: string, given: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(expected), digest(given));
}

/**
 * POST /setup/admin: with the right token, the first admin (holding `admin`
 * only, like the bootstrap admin; its email counts as verified). Under
 * SERIALIZABLE, of two concurrent requests only one sees no admin and commits.
 */
export async function createFirstAdmin(
  svc: AppServices,
  input: { token: string; email: string; password: string; name: string },
): Promise<User> {
  const path = setupTokenPath(svc.config.dataDir);
  const expected = await readToken(path);
  if (expected === null || !sameToken(expected, input.token)) {
    // A concurrent request that won may have created the admin and removed the
    // file since the route checked: once an admin exists the answer is 404, always.
    await assertSetupOpen(svc);
    problem('forbidden', 'That is not the setup token', { audit: 'setup_token_rejected' });
  }
  await assertPasswordNotCommon(input.password);
  const passwordHash = await hashPassword(input.password, svc.config.argon2);
  const now = new Date(svc.clock());
  let row: typeof users.$inferSelect | null;
  try {
    row = await svc.tx(async (tx) => {
      if (await adminExists(tx)) return null;
      return createUserWithRoles(tx, { email: input.email, name: input.name, passwordHash, emailVerifiedAt: now, at: now }, [SUPER_ROLE]);
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // The same email from a concurrent setup request that won, or an account that was there before.
    await assertSetupOpen(svc);
    problem('email_taken', 'That email is already registered');
  }
  if (row === null) problem('not_found', 'No route for POST /setup/admin');
  await removeToken(path, svc.logger);
  return toUser(row, [SUPER_ROLE]);
}

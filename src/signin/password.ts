// The password strategy: the user whose password this is, checked within the
// brute-force limits (security/password-attempts.ts), then admit() (amr pwd,
// or the MFA step for a user with a second factor).
import { eq, sql } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { users } from '../db/schema.js';
import { preparedQuery } from '../db/prepared.js';
import { problem } from '../lib/problem.js';
import { passwordAttempts, verifyWithinLimits } from '../security/password-attempts.js';
import { hashPassword, needsRehash, verifyPassword } from '../security/passwords.js';
import type { Authentication } from './authentication.js';
import { admit, hasSecondFactor, secondFactorsOf } from './rules.js';

type UserRow = typeof users.$inferSelect;

const userByEmail = preparedQuery((db) =>
  db
    .select()
    .from(users)
    .where(eq(users.email, sql.placeholder('email')))
    .prepare('user_by_email'),
);

/**
 * The user whose password this is, within the limits: a failure is counted
 * and answered 401 here; a hash made with older parameters is upgraded.
 */
async function verifyCredentials(svc: AppServices, input: { email: string; password: string; ip: string }): Promise<UserRow> {
  let found: UserRow | undefined;
  // The look-up is inside the limits too: a locked attempt costs no query.
  const ok = await verifyWithinLimits(
    passwordAttempts(svc),
    input,
    async () => {
      [found] = await userByEmail(svc.database.db).execute({ email: input.email });
      // Unknown emails verify against a dummy hash: same work, same answer, same time.
      // A user without a password (signed up through an identity provider) is refused the same way.
      const ok = await verifyPassword(found?.passwordHash ?? (await svc.dummyHash), input.password);
      return ok && typeof found?.passwordHash === 'string';
    },
    'login_locked',
    // With a second factor, the failures are forgiven when the MFA step succeeds.
    () => !(found && hasSecondFactor(secondFactorsOf(found))),
  );
  const user = found;
  if (!user || !ok) {
    svc.stats.add('auth.loginFailed');
    problem('invalid_credentials', 'Invalid email or password', { audit: 'login_failed' });
  }
  if (user.passwordHash !== null && needsRehash(user.passwordHash, svc.config.argon2)) {
    const passwordHash = await hashPassword(input.password, svc.config.argon2);
    await svc.tx((tx) => tx.update(users).set({ passwordHash }).where(eq(users.id, user.id)));
  }
  return user;
}

/**
 * POST /auth/login: the password, then the rules of admit() (a verified
 * address with EMAIL_VERIFICATION=required; a user with a second factor gets
 * 401 mfa_required with an mfaToken, and POST /auth/mfa/verify finishes).
 */
export async function signInWithPassword(
  svc: AppServices,
  input: { email: string; password: string; ip: string },
): Promise<Authentication> {
  return admit(svc, await verifyCredentials(svc, input), ['pwd']);
}

// Whether this user may sign in now, and whether a second factor must follow
// the first: the one place for these rules. Every strategy that proves a user
// ends in admit(); the MFA_REQUIRED_ROLES policy of signed-in requests
// (surfaces/api/mfa-policy.ts) asks hasSecondFactor() too.
import type { AppServices } from '../deps.js';
import type { users } from '../db/schema.js';
import { problem } from '../lib/problem.js';
import { secondFactorsOf, type SecondFactors } from '../access/profile-state.js';
import { authenticated, type Amr, type Authentication } from './authentication.js';
import { requireSecondFactor } from './mfa-step.js';

type UserRow = typeof users.$inferSelect;

export { secondFactorsOf, type SecondFactors };

/** TOTP on or a passkey: sign-in with a password asks for one, and MFA_REQUIRED_ROLES is satisfied. */
export const hasSecondFactor = (f: SecondFactors): boolean => f.totp || f.passkeys > 0;

/** With EMAIL_VERIFICATION=required, an address not confirmed yet signs in with nothing. */
function assertMaySignIn(svc: Pick<AppServices, 'config'>, user: Pick<UserRow, 'emailVerifiedAt'>): void {
  if (svc.config.emailVerification === 'required' && user.emailVerifiedAt === null) {
    problem('email_not_verified', 'Confirm your email address first (the link is in the mail we sent)', { audit: 'email_not_verified' });
  }
}

/**
 * A first factor proved this user: refused when they may not sign in now; a
 * password or an upstream identity provider alone, for a user with a second
 * factor, answers 401 mfa_required (the MFA step finishes it, see
 * second-factor.ts); otherwise signed in. A passkey alone verified the user on
 * the device, so it needs no second factor.
 */
export async function admit(svc: AppServices, user: UserRow, amr: Amr): Promise<Authentication> {
  assertMaySignIn(svc, user);
  const first = amr.length === 1 ? amr[0] : undefined;
  if ((first === 'pwd' || first === 'fed') && hasSecondFactor(secondFactorsOf(user))) await requireSecondFactor(svc, user, first);
  return authenticated(svc, user.id, amr);
}

// MFA_REQUIRED_ROLES: a signed-in holder of such a role who has no second
// factor yet may use only the routes declared `beforeMfa` (their profile, the
// factor routes, logout); everything else is 403 mfa_enrollment_required. Only
// those holders pay for the check (one store read of their cached profile).
import { createMiddleware } from 'hono/factory';
import { problem } from '../../lib/problem.js';
import type { AuthVariables } from '../../middleware/app-env.js';
import type { RouteIndex } from '../../middleware/route-meta.js';

export const mfaPolicy = (opts: {
  requiredRoles: readonly string[];
  /** Whether this user has a second factor now (TOTP on or a passkey). */
  hasSecondFactor: (userId: string) => Promise<boolean>;
  /** The surface's declared routes (which are `beforeMfa`). */
  routes: RouteIndex;
}) => {
  const required = new Set(opts.requiredRoles);
  // Sets no variable; reads the caller.
  // Not async unless a listed role is held: everyone else goes straight on.
  return createMiddleware<{ Variables: Pick<AuthVariables, 'caller'> }>((c, next) => {
    if (required.size === 0) return next();
    const caller = c.get('caller');
    if (caller.kind !== 'user') return next();
    const held = caller.roles.filter((r) => required.has(r));
    if (held.length === 0 || opts.routes.of(c)?.meta.beforeMfa === true) return next();
    return (async () => {
      if (!(await opts.hasSecondFactor(caller.userId))) {
        problem('mfa_enrollment_required', `The role ${held.join(', ')} needs a second factor: set up TOTP or a passkey first (/account)`, {
          audit: 'mfa_enrollment_required',
        });
      }
      await next();
    })();
  });
};

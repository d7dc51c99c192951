// The permission check behind every route declaration. Deny by default; every
// decision is recorded on the context (the access log turns it into audit
// detail and statistics).
import type { Context } from 'hono';
import { problem } from '../lib/problem.js';
import type { Caller } from '../access/caller.js';
import { can, isUserPermission, type Permission } from '../security/permissions.js';
import type { AuthVariables, RbacVariables } from './app-env.js';

export function deny(caller: Caller, permission: Permission): never {
  if (caller.kind === 'anonymous') {
    problem('unauthenticated', `Sign in to use this (needs ${permission})`, {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }
  problem('forbidden', `Missing permission ${permission}`);
}

/**
 * Judge the caller on one permission, record the decision, and refuse when not
 * held. A user permission is held by signed-in users only (what lets the
 * declaration hand its handler a user caller), whatever another kind holds.
 */
export function checkPermission(c: Context<{ Variables: RbacVariables & Pick<AuthVariables, 'caller'> }>, permission: Permission): void {
  const caller = c.get('caller');
  const allowed = can(caller.permissions, permission) && (caller.kind === 'user' || !isUserPermission(permission));
  c.set('decision', { permission, allowed });
  if (!allowed) deny(caller, permission);
}

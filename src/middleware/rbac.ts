// The permission check behind every route declaration. Deny by default; every
// decision is recorded on the context (the access log turns it into audit
// detail and statistics).
import type { Context } from 'hono';
import { problem } from '../lib/problem.js';
import type { Caller } from '../security/caller.js';
import type { AuthVariables } from './auth.js';
import { can, type Decision, type Permission } from '../security/permissions.js';

export type { Decision };
/** The permission decision of the request (read by the access log). */
export type RbacVariables = { decision: Decision | undefined };

export function deny(caller: Caller, permission: Permission): never {
  if (caller.userId === null) {
    problem('unauthenticated', `Sign in to use this (needs ${permission})`, {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }
  problem('forbidden', `Missing permission ${permission}`);
}

/** Judge the caller on one permission, record the decision, and refuse when not held. */
export function checkPermission(c: Context<{ Variables: RbacVariables & Pick<AuthVariables, 'caller'> }>, permission: Permission): void {
  const caller = c.get('caller');
  const allowed = can(caller.permissions, permission);
  c.set('decision', { permission, allowed });
  if (!allowed) deny(caller, permission);
}

// The permission guard. Deny by default; every decision is recorded on the
// context (the access log turns it into audit detail and statistics).
import { createMiddleware } from 'hono/factory';
import { problem } from '../lib/problem.js';
import type { Caller } from '../security/caller.js';
import { can, type Permission } from '../security/permissions.js';

export type Decision = { permission: Permission; allowed: boolean };
export type RbacVariables = { caller: Caller; decision: Decision | undefined };

export function deny(caller: Caller, permission: Permission): never {
  if (caller.userId === null) {
    problem('unauthenticated', `Sign in to use this (needs ${permission})`, {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }
  problem('forbidden', `Missing permission ${permission}`);
}

export const requirePermission = (permission: Permission) =>
  createMiddleware<{ Variables: RbacVariables }>(async (c, next) => {
    const allowed = can(c.get('caller').permissions, permission);
    c.set('decision', { permission, allowed });
    if (!allowed) deny(c.get('caller'), permission);
    await next();
  });

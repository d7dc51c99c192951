// Delegated administration acts downward only: acting on another user
// (PUT /users/:id/roles, DELETE /users/:id/sessions, DELETE /users/:id/mfa,
// DELETE /users/:id) needs the actor's effective permissions to include every
// permission the target holds. One rule, here; the services call it inside
// their transaction, on the target's roles read there.
import type { AppServices } from '../deps.js';
import { problem } from '../lib/problem.js';
import { storeKeys } from '../store/store.js';
import { BASE_ROLE, firstNotHeld, type Grantor } from './permissions.js';

/**
 * The rule itself: refused (403 forbidden, audited as escalation_refused
 * naming the first permission missing, in catalogue order) unless the actor
 * holds every permission the target holds. Acting on oneself always passes.
 */
export function assertMayActOn(actor: Grantor, targetPermissions: Iterable<string>): void {
  const missing = firstNotHeld(actor, [...targetPermissions].sort());
  if (missing !== undefined) {
    problem('forbidden', `This user holds permission ${missing}, which you do not hold: you cannot act on them`, {
      audit: `escalation_refused: ${missing}`,
    });
  }
}

/**
 * Load the role map BEFORE the transaction (inside one, another query on the
 * embedded connection would wait forever); the returned check resolves the
 * target's effective permissions (guest's plus every role's) without I/O, so
 * it can run on the roles the transaction read.
 */
export async function mayActOnCheck(svc: AppServices, actor: Grantor): Promise<(targetRoles: readonly string[]) => void> {
  const permissionsOf = await svc.roleCache.snapshot(await svc.store.get(storeKeys.rolesVersion));
  return (targetRoles) => assertMayActOn(actor, permissionsOf([BASE_ROLE, ...targetRoles]));
}

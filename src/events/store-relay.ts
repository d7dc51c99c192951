// What each event changes in the shared store, so that every instance's hot
// path (session liveness, roles, the roles version) agrees with the database.
// Two ways to apply it:
// - right after the writer's commit (the fast path), from the event itself, as
//   the services published by hand before;
// - later, by the outbox relay on any instance, for events the writer could not
//   publish. Revocations are tombstones (never undone), so replaying one is
//   always safe. Roles are not: a late replay could overwrite a newer set
//   published meanwhile. So the relay writes the roles the database holds now,
//   and reads them again after writing: a newer change published before that
//   write committed before it, so the second read sees it and writes again.
import { inArray } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import { userRoles } from '../db/schema.js';
import type { RoleCache } from '../access/role-cache.js';
import { publishRevokedSessions, publishRolesChanged, publishUserRoles, type SessionStateOptions } from '../access/session-state.js';
import { storeKeys, type Store } from '../store/store.js';
import type { DomainEvent } from './events.js';

export type StoreRelayDeps = { db: Db; store: Store; session: SessionStateOptions; roleCache: RoleCache };

type Roles = { userId: string; roles: string[] };

async function currentRoles(db: Db, userIds: string[]): Promise<Roles[]> {
  const rows = await db.select().from(userRoles).where(inArray(userRoles.userId, userIds));
  return userIds.map((userId) => ({
    userId,
    roles: rows
      .filter((r) => r.userId === userId)
      .map((r) => r.roleName)
      .sort(),
  }));
}

const same = (a: Roles[], b: Roles[]) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Apply events to the store. `from: 'event'` publishes what the events say
 * (right after their commit); `from: 'database'` publishes roles as the
 * database holds them now (a late replay). Store failures are not thrown: the
 * caller compares `store.failedWrites` before and after.
 */
export async function applyToStore(deps: StoreRelayDeps, events: readonly DomainEvent[], from: 'event' | 'database'): Promise<void> {
  const revoked: string[] = [];
  const roles = new Map<string, string[]>();
  const deleted: string[] = [];
  let rolesChanged = false;
  for (const e of events) {
    switch (e.type) {
      case 'session.revoked':
        revoked.push(...e.sessionIds);
        break;
      case 'user.roles_changed':
        roles.set(e.userId, e.roles);
        break;
      case 'user.deleted':
        revoked.push(...e.sessionIds);
        deleted.push(e.userId);
        roles.delete(e.userId);
        break;
      case 'roles.permissions_changed':
        rolesChanged = true;
        break;
    }
  }
  const writes: Promise<void>[] = [];
  if (revoked.length) writes.push(publishRevokedSessions(deps.store, deps.session, revoked));
  // The deleted user's cached profile and roles go: no instance serves them any more.
  if (deleted.length) writes.push(deps.store.del(...deleted.flatMap((id) => [storeKeys.userProfile(id), storeKeys.userRoles(id)])));
  if (rolesChanged) {
    deps.roleCache.invalidate();
    writes.push(publishRolesChanged(deps.store));
  }
  if (roles.size) {
    if (from === 'event') {
      writes.push(
        publishUserRoles(
          deps.store,
          [...roles].map(([userId, r]) => ({ userId, roles: r })),
        ),
      );
    } else {
      writes.push(publishCurrentRoles(deps, [...roles.keys()]));
    }
  }
  await Promise.all(writes);
}

/** The users' roles as the database holds them, written until a read after the write agrees (bounded). */
async function publishCurrentRoles(deps: StoreRelayDeps, userIds: string[]): Promise<void> {
  let wrote = await currentRoles(deps.db, userIds);
  for (let i = 0; i < 5; i++) {
    await publishUserRoles(deps.store, wrote);
    const now = await currentRoles(deps.db, userIds);
    if (same(now, wrote)) return;
    wrote = now;
  }
  await publishUserRoles(deps.store, wrote);
}

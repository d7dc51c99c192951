// What each event changes in the shared store, so that every instance's hot
// path (session liveness, roles, the roles version, the cached profile) agrees
// with the database. Two ways to apply it:
// - right after the writer's commit (the fast path), from the event itself;
// - later, by the outbox relay on any instance, for events the writer could not
//   publish. Revocations are tombstones (never undone), so replaying one is
//   always safe. Roles and profiles are not: a late replay could overwrite a
//   newer value published meanwhile. So the relay writes what the database
//   holds now, and reads it again after writing: a newer change published
//   before that write committed before it, so the second read sees it and
//   writes again.
import { inArray } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import { oauthClients, userRoles, users } from '../db/schema.js';
import { type ClientRoles, parseClientRoles, publishClientRoles } from '../access/client-roles.js';
import { profileOf, publishUserProfiles, type CachedProfile } from '../access/profile-state.js';
import type { RoleCache } from '../access/role-cache.js';
import { publishRevokedSessions, publishRolesChanged, publishUserRoles, type SessionStateOptions } from '../access/session-state.js';
import { OAUTH_ACCESS_REVOKED, OAUTH_CLIENT_DELETED, oauthTombstoneTtlMs, storeKeys, type Store } from '../store/store.js';
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

/** Each user's profile as the database holds it, null for a user who is gone. */
async function currentProfiles(db: Db, userIds: string[]): Promise<{ userId: string; profile: CachedProfile | null }[]> {
  const rows = await db.select().from(users).where(inArray(users.id, userIds));
  return userIds.map((userId) => {
    const row = rows.find((r) => r.id === userId);
    return { userId, profile: row ? profileOf(row) : null };
  });
}

/** Each service client's roles as the database holds them, null for a client that is gone. */
async function currentClientRoles(db: Db, clientIds: string[]): Promise<ClientRoles[]> {
  const rows = await db
    .select({ id: oauthClients.id, roles: oauthClients.roles })
    .from(oauthClients)
    .where(inArray(oauthClients.id, clientIds));
  return clientIds.map((clientId) => {
    const row = rows.find((r) => r.id === clientId);
    return { clientId, roles: row ? parseClientRoles(row.roles) : null };
  });
}

/**
 * Apply events to the store. `from: 'event'` publishes what the events say
 * (right after their commit); `from: 'database'` publishes roles and profiles
 * as the database holds them now (a late replay). Store failures are not
 * thrown: the caller compares `store.failedWrites` before and after.
 */
export async function applyToStore(deps: StoreRelayDeps, events: readonly DomainEvent[], from: 'event' | 'database'): Promise<void> {
  const revoked = new Set<string>();
  const roles = new Map<string, string[]>();
  const profiles = new Map<string, CachedProfile | undefined>();
  const deleted: string[] = [];
  // Provider tombstones: like session revocations, never undone, so a replay is safe.
  const tombstones = new Map<string, string>();
  let rolesChanged = false;
  // Service clients whose current roles are published again (read from the database).
  const clientRoles = new Set<string>();
  for (const e of events) {
    switch (e.type) {
      case 'session.revoked':
        for (const id of e.sessionIds) revoked.add(id);
        break;
      case 'user.roles_changed':
        roles.set(e.userId, e.roles);
        break;
      case 'user.deleted':
        for (const id of e.sessionIds) revoked.add(id);
        deleted.push(e.userId);
        roles.delete(e.userId);
        profiles.delete(e.userId);
        break;
      case 'roles.permissions_changed':
        rolesChanged = true;
        break;
      case 'user.profile_changed':
        profiles.set(e.userId, from === 'event' ? e.profile : undefined);
        break;
      case 'mail.requested':
        // The mail relay's (mail-relay.ts).
        break;
      case 'oauth.access_revoked':
        for (const p of e.pairs)
          tombstones.set(storeKeys.oauthAccess(p.sessionId, p.clientId), e.at === undefined ? OAUTH_ACCESS_REVOKED : String(e.at));
        break;
      case 'oauth.client_changed': {
        clientRoles.add(e.clientId);
        if (e.rolesOnly === true && !e.deleted) break;
        const key = storeKeys.oauthClient(e.clientId);
        // A deletion wins over a change epoch met in the same batch.
        if (e.deleted || tombstones.get(key) === OAUTH_CLIENT_DELETED) tombstones.set(key, OAUTH_CLIENT_DELETED);
        else tombstones.set(key, String(e.at ?? Date.now()));
        break;
      }
    }
  }
  const writes: Promise<void>[] = [];
  if (revoked.size) writes.push(publishRevokedSessions(deps.store, deps.session, [...revoked]));
  if (tombstones.size) writes.push(deps.store.setMany([...tombstones], oauthTombstoneTtlMs(deps.session.accessTtlSeconds)));
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
      const userIds = [...roles.keys()];
      writes.push(
        publishCurrent(
          () => currentRoles(deps.db, userIds),
          (now) => publishUserRoles(deps.store, now),
        ),
      );
    }
  }
  if (clientRoles.size) {
    const ids = [...clientRoles];
    writes.push(
      publishCurrent(
        () => currentClientRoles(deps.db, ids),
        (now) => publishClientRoles(deps.store, now),
      ),
    );
  }
  if (profiles.size) {
    const known = [...profiles.values()].filter((p): p is CachedProfile => p !== undefined);
    if (known.length) writes.push(publishUserProfiles(deps.store, known));
    const userIds = [...profiles].filter(([, p]) => p === undefined).map(([userId]) => userId);
    if (userIds.length) {
      writes.push(
        publishCurrent(
          () => currentProfiles(deps.db, userIds),
          async (now) => {
            const present = now.flatMap((p) => (p.profile ? [p.profile] : []));
            const gone = now.filter((p) => p.profile === null).map((p) => storeKeys.userProfile(p.userId));
            await Promise.all([
              present.length ? publishUserProfiles(deps.store, present) : undefined,
              gone.length ? deps.store.del(...gone) : undefined,
            ]);
          },
        ),
      );
    }
  }
  await Promise.all(writes);
}

/** What the database holds, written until a read after the write agrees (bounded). */
async function publishCurrent<T>(read: () => Promise<T>, write: (value: T) => Promise<void>): Promise<void> {
  const same = (a: T, b: T) => JSON.stringify(a) === JSON.stringify(b);
  let wrote = await read();
  for (let i = 0; i < 5; i++) {
    await write(wrote);
    const now = await read();
    if (same(now, wrote)) return;
    wrote = now;
  }
  await write(wrote);
}

// Session liveness and user roles as the hot path sees them: read from the store
// (one round trip), filled from the database on a miss. The database stays the
// source of truth; the store is a cache that every instance shares.
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import { sessions, userRoles } from '../db/schema.js';
import { SESSION_REVOKED, storeKeys, sessionAlive, type Store } from '../store/store.js';

const ROLES_TTL_MS = 24 * 3600 * 1000;
const ALIVE_TTL_MS = 3600 * 1000;

export type SessionStateOptions = { accessTtlSeconds: number };

/** A tombstone must outlive every access token the session issued. */
const tombstoneTtl = (o: SessionStateOptions) => (o.accessTtlSeconds + 120) * 1000;

/** Whether the session is alive according to the database; caches the answer without overwriting. */
export async function loadSessionAlive(
  db: Db,
  store: Store,
  o: SessionStateOptions,
  sid: string,
  userId: string,
  nowMs: number,
): Promise<boolean> {
  const [row] = await db
    .select({ revokedAt: sessions.revokedAt, expiresAt: sessions.expiresAt })
    .from(sessions)
    .where(and(eq(sessions.id, sid), eq(sessions.userId, userId)));
  const alive = !!row && row.revokedAt === null && row.expiresAt.getTime() > nowMs;
  // NX: never overwrite a tombstone written by a revocation that raced this read.
  await store.set(storeKeys.session(sid), alive ? sessionAlive(userId) : SESSION_REVOKED, {
    ttlMs: alive ? Math.min(ALIVE_TTL_MS, row!.expiresAt.getTime() - nowMs) : tombstoneTtl(o),
    nx: true,
  });
  return alive;
}

export async function loadUserRoles(db: Db, store: Store, userId: string): Promise<string[]> {
  const rows = await db.select({ role: userRoles.roleName }).from(userRoles).where(eq(userRoles.userId, userId));
  const list = rows.map((r) => r.role).sort();
  await store.set(storeKeys.userRoles(userId), JSON.stringify(list), { ttlMs: ROLES_TTL_MS, nx: true });
  return list;
}

/** After the database commit: mark sessions dead for every instance. */
export async function publishRevokedSessions(store: Store, o: SessionStateOptions, sids: string[]): Promise<void> {
  await store.setMany(
    sids.map((sid) => [storeKeys.session(sid), SESSION_REVOKED]),
    tombstoneTtl(o),
  );
}

/**
 * A new or refreshed session is alive. NX: a revocation that raced this call
 * (a reused refresh token revoking the session) must win over it.
 */
export async function publishSessionAlive(store: Store, sid: string, userId: string, ttlMs: number): Promise<void> {
  await store.set(storeKeys.session(sid), sessionAlive(userId), { ttlMs: Math.min(ttlMs, ALIVE_TTL_MS), nx: true });
}

/**
 * Cache roles read during sign-in, unless present: a role change committed
 * meanwhile has already written the newer set, which must not be overwritten.
 */
export async function cacheUserRoles(store: Store, userId: string, roles: string[]): Promise<void> {
  await store.set(storeKeys.userRoles(userId), JSON.stringify([...roles].sort()), { ttlMs: ROLES_TTL_MS, nx: true });
}

/** After the database commit: the users' current roles for every instance. */
export async function publishUserRoles(store: Store, entries: { userId: string; roles: string[] }[]): Promise<void> {
  await store.setMany(
    entries.map((e) => [storeKeys.userRoles(e.userId), JSON.stringify([...e.roles].sort())]),
    ROLES_TTL_MS,
  );
}

/**
 * After a role or its permissions changed: every instance reloads its role
 * cache. A random version, not a counter: after Redis loses its data a counter
 * starts again and reaches a number an idle instance still holds, which would
 * then keep its old permission map; a random one never comes back.
 */
export async function publishRolesChanged(store: Store): Promise<void> {
  await store.set(storeKeys.rolesVersion, randomUUID());
}

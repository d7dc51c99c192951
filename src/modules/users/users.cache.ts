// The signed-in user's profile as GET /users/me serves it: kept in the store,
// read in the request's one store round trip (the route declares the read), so
// steady state needs no database query. Every profile change commits a
// user.profile_changed event, whose relay publishes the new one; a read from
// the database fills a miss without overwriting what a change wrote meanwhile
// (src/access/profile-state.ts).
import { eq } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { users } from '../../db/schema.js';
import type { StoreRead } from '../../access/caller.js';
import { cacheUserProfile, profileOf, type CachedProfile } from '../../access/profile-state.js';
import { hasSecondFactor } from '../../signin/rules.js';
import { storeKeys } from '../../store/store.js';

/** GET /users/me reads the caller's cached profile with the caller's own storeKeys. */
export const profileRead: StoreRead = { name: 'profile', key: (userId) => (userId === null ? null : storeKeys.userProfile(userId)) };

/** The cached profile of this user, or null (missing, unreadable or someone else's). */
export function parseProfile(raw: string | null | undefined, id: string): CachedProfile | null {
  if (raw == null) return null;
  try {
    const p = JSON.parse(raw) as CachedProfile;
    // A profile cached by an older version (no emailVerified, no hasPassword) is read again from the database.
    return p.id === id &&
      typeof p.email === 'string' &&
      typeof p.emailVerified === 'boolean' &&
      typeof p.hasPassword === 'boolean' &&
      typeof p.mfa === 'object'
      ? p
      : null;
  } catch {
    return null;
  }
}

/**
 * For the MFA_REQUIRED_ROLES policy (surfaces/api/mfa-policy.ts), by the sign-in
 * core's rule: from the cached profile (kept current by every factor change),
 * else the database.
 */
export async function hasSecondFactorNow(svc: AppServices, userId: string): Promise<boolean> {
  let profile = parseProfile(await svc.store.get(storeKeys.userProfile(userId)), userId);
  if (!profile) {
    const [row] = await svc.database.db.select().from(users).where(eq(users.id, userId));
    if (!row) return false;
    profile = profileOf(row);
    await cacheUserProfile(svc.store, profile);
  }
  return hasSecondFactor(profile.mfa);
}

type MeBody = { profile: string; roles: readonly string[]; permissions: ReadonlySet<string>; body: string };

/**
 * GET /users/me bodies already serialized, per user, valid while the cached
 * profile (the same stored string), the roles and the permission set (the
 * role cache's own instance, replaced whenever a role changes) are what they
 * were: the steady-state answer costs no JSON parse, build or stringify.
 */
export class MeBodies {
  private readonly byUser = new Map<string, MeBody>();
  constructor(private readonly max = 10_000) {}

  get(userId: string, profile: string | null | undefined, roles: readonly string[], permissions: ReadonlySet<string>): string | undefined {
    const e = this.byUser.get(userId);
    if (e === undefined || e.profile !== profile || e.permissions !== permissions || e.roles.length !== roles.length) return undefined;
    for (let i = 0; i < roles.length; i++) if (e.roles[i] !== roles[i]) return undefined;
    return e.body;
  }

  set(userId: string, entry: MeBody): void {
    this.byUser.delete(userId);
    this.byUser.set(userId, entry);
    if (this.byUser.size > this.max) {
      const oldest = this.byUser.keys().next().value;
      if (oldest !== undefined) this.byUser.delete(oldest);
    }
  }
}

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

export { cacheUserProfile, profileOf, type CachedProfile } from '../../access/profile-state.js';

/** GET /users/me reads the caller's cached profile with the caller's own storeKeys. */
export const profileRead: StoreRead = { name: 'profile', key: (userId) => (userId === null ? null : storeKeys.userProfile(userId)) };

/** The cached profile of this user, or null (missing, unreadable or someone else's). */
export function parseProfile(raw: string | null | undefined, id: string): CachedProfile | null {
  if (raw == null) return null;
  try {
    const p = JSON.parse(raw) as CachedProfile;
    // A profile cached by an older version (no emailVerified) is read again from the database.
    return p.id === id && typeof p.email === 'string' && typeof p.emailVerified === 'boolean' && typeof p.mfa === 'object' ? p : null;
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

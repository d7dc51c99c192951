// The signed-in user's profile as GET /users/me serves it: kept in the store,
// read in the request's one store round trip (the route declares the read), so
// steady state needs no database query. Every profile change publishes the new
// one after its commit; a read from the database fills a miss without
// overwriting what a change wrote meanwhile.
import { eq } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { users } from '../../db/schema.js';
import type { StoreRead } from '../../access/caller.js';
import { hasSecondFactor, secondFactorsOf, type SecondFactors } from '../../signin/rules.js';
import { storeKeys, type Store } from '../../store/store.js';

const PROFILE_TTL_MS = 24 * 3600 * 1000;

export type CachedProfile = {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string;
  mfa: SecondFactors;
  createdAt: string;
  updatedAt: string;
};

/** GET /users/me reads the caller's cached profile with the caller's own storeKeys. */
export const profileRead: StoreRead = { name: 'profile', key: (userId) => (userId === null ? null : storeKeys.userProfile(userId)) };

export function profileOf(u: {
  id: string;
  email: string;
  emailVerifiedAt: Date | null;
  name: string;
  totpEnabledAt: Date | null;
  passkeyCount: number;
  createdAt: Date | string;
  updatedAt: Date | string;
}): CachedProfile {
  return {
    id: u.id,
    email: u.email,
    emailVerified: u.emailVerifiedAt !== null,
    name: u.name,
    mfa: secondFactorsOf(u),
    createdAt: typeof u.createdAt === 'string' ? u.createdAt : u.createdAt.toISOString(),
    updatedAt: typeof u.updatedAt === 'string' ? u.updatedAt : u.updatedAt.toISOString(),
  };
}

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

/** Cache a profile read from the database, unless present (a newer one written after a commit wins). */
export async function cacheUserProfile(store: Store, p: CachedProfile): Promise<void> {
  await store.set(storeKeys.userProfile(p.id), JSON.stringify(p), { ttlMs: PROFILE_TTL_MS, nx: true });
}

/** After the database commit: the user's current profile for every instance. */
export async function publishUserProfile(store: Store, p: CachedProfile): Promise<void> {
  await store.setMany([[storeKeys.userProfile(p.id), JSON.stringify(p)]], PROFILE_TTL_MS);
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

// A user's profile as the hot path sees it (GET /users/me, and the MFA policy's
// "has a second factor"): kept in the store, filled from the database on a
// miss without overwriting, and published after each change's commit by the
// store relay (src/events/store-relay.ts), the way session-state.ts keeps
// session liveness and roles.
import { storeKeys, type Store } from '../store/store.js';

const PROFILE_TTL_MS = 24 * 3600 * 1000;

/** A user's second factors, as a user row or the cached profile (its `mfa`) tells them. */
export type SecondFactors = { totp: boolean; passkeys: number };

export const secondFactorsOf = (u: { totpEnabledAt: Date | null; passkeyCount: number }): SecondFactors => ({
  totp: u.totpEnabledAt !== null,
  passkeys: u.passkeyCount,
});

export type CachedProfile = {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string;
  mfa: SecondFactors;
  /** Whether the user has a password (false: signed up through an identity provider and set none); never the hash. */
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
};

/** The columns of a users row a profile is made of. */
export type ProfileRow = {
  id: string;
  email: string;
  emailVerifiedAt: Date | null;
  name: string;
  totpEnabledAt: Date | null;
  passkeyCount: number;
  passwordHash: string | null;
  createdAt: Date | string;
  updatedAt: Date | string;
};

export function profileOf(u: ProfileRow): CachedProfile {
  return {
    id: u.id,
    email: u.email,
    emailVerified: u.emailVerifiedAt !== null,
    name: u.name,
    mfa: secondFactorsOf(u),
    hasPassword: u.passwordHash !== null,
    createdAt: typeof u.createdAt === 'string' ? u.createdAt : u.createdAt.toISOString(),
    updatedAt: typeof u.updatedAt === 'string' ? u.updatedAt : u.updatedAt.toISOString(),
  };
}

/** Cache a profile read from the database, unless present (a newer one written after a commit wins). */
export async function cacheUserProfile(store: Store, p: CachedProfile): Promise<void> {
  await store.set(storeKeys.userProfile(p.id), JSON.stringify(p), { ttlMs: PROFILE_TTL_MS, nx: true });
}

/** After the database commit: the users' current profiles for every instance. */
export async function publishUserProfiles(store: Store, profiles: CachedProfile[]): Promise<void> {
  await store.setMany(
    profiles.map((p) => [storeKeys.userProfile(p.id), JSON.stringify(p)]),
    PROFILE_TTL_MS,
  );
}

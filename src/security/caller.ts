// Who is calling and what they may do, resolved in one store round trip:
// session liveness, current roles and profile, the roles version and the rate-limit hit.
import type { Db } from '../db/connect.js';
import { problem } from '../lib/problem.js';
import { SESSION_REVOKED, keys, sessionAlive, type Store, type WindowCount } from '../store/store.js';
import { BASE_ROLE, type Permission } from './permissions.js';
import type { RoleCache } from './role-cache.js';
import { loadSessionAlive, loadUserRoles, type SessionStateOptions } from './session-state.js';
import type { AccessClaims } from './tokens.js';

export type Caller = {
  userId: string | null;
  sessionId: string | null;
  /** The user's own roles (without the implicit guest role). */
  roles: readonly string[];
  /** Effective permissions: guest's plus every role's. */
  permissions: ReadonlySet<Permission>;
  /** The user's cached profile (JSON), read in the same round trip; null on a miss. */
  profile: string | null;
};

export type CallerContext = {
  db: Db;
  store: Store;
  roleCache: RoleCache;
  session: SessionStateOptions;
  now: () => number;
};

function parseRoles(raw: string | null): string[] | null {
  if (raw === null) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((r) => typeof r === 'string') ? v : null;
  } catch {
    return null;
  }
}

const NONE: readonly string[] = [];

/** Values of the extra keys asked for, by key (null: missing or unreadable). */
export type Prefetched = Readonly<Record<string, string | null>>;

function prefetched(extra: readonly string[], values: (string | null)[], from: number): Prefetched | undefined {
  if (extra.length === 0) return undefined;
  const out: Record<string, string | null> = {};
  for (let i = 0; i < extra.length; i++) out[extra[i]!] = values[from + i] ?? null;
  return out;
}

export async function resolveCaller(
  ctx: CallerContext,
  claims: AccessClaims | null,
  rate?: { key: string; windowMs: number },
  /** More keys to read in the same round trip, for the route's handler. */
  extra: readonly string[] = NONE,
): Promise<{ caller: Caller; rate?: WindowCount; prefetched?: Prefetched }> {
  if (!claims) {
    const { values, hit } = await ctx.store.batch({ gets: [keys.rolesVersion, ...extra], ...(rate ? { hit: rate } : {}) });
    const permissions = await ctx.roleCache.permissionsFor([BASE_ROLE], values[0] ?? null);
    return {
      caller: { userId: null, sessionId: null, roles: [], permissions, profile: null },
      ...(hit ? { rate: hit } : {}),
      ...(extra.length ? { prefetched: prefetched(extra, values, 1) } : {}),
    };
  }
  const { values, hit } = await ctx.store.batch({
    gets: [keys.session(claims.sid), keys.userRoles(claims.sub), keys.rolesVersion, keys.userProfile(claims.sub), ...extra],
    ...(rate ? { hit: rate } : {}),
  });
  const [sessionState, rolesRaw, version, profile] = values;
  const alive =
    sessionState === sessionAlive(claims.sub)
      ? true
      : sessionState === SESSION_REVOKED
        ? false
        : // Missing, or alive for another user: the database decides (sid and sub together).
          await loadSessionAlive(ctx.db, ctx.store, ctx.session, claims.sid, claims.sub, ctx.now());
  if (!alive) {
    problem('invalid_token', 'The session has ended', {
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
  }
  const roles = parseRoles(rolesRaw ?? null) ?? (await loadUserRoles(ctx.db, ctx.store, claims.sub));
  const permissions = await ctx.roleCache.permissionsFor([BASE_ROLE, ...roles], version ?? null);
  return {
    caller: { userId: claims.sub, sessionId: claims.sid, roles, permissions, profile: profile ?? null },
    ...(hit ? { rate: hit } : {}),
    ...(extra.length ? { prefetched: prefetched(extra, values, 4) } : {}),
  };
}

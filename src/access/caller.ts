// Who is calling and what they may do, resolved in one store round trip:
// session liveness, current roles, the roles version, the rate-limit hit, and
// whatever store values the route declared it needs.
import type { Db } from '../db/connect.js';
import { problem } from '../lib/problem.js';
import { SESSION_REVOKED, storeKeys, sessionAlive, type Store, type WindowCount } from '../store/store.js';
import { BASE_ROLE, type Permission } from '../security/permissions.js';
import type { RoleCache } from './role-cache.js';
import { loadClientRoles, parseClientRoles } from './client-roles.js';
import { loadSessionAlive, loadUserRoles, type SessionStateOptions } from './session-state.js';
import type { AccessClaims } from '../security/access-tokens.js';

/** A signed-in user, through one of their sessions (an access token's sub and sid). */
export type UserCaller = {
  kind: 'user';
  userId: string;
  sessionId: string;
  /** The user's own roles (without the implicit guest role). */
  roles: readonly string[];
  /** Effective permissions: guest's plus every role's. */
  permissions: ReadonlySet<Permission>;
};

/**
 * A service client acting for itself (a client_credentials token): judged by
 * its current roles plus guest. It never passes a user permission (see checkPermission).
 */
export type ClientCaller = {
  kind: 'client';
  clientId: string;
  /** The client's current roles (without the implicit guest role). */
  roles: readonly string[];
  permissions: ReadonlySet<Permission>;
};

/** No credentials: what the guest role may do. */
export type AnonymousCaller = {
  kind: 'anonymous';
  permissions: ReadonlySet<Permission>;
};

/** Who is calling. A route declared behind a user permission sees a UserCaller (see declareRoute). */
export type Caller = UserCaller | ClientCaller | AnonymousCaller;

/** The signed-in user behind the caller, if any (the audit log's actor, a store read's key). */
export const userIdOf = (caller: Caller): string | null => (caller.kind === 'user' ? caller.userId : null);

export type CallerContext = {
  db: Db;
  store: Store;
  roleCache: RoleCache;
  session: SessionStateOptions;
  now: () => number;
};

/**
 * A store value a route needs, read in the request's one store round trip
 * (declared with the route: `storeReads`). The key may depend on the caller;
 * null skips the read (an anonymous caller has no profile).
 */
export type StoreRead = { readonly name: string; key(userId: string | null): string | null };

/** The values of a route's declared reads, by name (null: missing, or skipped). */
export type StoreValues = Readonly<Record<string, string | null>>;

function parseRoles(raw: string | null): string[] | null {
  if (raw === null) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((r) => typeof r === 'string') ? v : null;
  } catch {
    return null;
  }
}

const NONE: readonly StoreRead[] = [];
const NO_VALUES: StoreValues = Object.freeze({});

export async function resolveCaller(
  ctx: CallerContext,
  claims: AccessClaims | null,
  rate?: { key: string; windowMs: number; batch?: number },
  reads: readonly StoreRead[] = NONE,
): Promise<{ caller: Caller; rate?: WindowCount; values: StoreValues }> {
  if (claims?.service === true) return resolveClient(ctx, claims, rate, reads);
  // The caller's own keys first, then the route's: one batch, one round trip.
  const own = claims ? [storeKeys.session(claims.sid), storeKeys.userRoles(claims.sub), storeKeys.rolesVersion] : [storeKeys.rolesVersion];
  const extra = reads.map((r) => r.key(claims?.sub ?? null));
  const gets = [...own, ...extra.filter((k): k is string => k !== null)];
  const { values, hit } = await ctx.store.batch({ gets, ...(rate ? { hit: rate } : {}) });
  let routeValues: StoreValues = NO_VALUES;
  if (reads.length > 0) {
    const out: Record<string, string | null> = {};
    let i = own.length;
    for (const [j, r] of reads.entries()) out[r.name] = extra[j] === null ? null : (values[i++] ?? null);
    routeValues = out;
  }
  if (!claims) {
    const permissions = await ctx.roleCache.permissionsFor([BASE_ROLE], values[0] ?? null);
    return { caller: { kind: 'anonymous', permissions }, ...(hit ? { rate: hit } : {}), values: routeValues };
  }
  const [sessionState, rolesRaw, version] = values;
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
    caller: { kind: 'user', userId: claims.sub, sessionId: claims.sid, roles, permissions },
    ...(hit ? { rate: hit } : {}),
    values: routeValues,
  };
}

/** A service client's token: its current roles and the roles version in the same one round trip (route reads see no user). */
async function resolveClient(
  ctx: CallerContext,
  claims: AccessClaims,
  rate: { key: string; windowMs: number; batch?: number } | undefined,
  reads: readonly StoreRead[],
): Promise<{ caller: Caller; rate?: WindowCount; values: StoreValues }> {
  const clientId = claims.sub;
  const own = [storeKeys.clientRoles(clientId), storeKeys.rolesVersion];
  const extra = reads.map((r) => r.key(null));
  const gets = [...own, ...extra.filter((k): k is string => k !== null)];
  const { values, hit } = await ctx.store.batch({ gets, ...(rate ? { hit: rate } : {}) });
  const out: Record<string, string | null> = {};
  let i = own.length;
  for (const [j, r] of reads.entries()) out[r.name] = extra[j] === null ? null : (values[i++] ?? null);
  const [rolesRaw, version] = values;
  const roles = parseClientRoles(rolesRaw) ?? (await loadClientRoles(ctx.db, ctx.store, clientId));
  if (roles === null) {
    problem('invalid_token', 'The client is gone', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
  }
  const permissions = await ctx.roleCache.permissionsFor([BASE_ROLE, ...roles], version ?? null);
  return {
    caller: { kind: 'client', clientId, roles, permissions },
    ...(hit ? { rate: hit } : {}),
    values: reads.length > 0 ? out : NO_VALUES,
  };
}

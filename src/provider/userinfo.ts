// The UserInfo endpoint's answer (OpenID Connect Core §5.3): a provider access
// token judged like the API judges its own (session liveness from the shared
// store, then the database), refused when its (session, client) pair or its
// client carries a tombstone; then `sub` and the claims of its scopes.
import type { AppServices } from '../deps.js';
import { loadSessionAlive } from '../access/session-state.js';
import { oauthError } from '../lib/oauth-error.js';
import { isUuid } from '../lib/cursor.js';
import { OAUTH_ACCESS_REVOKED, OAUTH_CLIENT_DELETED, SESSION_REVOKED, sessionAlive, storeKeys } from '../store/store.js';
import { findClient, type OAuthClient } from './clients.js';
import { loadClaimsSubject, scopeClaims, scopeList } from './id-token.js';
import { verifyProviderAccessToken } from './jwt.js';

type ProviderAccessClaims = NonNullable<Awaited<ReturnType<typeof verifyProviderAccessToken>>>;

const invalidToken = (description: string): never =>
  oauthError('invalid_token', description, 401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });

async function verified(svc: AppServices, token: string): Promise<ProviderAccessClaims> {
  let claims: ProviderAccessClaims | null = null;
  try {
    claims = await verifyProviderAccessToken(svc, token);
  } catch {
    // refused below
  }
  return claims ?? invalidToken('The access token is invalid or expired');
}

/** `sub` and the claims of the token's scopes; `onClient` learns the token's client as soon as it is known (its CORS origins). */
/**
 * Whether the (session, client) pair's tombstone refuses a token issued at
 * `iat` (seconds): OAUTH_ACCESS_REVOKED refuses all, a time (ms) those issued
 * up to then (iat is whole seconds: a token of that very second is refused too).
 */
export function revokedByTombstone(value: string | null | undefined, iat: number): boolean {
  if (value === null || value === undefined) return false;
  if (value === OAUTH_ACCESS_REVOKED) return true;
  const upToMs = Number(value);
  return !Number.isFinite(upToMs) || iat * 1000 <= upToMs;
}

export async function userinfo(
  svc: AppServices,
  token: string,
  onClient: (client: OAuthClient) => void = () => {},
): Promise<Record<string, unknown>> {
  const claims = await verified(svc, token);
  const { sub, sid, client_id: clientId } = claims;
  if (typeof sid !== 'string' || !isUuid(sid) || !isUuid(sub) || typeof clientId !== 'string') {
    return invalidToken('The access token names no user session');
  }
  const client = await findClient(svc, clientId);
  if (!client) return invalidToken('The client is gone');
  onClient(client);
  const { values } = await svc.store.batch({
    gets: [storeKeys.session(sid), storeKeys.oauthAccess(sid, clientId), storeKeys.oauthClient(clientId)],
  });
  const [sessionState, accessState, clientState] = values;
  if (clientState === OAUTH_CLIENT_DELETED || revokedByTombstone(accessState, claims.iat))
    return invalidToken('The access token was revoked');
  const alive =
    sessionState === sessionAlive(sub)
      ? true
      : sessionState === SESSION_REVOKED
        ? false
        : await loadSessionAlive(svc.database.db, svc.store, svc.sessionOptions, sid, sub, svc.clock());
  if (!alive) return invalidToken('The session has ended');
  const scopes = scopeList(typeof claims.scope === 'string' ? claims.scope : '');
  if (!scopes.includes('openid')) return invalidToken('The access token was not issued for openid');
  const user = await loadClaimsSubject(svc, sub);
  if (!user) return invalidToken('The account is gone');
  return { sub, ...scopeClaims(user, scopes) };
}

// The UserInfo endpoint's answer (OpenID Connect Core §5.3): a provider access
// token judged like the API judges its own (session liveness from the shared
// store, then the database), refused when its (session, client) pair or its
// client carries a tombstone; then `sub` and the claims of its scopes.
// Introspection judges access tokens the same way (liveAccessToken).
import type { AppServices } from '../deps.js';
import { loadSessionAlive } from '../access/session-state.js';
import { oauthError } from '../lib/oauth-error.js';
import { isUuid } from '../lib/cursor.js';
import { SESSION_REVOKED, sessionAlive, storeKeys } from '../store/store.js';
import { findClient, type OAuthClient } from './clients.js';
import { loadClaimsSubject, scopeClaims, scopeList } from './id-token.js';
import { providerTokenRevoked, verifyProviderAccessToken } from './jwt.js';
import type { ProviderAccessClaims } from '../security/access-tokens.js';

export type LiveAccess =
  | { live: true; claims: ProviderAccessClaims & { sid: string }; client: OAuthClient }
  | { live: false; reason: string };

/**
 * A user's provider access token that is still good: ours, unexpired, its
 * client still there, no tombstone, its session alive. `onClient` learns the
 * token's client as soon as it is known (whose CORS origins may read the answer).
 */
export async function liveAccessToken(
  svc: AppServices,
  token: string,
  onClient: (client: OAuthClient) => void = () => {},
): Promise<LiveAccess> {
  let claims: ProviderAccessClaims | null = null;
  try {
    claims = await verifyProviderAccessToken(svc, token);
  } catch {
    // not one of ours
  }
  if (!claims) return { live: false, reason: 'The access token is invalid or expired' };
  const { sub, sid, client_id: clientId } = claims;
  if (typeof sid !== 'string' || !isUuid(sid) || typeof sub !== 'string' || !isUuid(sub) || typeof clientId !== 'string') {
    return { live: false, reason: 'The access token names no user session' };
  }
  const client = await findClient(svc, clientId);
  if (!client) return { live: false, reason: 'The client is gone' };
  onClient(client);
  const [revoked, sessionState] = await Promise.all([providerTokenRevoked(svc, claims), svc.store.get(storeKeys.session(sid))]);
  if (revoked) return { live: false, reason: 'The access token was revoked' };
  const alive =
    sessionState === sessionAlive(sub)
      ? true
      : sessionState === SESSION_REVOKED
        ? false
        : await loadSessionAlive(svc.database.db, svc.store, svc.sessionOptions, sid, sub, svc.clock());
  if (!alive) return { live: false, reason: 'The session has ended' };
  return { live: true, claims: { ...claims, sid }, client };
}

const invalidToken = (description: string): never =>
  oauthError('invalid_token', description, 401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });

/** `sub` and the claims of the token's scopes. */
export async function userinfo(
  svc: AppServices,
  token: string,
  onClient: (client: OAuthClient) => void = () => {},
): Promise<Record<string, unknown>> {
  const access = await liveAccessToken(svc, token, onClient);
  if (!access.live) return invalidToken(access.reason);
  const { sub, scope } = access.claims;
  const scopes = scopeList(typeof scope === 'string' ? scope : '');
  if (!scopes.includes('openid')) return invalidToken('The access token was not issued for openid');
  const user = await loadClaimsSubject(svc, sub);
  if (!user) return invalidToken('The account is gone');
  return { sub, ...scopeClaims(user, scopes) };
}

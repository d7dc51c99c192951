// Token revocation (RFC 7009) and introspection (RFC 7662) for authenticated
// clients. Revoking a refresh or access token revokes the authorization it
// belongs to (every token of that sign-in for that client); a token the
// client cannot revoke, or that is unknown, changes nothing and is answered
// alike (RFC 7009 §2.2), so that no client learns of another's tokens.
// Introspection says `active: false` for anything not live this very request.
import { and, eq, isNull } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { oauthAuthorizations, oauthRefreshTokens } from '../db/schema.js';
import { hashOpaqueToken } from '../security/opaque-tokens.js';
import { liveSession, revokeAuthorizations } from './authorizations.js';
import type { OAuthClient } from './clients.js';
import { liveAccessToken } from './userinfo.js';
import { revokeServiceToken, serviceIntrospection, serviceTokenClaims, serviceTokenLive } from './introspection.js';

/** A refresh token is opaque base64url; a provider access token is a compact JWS. */
const looksLikeJwt = (token: string) => token.split('.').length === 3;

async function refreshTokenRow(svc: AppServices, token: string) {
  const [found] = await svc.database.db
    .select({ token: oauthRefreshTokens, authorization: oauthAuthorizations })
    .from(oauthRefreshTokens)
    .innerJoin(oauthAuthorizations, eq(oauthAuthorizations.id, oauthRefreshTokens.authorizationId))
    .where(eq(oauthRefreshTokens.tokenHash, hashOpaqueToken(token)));
  return found ?? null;
}

export async function revokeToken(svc: AppServices, client: OAuthClient, token: string): Promise<void> {
  if (looksLikeJwt(token)) {
    const service = await serviceTokenClaims(svc, token);
    if (service) return revokeServiceToken(svc, client.id, service);
    const access = await liveAccessToken(svc, token);
    if (!access.live || access.client.id !== client.id) return;
    const { sid } = access.claims;
    await svc.tx(async (tx, emit) => {
      const rows = await tx
        .select({ id: oauthAuthorizations.id })
        .from(oauthAuthorizations)
        .where(
          and(eq(oauthAuthorizations.sessionId, sid), eq(oauthAuthorizations.clientId, client.id), isNull(oauthAuthorizations.revokedAt)),
        );
      await revokeAuthorizations(
        tx,
        emit,
        rows.map((r) => r.id),
        new Date(svc.clock()),
      );
    });
    return;
  }
  const found = await refreshTokenRow(svc, token);
  if (!found || found.authorization.clientId !== client.id) return;
  await svc.tx((tx, emit) => revokeAuthorizations(tx, emit, [found.authorization.id], new Date(svc.clock())));
}

export type Introspection = { active: false } | ({ active: true } & Record<string, unknown>);

const INACTIVE: Introspection = { active: false };

/** What the client may know of a token: one issued to it, or (an access token) naming it among its audiences. */
export async function introspectToken(svc: AppServices, client: OAuthClient, token: string): Promise<Introspection> {
  if (looksLikeJwt(token)) {
    const service = await serviceTokenClaims(svc, token);
    if (service) {
      if (service.client_id !== client.id && !service.aud.includes(client.id)) return INACTIVE;
      return (await serviceTokenLive(svc, service)) ? serviceIntrospection(service) : INACTIVE;
    }
    const access = await liveAccessToken(svc, token);
    if (!access.live) return INACTIVE;
    const c = access.claims;
    if (c.client_id !== client.id && !c.aud.includes(client.id)) return INACTIVE;
    return {
      active: true,
      token_type: 'Bearer',
      scope: c.scope,
      client_id: c.client_id,
      sub: c.sub,
      sid: c.sid,
      aud: c.aud,
      iss: c.iss,
      jti: c.jti,
      iat: c.iat,
      exp: c.exp,
    };
  }
  const found = await refreshTokenRow(svc, token);
  if (!found) return INACTIVE;
  const { token: row, authorization } = found;
  const now = new Date(svc.clock());
  if (authorization.clientId !== client.id || authorization.revokedAt !== null) return INACTIVE;
  if (row.spentAt !== null || row.expiresAt.getTime() <= now.getTime()) return INACTIVE;
  const session = await liveSession(svc.database.db, authorization.sessionId, authorization.userId, now);
  if (!session) return INACTIVE;
  return {
    active: true,
    token_type: 'refresh_token',
    scope: authorization.scopes,
    client_id: authorization.clientId,
    sub: authorization.userId,
    sid: authorization.sessionId,
    iss: svc.config.publicUrl,
    iat: Math.floor(row.createdAt.getTime() / 1000),
    exp: Math.floor(row.expiresAt.getTime() / 1000),
  };
}

// Authorizations: what one code exchange started (a session, a user, a client
// and the scopes granted), and the refresh tokens that carry it on. Revoking
// one marks it, deletes its refresh tokens and emits `oauth.access_revoked`,
// so that its access tokens die on the next request on every instance.
import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import type { Tx } from '../db/tx.js';
import { oauthAuthorizations, oauthRefreshTokens, sessions } from '../db/schema.js';
import type { Emit } from '../events/outbox.js';
import { hashOpaqueToken, newOpaqueToken } from '../security/opaque-tokens.js';

export type Authorization = typeof oauthAuthorizations.$inferSelect;

export type NewAuthorization = {
  sessionId: string;
  userId: string;
  clientId: string;
  grantId: string | null;
  /** Space-separated. */
  scopes: string;
};

export async function createAuthorization(tx: Tx, input: NewAuthorization, now: Date): Promise<Authorization> {
  const [row] = await tx
    .insert(oauthAuthorizations)
    .values({ ...input, createdAt: now })
    .returning();
  return row!;
}

/**
 * A new refresh token of the authorization (256 random bits, stored as
 * SHA-256), living REFRESH_TOKEN_TTL_SECONDS but never past its session.
 */
export async function issueRefreshToken(
  tx: Tx,
  authorizationId: string,
  opts: { now: Date; ttlSeconds: number; sessionExpiresAt: Date },
): Promise<string> {
  const token = newOpaqueToken();
  const expiresAt = Math.min(opts.now.getTime() + opts.ttlSeconds * 1000, opts.sessionExpiresAt.getTime());
  await tx.insert(oauthRefreshTokens).values({
    tokenHash: hashOpaqueToken(token),
    authorizationId,
    createdAt: opts.now,
    expiresAt: new Date(expiresAt),
  });
  return token;
}

/** The session's row when it is alive (not ended, not expired) and the user's. */
export async function liveSession(tx: Tx | Db, sessionId: string, userId: string, now: Date) {
  const [row] = await tx
    .select()
    .from(sessions)
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId)));
  return row && row.revokedAt === null && row.expiresAt.getTime() > now.getTime() ? row : null;
}

/**
 * Revoke authorizations (idempotent): every refresh token under them goes, and
 * the access tokens of each (session, client) pair are refused from the next request.
 */
export async function revokeAuthorizations(tx: Tx, emit: Emit, ids: string[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  const rows = await tx
    .update(oauthAuthorizations)
    .set({ revokedAt: now })
    .where(and(inArray(oauthAuthorizations.id, ids), isNull(oauthAuthorizations.revokedAt)))
    .returning({ sessionId: oauthAuthorizations.sessionId, clientId: oauthAuthorizations.clientId });
  await tx.delete(oauthRefreshTokens).where(inArray(oauthRefreshTokens.authorizationId, ids));
  if (rows.length > 0) await emit({ type: 'oauth.access_revoked', pairs: rows, at: now.getTime() });
}

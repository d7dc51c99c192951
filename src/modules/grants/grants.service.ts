// Connected apps: what a user allowed OAuth clients (oauth_grants), seen and
// revoked by the user. Revoking a grant revokes everything issued under it:
// the client's authorizations for the user, their refresh tokens at once,
// and their access tokens on the next request (oauth.access_revoked).
import { and, desc, eq, isNull } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { oauthAuthorizations, oauthClients, oauthGrants } from '../../db/schema.js';
import { revokeAuthorizations } from '../../provider/authorizations.js';
import { problem } from '../../lib/problem.js';
import type { GrantView } from './grants.schemas.js';

export async function listGrants(svc: AppServices, userId: string): Promise<GrantView[]> {
  const rows = await svc.database.db
    .select({
      clientId: oauthGrants.clientId,
      clientName: oauthClients.name,
      scopes: oauthGrants.scopes,
      createdAt: oauthGrants.createdAt,
      updatedAt: oauthGrants.updatedAt,
    })
    .from(oauthGrants)
    .innerJoin(oauthClients, eq(oauthClients.id, oauthGrants.clientId))
    .where(eq(oauthGrants.userId, userId))
    .orderBy(desc(oauthGrants.updatedAt), oauthGrants.clientId);
  return rows.map((r) => ({
    clientId: r.clientId,
    clientName: r.clientName,
    scopes: r.scopes.split(' ').filter(Boolean),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  }));
}

/**
 * DELETE /users/me/grants/:clientId: forget the consent and revoke every
 * token the client holds for this user, in every session. 404
 * client_not_found when the user has no grant for it and nothing issued.
 */
export async function revokeGrant(svc: AppServices, userId: string, clientId: string): Promise<void> {
  const now = new Date(svc.clock());
  const found = await svc.tx(async (tx, emit) => {
    const grants = await tx
      .delete(oauthGrants)
      .where(and(eq(oauthGrants.userId, userId), eq(oauthGrants.clientId, clientId)))
      .returning({ id: oauthGrants.id });
    const live = await tx
      .select({ id: oauthAuthorizations.id })
      .from(oauthAuthorizations)
      .where(
        and(eq(oauthAuthorizations.userId, userId), eq(oauthAuthorizations.clientId, clientId), isNull(oauthAuthorizations.revokedAt)),
      );
    await revokeAuthorizations(
      tx,
      emit,
      live.map((r) => r.id),
      now,
    );
    return grants.length > 0 || live.length > 0;
  });
  if (!found) problem('client_not_found', 'You have not connected this app');
}

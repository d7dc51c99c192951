// Grants: what a user allowed a client (OpenID Connect Core 3.1.2.4), one row
// per user and client. Allowing more scopes later widens the same grant.
import { and, eq } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { oauthGrants } from '../db/schema.js';
import { scopeList, scopeString } from './scopes.js';

export type Grant = { id: string; userId: string; clientId: string; scopes: string[] };

export async function findGrant(svc: Pick<AppServices, 'database'>, userId: string, clientId: string): Promise<Grant | null> {
  const [row] = await svc.database.db
    .select()
    .from(oauthGrants)
    .where(and(eq(oauthGrants.userId, userId), eq(oauthGrants.clientId, clientId)));
  return row ? { id: row.id, userId: row.userId, clientId: row.clientId, scopes: scopeList(row.scopes) } : null;
}

/** Whether the grant covers every one of these scopes. */
export const grantCovers = (grant: Grant | null, scopes: readonly string[]) =>
  grant !== null && scopes.every((s) => grant.scopes.includes(s));

/** Remember that the user allowed these scopes (added to what they allowed before); returns the grant's id. */
export async function allowScopes(
  svc: Pick<AppServices, 'tx' | 'clock'>,
  userId: string,
  clientId: string,
  scopes: readonly string[],
): Promise<string> {
  const now = new Date(svc.clock());
  return svc.tx(async (tx) => {
    // First allowance: one row per user and client (a concurrent first one makes this a no-op, then widens it below).
    const [created] = await tx
      .insert(oauthGrants)
      .values({ userId, clientId, scopes: scopeString(scopes), createdAt: now, updatedAt: now })
      .onConflictDoNothing({ target: [oauthGrants.userId, oauthGrants.clientId] })
      .returning({ id: oauthGrants.id });
    if (created) return created.id;
    const [row] = await tx
      .select()
      .from(oauthGrants)
      .where(and(eq(oauthGrants.userId, userId), eq(oauthGrants.clientId, clientId)));
    const held = scopeList(row!.scopes);
    if (scopes.some((s) => !held.includes(s))) {
      await tx
        .update(oauthGrants)
        .set({ scopes: scopeString([...new Set([...held, ...scopes])]), updatedAt: now })
        .where(eq(oauthGrants.id, row!.id));
    }
    return row!.id;
  });
}

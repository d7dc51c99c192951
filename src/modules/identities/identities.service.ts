// A user's external identities (API.md "Sign-in with external identity
// providers"): listing them, unlinking one after the step-up, and the rule
// that an account keeps at least one way to sign in. Linking is the
// external sign-in flow's (signin/upstream).
import { and, asc, eq } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { identityProviders, userIdentities, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { problem } from '../../lib/problem.js';
import { assertReauthenticated, type StepUpCaller, type StepUpProof } from '../../signin/codes.js';
import { queueSecurityNotice } from '../auth/email.service.js';
import type { ExportedIdentity, IdentityView } from './identities.schemas.js';

const LAST_METHOD =
  'This is the last way to sign in to the account: set a password (POST /auth/password/forgot), add a passkey or link another provider first';

/**
 * 409 last_sign_in_method unless the user, as the caller's transaction now
 * sees them, can still sign in: a password, a passkey, or an identity at an
 * enabled provider (one at a disabled provider signs nobody in today). Called
 * after the removal in the same transaction, so under SERIALIZABLE two removals
 * of the last two methods cannot both pass.
 */
export async function assertSignInMethodLeft(tx: Tx, userId: string): Promise<void> {
  const [u] = await tx
    .select({ passwordHash: users.passwordHash, passkeyCount: users.passkeyCount })
    .from(users)
    .where(eq(users.id, userId));
  if (!u || u.passwordHash !== null || u.passkeyCount > 0) return;
  const [usable] = await tx
    .select({ id: userIdentities.id })
    .from(userIdentities)
    .innerJoin(identityProviders, eq(identityProviders.id, userIdentities.providerId))
    .where(and(eq(userIdentities.userId, userId), eq(identityProviders.enabled, true)))
    .limit(1);
  if (!usable) problem('last_sign_in_method', LAST_METHOD);
}

/** GET /users/me/identities: oldest link first. */
export async function listIdentities(svc: AppServices, userId: string): Promise<IdentityView[]> {
  const rows = await svc.database.db
    .select({
      id: userIdentities.id,
      provider: userIdentities.providerId,
      providerName: identityProviders.name,
      email: userIdentities.email,
      linkedAt: userIdentities.linkedAt,
      lastUsedAt: userIdentities.lastUsedAt,
    })
    .from(userIdentities)
    .innerJoin(identityProviders, eq(identityProviders.id, userIdentities.providerId))
    .where(eq(userIdentities.userId, userId))
    .orderBy(asc(userIdentities.linkedAt), asc(userIdentities.id));
  return rows.map((r) => ({ ...r, linkedAt: r.linkedAt.toISOString(), lastUsedAt: r.lastUsedAt?.toISOString() ?? null }));
}

/** The account export's `identities`: the provider, the address it gave and the dates; nothing of the provider's tokens. */
export async function* identitiesForExport(svc: AppServices, userId: string): AsyncGenerator<ExportedIdentity> {
  for (const i of await listIdentities(svc, userId)) {
    yield { provider: i.provider, email: i.email, linkedAt: i.linkedAt, lastUsedAt: i.lastUsedAt };
  }
}

/**
 * DELETE /users/me/identities/:id: after the step-up (checked first: nothing
 * is told or done without it), the link goes, unless it is the account's last
 * way to sign in (409), and the owner is told by mail in the same
 * transaction. Sessions signed in through it stay (as a password change is
 * needed to end them). Returns the provider's id, for the audit entry.
 */
export async function unlinkIdentity(
  svc: AppServices,
  caller: StepUpCaller & { userId: string },
  id: string,
  given: StepUpProof,
): Promise<{ provider: string }> {
  const { userId } = caller;
  const [row] = await svc.database.db.select().from(users).where(eq(users.id, userId));
  if (!row) problem('not_found', 'No such user');
  await assertReauthenticated(svc, row, given, caller);
  const now = new Date(svc.clock());
  return svc.tx(async (tx, emit) => {
    const [gone] = await tx
      .delete(userIdentities)
      .where(and(eq(userIdentities.id, id), eq(userIdentities.userId, userId)))
      .returning({ providerId: userIdentities.providerId, email: userIdentities.email });
    if (!gone) problem('not_found', 'No such identity of yours');
    await assertSignInMethodLeft(tx, userId);
    const [provider] = await tx
      .select({ name: identityProviders.name })
      .from(identityProviders)
      .where(eq(identityProviders.id, gone.providerId));
    const [owner] = await tx.select({ email: users.email }).from(users).where(eq(users.id, userId));
    const which = `${provider?.name ?? gone.providerId}${gone.email ? ` (${gone.email})` : ''}`;
    await queueSecurityNotice(
      tx,
      emit,
      svc,
      owner?.email ?? row.email,
      `the sign-in with ${which} was unlinked from the account`,
      caller.ip,
      now,
    );
    return { provider: gone.providerId };
  });
}

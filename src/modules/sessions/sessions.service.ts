// A user's sessions (one per sign-in; each ends with its whole refresh chain):
// listed for their owner, ended one by one, all but the current one, or all of
// them by an administrator. revokeSessions is where every session ends, here
// and in the other modules (logout, password change, MFA reset, …): each end
// is committed with its session.revoked event, which the store learns right
// after (src/events), so it is in force on the next request on every instance.
import { and, desc, eq, gt, isNull, ne } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { sessions, userRoles, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import type { Emit } from '../../events/outbox.js';
import { problem } from '../../lib/problem.js';
import { queueBackchannelLogouts } from '../../provider/backchannel.js';
import { mayActOnCheck } from '../../security/delegation.js';
import type { Grantor } from '../../security/permissions.js';
import type { SessionView } from './sessions.schemas.js';

/** The newest sessions listed; a user with more sees these (older ones can still be ended all at once). */
export const SESSION_LIST_MAX = 100;

const live = (now: Date) => and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now));

export async function listSessions(svc: AppServices, userId: string, currentSid: string | null): Promise<SessionView[]> {
  const now = new Date(svc.clock());
  const rows = await svc.database.db
    .select()
    .from(sessions)
    .where(and(eq(sessions.userId, userId), live(now)))
    .orderBy(desc(sessions.createdAt), desc(sessions.id))
    .limit(SESSION_LIST_MAX);
  return rows.map((s) => ({
    id: s.id,
    createdAt: s.createdAt.toISOString(),
    lastRefreshedAt: s.lastRefreshedAt?.toISOString() ?? null,
    expiresAt: s.expiresAt.toISOString(),
    ip: s.ip,
    userAgent: s.userAgent,
    current: s.id === currentSid,
  }));
}

/** Why a session ended: kept with it (the data export shows it) and one of these only. */
export type RevocationReason =
  | 'logout'
  | 'refresh_token_reused'
  | 'ended_by_user'
  | 'ended_by_admin'
  | 'password_changed'
  | 'password_reset'
  | 'passkey_added'
  | 'mfa_reset'
  | 'user_deleted'
  /** An identity provider proved the account's email, which the account never had: whoever holds it may not own it. */
  | 'email_claimed';

/** Which sessions end. */
export type SessionsToEnd =
  /** One session, whoever's. Its end is emitted even when it had ended already: ending it again publishes that again. */
  | { sessionId: string }
  /**
   * A user's sessions not ended yet: all of them, `only` one, or all `except`
   * one (the caller's own). `unexpired`: leave the expired ones as they are
   * (the sessions a user sees listed).
   */
  | { userId: string; only?: string; except?: string | null; unexpired?: boolean };

/**
 * The one place sessions end: in the caller's transaction, with the reason,
 * and the session.revoked event that makes every instance refuse them.
 * Returns the ids that ended.
 */
export async function revokeSessions(tx: Tx, emit: Emit, which: SessionsToEnd, reason: RevocationReason, now: Date): Promise<string[]> {
  const where =
    'sessionId' in which
      ? eq(sessions.id, which.sessionId)
      : and(
          eq(sessions.userId, which.userId),
          which.only !== undefined ? eq(sessions.id, which.only) : undefined,
          which.except != null ? ne(sessions.id, which.except) : undefined,
          which.unexpired ? gt(sessions.expiresAt, now) : undefined,
        );
  const rows = await tx
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(where, isNull(sessions.revokedAt)))
    .returning({ id: sessions.id });
  const ids = 'sessionId' in which ? [which.sessionId] : rows.map((r) => r.id);
  if (ids.length) await emit({ type: 'session.revoked', sessionIds: ids });
  // The clients these sessions signed into hear of their end (once: only the sessions that ended now).
  await queueBackchannelLogouts(
    tx,
    emit,
    rows.map((r) => r.id),
    now,
  );
  return rows.map((r) => r.id);
}

/**
 * End the live sessions of a user that match `which`; returns the ids that
 * ended. `guard` runs first in the same transaction (and may refuse).
 */
async function endSessions(
  svc: AppServices,
  userId: string,
  which: { only?: string; except?: string },
  reason: RevocationReason,
  guard?: (tx: Tx) => Promise<void>,
): Promise<string[]> {
  const now = new Date(svc.clock());
  return svc.tx(async (tx, emit) => {
    if (guard) await guard(tx);
    return revokeSessions(tx, emit, { userId, ...which, unexpired: true }, reason, now);
  });
}

/** DELETE /users/me/sessions/:id: one of the caller's own live sessions (the current one too). */
export async function endOwnSession(svc: AppServices, userId: string, sessionId: string): Promise<void> {
  const ended = await endSessions(svc, userId, { only: sessionId }, 'ended_by_user');
  if (ended.length === 0) problem('not_found', 'No such session');
}

/** DELETE /users/me/sessions: every session of the caller but the current one. */
export async function endOtherSessions(svc: AppServices, userId: string, currentSid: string): Promise<number> {
  return (await endSessions(svc, userId, { except: currentSid }, 'ended_by_user')).length;
}

/**
 * DELETE /users/:id/sessions: every session of that user, if the actor holds
 * every permission the user holds (checked on the roles read in the same
 * transaction: an admin's sessions are out of a delegate's reach).
 */
export async function endAllSessions(svc: AppServices, actor: Grantor, userId: string): Promise<number> {
  const mayActOn = await mayActOnCheck(svc, actor);
  const ended = await endSessions(svc, userId, {}, 'ended_by_admin', async (tx) => {
    const [u] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId));
    if (!u) problem('not_found', 'No such user');
    const held = await tx.select({ roleName: userRoles.roleName }).from(userRoles).where(eq(userRoles.userId, userId));
    mayActOn(held.map((r) => r.roleName));
  });
  return ended.length;
}

// What every change of a user's second factors ends with, in its transaction:
// TOTP turned on or off, a passkey added or removed, an administrator's reset.
// Kept apart from mfa.service and passkeys.service so both call it without
// importing each other.
import type { AppServices } from '../../deps.js';
import type { users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { profileChanged } from '../../events/events.js';
import type { Emit } from '../../events/outbox.js';
import { queueSecurityNotice } from '../auth/email.service.js';
import { dropOrphanRecoveryCodes } from '../passkeys/passkeys.removal.js';
import { revokeSessions, type RevocationReason } from '../sessions/sessions.service.js';

type UserRow = typeof users.$inferSelect;

export type FactorChange = {
  /** What the owner is told, by mail to the account's address. */
  notice: string;
  ip: string;
  now: Date;
  /** Sessions signed in before the change end too: all of them, or all but `except` (the caller's own). */
  endSessions?: { reason: RevocationReason; except?: string | null };
};

/**
 * After a second factor changed (`user` is the row as the change left it):
 * with no factor left the recovery codes go, the owner is told, sessions end
 * when asked, and every instance learns the new profile.
 */
export async function factorChanged(tx: Tx, emit: Emit, svc: AppServices, user: UserRow, change: FactorChange): Promise<void> {
  await dropOrphanRecoveryCodes(tx, user);
  await queueSecurityNotice(tx, emit, svc, user.email, change.notice, change.ip, change.now);
  if (change.endSessions) {
    await revokeSessions(tx, emit, { userId: user.id, except: change.endSessions.except ?? null }, change.endSessions.reason, change.now);
  }
  await emit(profileChanged(user));
}

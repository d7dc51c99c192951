// Removing passkeys inside another change's transaction (a password change or
// reset that also removes them). Kept apart from passkeys.service so the mail
// and users modules can call it without importing that service back.
import { eq } from 'drizzle-orm';
import { passkeys, recoveryCodes, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';

type UserRow = typeof users.$inferSelect;

/** With no second factor left, the recovery codes go too (they recover a factor). */
export async function dropOrphanRecoveryCodes(tx: Tx, u: { id: string; totpEnabledAt: Date | null; passkeyCount: number }): Promise<void> {
  if (u.totpEnabledAt === null && u.passkeyCount <= 0) await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, u.id));
}

/**
 * Every passkey of the user, in the caller's transaction: the rows, the count
 * (0) and orphaned recovery codes. Returns the user row as it now is and how
 * many passkeys went (the caller tells the owner when any did).
 */
export async function removeEveryPasskey(tx: Tx, userId: string, now: Date): Promise<{ user: UserRow; removed: number }> {
  const gone = await tx.delete(passkeys).where(eq(passkeys.userId, userId)).returning({ id: passkeys.id });
  const [u] = await tx.update(users).set({ passkeyCount: 0, updatedAt: now }).where(eq(users.id, userId)).returning();
  await dropOrphanRecoveryCodes(tx, u!);
  return { user: u!, removed: gone.length };
}

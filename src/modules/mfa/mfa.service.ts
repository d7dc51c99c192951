// TOTP enrolment (pending secret, confirm, disable), recovery codes, and an
// admin's reset of a user's second factors. The sign-in's MFA step is the
// sign-in core's (src/signin/mfa-step.ts, second-factor.ts).
import { and, eq, isNull } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { passkeys, recoveryCodes, totpFactors, userRoles, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { problem } from '../../lib/problem.js';
import { passwordAttempts, verifyWithinLimits } from '../../security/password-attempts.js';
import { SUPER_ROLE, type Grantor } from '../../security/permissions.js';
import { mayActOnCheck } from '../../security/delegation.js';
import { newRecoveryCodes } from '../../security/recovery-codes.js';
import { matchTotp, newTotpSecret, totpUri } from '../../security/totp.js';
import { queueSecurityNotice } from '../auth/email.service.js';
import { factorChanged } from './mfa.factors.js';
import { assertReauthenticated, type StepUpProof } from '../../signin/codes.js';

type UserRow = typeof users.$inferSelect;

async function userRow(svc: AppServices, userId: string): Promise<UserRow> {
  const [row] = await svc.database.db.select().from(users).where(eq(users.id, userId));
  if (!row) problem('not_found', 'No such user');
  return row;
}

/** A new set of recovery codes replaces the old one, in the caller's transaction. */
async function replaceRecoveryCodes(tx: Tx, userId: string, now: Date): Promise<string[]> {
  const { codes, hashes } = newRecoveryCodes();
  await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  await tx.insert(recoveryCodes).values(hashes.map((codeHash) => ({ codeHash, userId, createdAt: now })));
  return codes;
}

/**
 * POST /users/me/mfa/totp: a pending secret (not in force until confirmed); a
 * new call replaces a pending one. Already on: 409 mfa_already_enabled.
 */
export async function enrolTotp(
  svc: AppServices,
  caller: { userId: string; sessionId: string; ip: string },
  given: StepUpProof,
): Promise<{ secret: string; otpauthUri: string }> {
  const row = await userRow(svc, caller.userId);
  if (row.totpEnabledAt !== null) problem('mfa_already_enabled', 'TOTP is already on: turn it off first to enrol a new device');
  await assertReauthenticated(svc, row, given, caller);
  const secret = newTotpSecret();
  const sealed = svc.secrets.seal(secret, row.id);
  const now = new Date(svc.clock());
  const stored = await svc.tx((tx) =>
    tx
      .insert(totpFactors)
      .values({ userId: row.id, secretSealed: sealed, createdAt: now })
      .onConflictDoUpdate({
        target: totpFactors.userId,
        set: { secretSealed: sealed, createdAt: now, lastUsedStep: null },
        // A confirmed secret is never replaced this way.
        setWhere: isNull(totpFactors.confirmedAt),
      })
      .returning({ userId: totpFactors.userId }),
  );
  if (stored.length === 0) problem('mfa_already_enabled', 'TOTP is already on: turn it off first to enrol a new device');
  return { secret, otpauthUri: totpUri(secret, row.email, svc.config.webauthn.rpName) };
}

/**
 * POST /users/me/mfa/totp/confirm: the first code turns TOTP on; the recovery
 * codes are shown this once. The code is checked within the sign-in limits
 * like every code: a wrong one counts as a failed sign-in of the account (past
 * the limit: 429, even for a right code). With endOtherSessions, every other
 * session of the user (signed in with the password alone) ends too.
 */
export async function confirmTotp(
  svc: AppServices,
  caller: { userId: string; sessionId: string | null; ip: string },
  given: { code: string; endOtherSessions?: boolean | undefined },
): Promise<{ recoveryCodes: string[] }> {
  const { userId } = caller;
  const db = svc.database.db;
  const [factor] = await db.select().from(totpFactors).where(eq(totpFactors.userId, userId));
  if (!factor) problem('mfa_not_enabled', 'No TOTP enrolment is pending: POST /users/me/mfa/totp first');
  if (factor.confirmedAt !== null) problem('mfa_already_enabled', 'TOTP is already on');
  let opened: { plain: string; stale: boolean };
  try {
    opened = svc.secrets.openChecked(factor.secretSealed, userId);
  } catch {
    // Sealed under a key no longer configured (MFA_ENCRYPTION_KEY rotated): the enrolment is lost, not the service.
    problem('mfa_not_enabled', 'The pending enrolment can no longer be read: POST /users/me/mfa/totp to start again');
  }
  const row = await userRow(svc, userId);
  // Set by the check (a let assigned in a callback is not narrowed).
  let step = null as number | null;
  await verifyWithinLimits(
    passwordAttempts(svc),
    { email: row.email, ip: caller.ip },
    async () => {
      step = matchTotp(opened.plain, given.code.replace(/\s/g, ''), svc.clock());
      return step !== null;
    },
    'mfa_locked',
  );
  if (step === null) {
    problem('invalid_mfa_code', 'The code does not match: check the device’s clock and try the current code', {
      status: 400,
      audit: 'mfa_failed',
    });
  }
  const spent = step;
  const now = new Date(svc.clock());
  const codes = await svc.tx(async (tx, emit) => {
    // The secret confirmed is the one the code was checked against, and its step is spent.
    const done = await tx
      .update(totpFactors)
      // A secret sealed under a previous key is sealed again under the current one.
      .set({ confirmedAt: now, lastUsedStep: spent, ...(opened.stale ? { secretSealed: svc.secrets.seal(opened.plain, userId) } : {}) })
      .where(and(eq(totpFactors.userId, userId), isNull(totpFactors.confirmedAt), eq(totpFactors.secretSealed, factor.secretSealed)))
      .returning({ userId: totpFactors.userId });
    if (done.length === 0) problem('invalid_mfa_code', 'The enrolment changed meanwhile: start again', { status: 400 });
    const [u] = await tx.update(users).set({ totpEnabledAt: now, updatedAt: now }).where(eq(users.id, userId)).returning();
    await factorChanged(tx, emit, svc, u!, {
      notice: 'an authenticator app (TOTP) was turned on as a second sign-in step, with new recovery codes',
      ip: caller.ip,
      now,
      // The sessions signed in before, with the password alone; the caller's own stays.
      ...(given.endOtherSessions === true ? { endSessions: { reason: 'ended_by_user', except: caller.sessionId } } : {}),
    });
    return replaceRecoveryCodes(tx, userId, now);
  });
  return { recoveryCodes: codes };
}

/** DELETE /users/me/mfa/totp: the password and a code (TOTP or recovery). Not on: 409 mfa_not_enabled. */
export async function disableTotp(
  svc: AppServices,
  caller: { userId: string; sessionId: string; ip: string },
  given: StepUpProof,
): Promise<void> {
  const row = await userRow(svc, caller.userId);
  if (row.totpEnabledAt === null) problem('mfa_not_enabled', 'TOTP is not on');
  await assertReauthenticated(svc, row, given, caller);
  const now = new Date(svc.clock());
  await svc.tx(async (tx, emit) => {
    await tx.delete(totpFactors).where(eq(totpFactors.userId, row.id));
    const [u] = await tx.update(users).set({ totpEnabledAt: null, updatedAt: now }).where(eq(users.id, row.id)).returning();
    await factorChanged(tx, emit, svc, u!, { notice: 'the authenticator app (TOTP) was turned off', ip: caller.ip, now });
  });
}

/** POST /users/me/mfa/recovery-codes: a new set; the old codes stop working. Needs a second factor. */
export async function regenerateRecoveryCodes(
  svc: AppServices,
  caller: { userId: string; sessionId: string; ip: string },
  given: StepUpProof,
): Promise<{ recoveryCodes: string[] }> {
  const row = await userRow(svc, caller.userId);
  if (row.totpEnabledAt === null && row.passkeyCount === 0) {
    problem('mfa_not_enabled', 'Recovery codes stand in for a second factor: turn TOTP on or add a passkey first');
  }
  await assertReauthenticated(svc, row, given, caller);
  const now = new Date(svc.clock());
  const codes = await svc.tx(async (tx, emit) => {
    await queueSecurityNotice(
      tx,
      emit,
      svc,
      row.email,
      'a new set of recovery codes was made (the old ones no longer work)',
      caller.ip,
      now,
    );
    return replaceRecoveryCodes(tx, row.id, now);
  });
  return { recoveryCodes: codes };
}

/**
 * DELETE /users/:id/mfa: TOTP, recovery codes and passkeys of a user who lost
 * them go, and every session of theirs ends. Only an admin resets an admin,
 * and nobody resets a user holding a permission they do not hold.
 */
export async function resetMfa(svc: AppServices, grantor: Grantor, userId: string, ip: string): Promise<void> {
  const now = new Date(svc.clock());
  const mayActOn = await mayActOnCheck(svc, grantor);
  await svc.tx(async (tx, emit) => {
    const [row] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId));
    if (!row) problem('not_found', 'No such user');
    const held = (await tx.select({ roleName: userRoles.roleName }).from(userRoles).where(eq(userRoles.userId, userId))).map(
      (r) => r.roleName,
    );
    if (held.includes(SUPER_ROLE) && !grantor.roles.includes(SUPER_ROLE)) {
      problem('forbidden', 'Only a holder of the admin role may reset an admin’s second factors', { audit: 'escalation_refused: admin' });
    }
    mayActOn(held);
    await tx.delete(totpFactors).where(eq(totpFactors.userId, userId));
    await tx.delete(passkeys).where(eq(passkeys.userId, userId));
    const [u] = await tx
      .update(users)
      .set({ totpEnabledAt: null, passkeyCount: 0, updatedAt: now })
      .where(eq(users.id, userId))
      .returning();
    // With no factor left, the tail removes the recovery codes too.
    await factorChanged(tx, emit, svc, u!, {
      notice: 'an administrator removed every second factor (authenticator app, recovery codes, passkeys) and ended your sessions',
      ip,
      now,
      endSessions: { reason: 'mfa_reset' },
    });
  });
}

// Spending a second-factor code (a TOTP code or a recovery code) and the
// re-authentication that sensitive changes need (the current password, plus a
// code when TOTP is on; a recent sign-in for a user without a password). Every check runs within the sign-in limits, so codes
// cannot be guessed faster than passwords.
import { and, eq, isNotNull, isNull, lt, or } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { recoveryCodes, sessions, totpFactors, type users } from '../db/schema.js';
import { problem } from '../lib/problem.js';
import { passwordAttempts, verifyWithinLimits } from '../security/password-attempts.js';
import { verifyPassword } from '../security/passwords.js';
import { hashRecoveryCode, normalizeRecoveryCode } from '../security/recovery-codes.js';
import { matchTotp } from '../security/totp.js';
import { requestMail } from '../events/mail-relay.js';
import { codeReusedMessage, mailContextOf } from '../adapters/mail/templates.js';
import { storeKeys } from '../store/store.js';

type UserRow = typeof users.$inferSelect;
export type CodeKind = 'totp' | 'recovery_code';

const TOTP_CODE = /^\d{6}$/;

/**
 * Seal `sealed` (this user's, opened as stale) again under the current key,
 * unless it changed meanwhile (key rotation: modules/mfa/mfa.reseal.ts).
 */
export async function resealTotpSecret(svc: AppServices, userId: string, sealed: string, plain: string): Promise<boolean> {
  const done = await svc.database.db
    .update(totpFactors)
    .set({ secretSealed: svc.secrets.seal(plain, userId) })
    .where(and(eq(totpFactors.userId, userId), eq(totpFactors.secretSealed, sealed)))
    .returning({ userId: totpFactors.userId });
  return done.length > 0;
}

/** The user's confirmed TOTP secret, opened, or null. */
export async function confirmedTotpSecret(svc: AppServices, userId: string): Promise<string | null> {
  const [row] = await svc.database.db
    .select({ sealed: totpFactors.secretSealed })
    .from(totpFactors)
    .where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.confirmedAt)));
  if (!row) return null;
  let opened: { plain: string; stale: boolean };
  try {
    opened = svc.secrets.openChecked(row.sealed, userId);
  } catch (err) {
    // Sealed under a key that is neither MFA_ENCRYPTION_KEY nor a previous one: nobody's code can be checked until it is restored.
    svc.logger.error({ err, userId }, 'a TOTP secret does not open with MFA_ENCRYPTION_KEY (was the key changed?)');
    return problem(
      'service_unavailable',
      'Codes from the authenticator app cannot be checked right now: use a recovery code, or try later',
    );
  }
  if (opened.stale) {
    // Best effort: the code is checked either way, and the next use or start tries again.
    await resealTotpSecret(svc, userId, row.sealed, opened.plain).catch((err: unknown) =>
      svc.logger.warn({ err, userId }, 'a TOTP secret could not be sealed again under MFA_ENCRYPTION_KEY'),
    );
  }
  return opened.plain;
}

/** Whose code it is, and from where: a reused code is told to the owner's address. */
export type CodeOwner = { userId: string; email: string; ip: string };

/** How long after a reuse notice the next reuse of that user's codes is not mailed again. */
const REUSE_NOTICE_WINDOW_MS = 15 * 60_000;

/**
 * A right code whose time step was the last one accepted was entered again
 * (ASVS 2.8.5): refused by the caller, and told to the owner by mail, at most
 * once per window (each reuse also counts as a failed sign-in). A code older
 * than the last accepted one is just refused.
 */
async function tellOfReusedCode(svc: AppServices, who: CodeOwner, step: number, now: Date): Promise<void> {
  const [row] = await svc.database.db
    .select({ lastUsedStep: totpFactors.lastUsedStep })
    .from(totpFactors)
    .where(eq(totpFactors.userId, who.userId));
  if (row?.lastUsedStep !== step) return;
  if (!(await svc.store.set(storeKeys.mfaReuseNotice(who.userId), '1', { nx: true, ttlMs: REUSE_NOTICE_WINDOW_MS }))) return;
  const message = codeReusedMessage(who.email, mailContextOf(svc.config.publicUrl, who.ip, now));
  await svc.tx((tx, emit) =>
    requestMail(tx, emit, { ...message, kind: 'security_notice', expiresAt: new Date(now.getTime() + 7 * 86_400_000) }, now),
  );
}

/**
 * Use one code of this user: a TOTP code whose time step is newer than the
 * last one accepted (claimed with a conditional update, so two instances
 * cannot both accept a step), or an unused recovery code (marked used the
 * same way). Returns what it was, or null when it is wrong or already used.
 */
export async function spendCode(svc: AppServices, who: CodeOwner, code: string): Promise<CodeKind | null> {
  const { userId } = who;
  const now = svc.clock();
  const compact = code.replace(/\s/g, '');
  if (TOTP_CODE.test(compact)) {
    const secret = await confirmedTotpSecret(svc, userId);
    const step = secret === null ? null : matchTotp(secret, compact, now);
    if (step === null) return null;
    const claimed = await svc.tx((tx) =>
      tx
        .update(totpFactors)
        .set({ lastUsedStep: step })
        .where(
          and(
            eq(totpFactors.userId, userId),
            isNotNull(totpFactors.confirmedAt),
            or(isNull(totpFactors.lastUsedStep), lt(totpFactors.lastUsedStep, step)),
          ),
        )
        .returning({ userId: totpFactors.userId }),
    );
    if (claimed.length > 0) return 'totp';
    // The code is refused whatever happens to the notice.
    await tellOfReusedCode(svc, who, step, new Date(now)).catch((err: unknown) =>
      svc.logger.warn({ err, userId }, 'the notice of a reused TOTP code could not be queued'),
    );
    return null;
  }
  const normalized = normalizeRecoveryCode(code);
  if (normalized === null) return null;
  const used = await svc.tx((tx) =>
    tx
      .update(recoveryCodes)
      .set({ usedAt: new Date(now) })
      .where(and(eq(recoveryCodes.codeHash, hashRecoveryCode(normalized)), eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)))
      .returning({ userId: recoveryCodes.userId }),
  );
  return used.length > 0 ? 'recovery_code' : null;
}

/**
 * A code within the sign-in limits of this account and address: a wrong code
 * counts as a failed sign-in (past the limit: 429, even for a right code).
 */
export async function spendCodeWithinLimits(
  svc: AppServices,
  who: { userId: string; email: string; ip: string },
  code: string,
): Promise<CodeKind | null> {
  let kind: CodeKind | null = null;
  await verifyWithinLimits(
    passwordAttempts(svc),
    who,
    async () => {
      kind = await spendCode(svc, who, code);
      return kind !== null;
    },
    'mfa_locked',
  );
  return kind;
}

const STEP_UP_HINT = 'TOTP is on: give a code from the authenticator app (or a recovery code) as `code`';

/** What a step-up request carries: the current password (absent for a user who has none) and a code. */
export type StepUpProof = { currentPassword?: string | undefined; code?: string | undefined };

/** Who asks: the address (for the sign-in limits) and the session of the request (for a passwordless user). */
export type StepUpCaller = { ip: string; sessionId: string };

/**
 * How a route answers a user who has a password but sent none: as its schema
 * did when currentPassword was required (400 validation_failed), or as
 * PUT /users/me always has (403 current_password_required).
 */
export type MissingPassword = 'validation_failed' | 'current_password_required';

/** The second factors an MFA step records in a session's amr: a sign-in that included one needs no code again. */
const SECOND_FACTOR_AMR = new Set(['otp', 'hwk']);

function passwordMissing(answer: MissingPassword): never {
  if (answer === 'current_password_required') {
    problem('current_password_required', 'This change needs currentPassword');
  }
  // The same answer as the schema gave when the field was required.
  problem('validation_failed', 'The request body is not valid', {
    errors: [{ path: 'currentPassword', message: 'Invalid input: expected string, received undefined' }],
  });
}

/**
 * A user without a password (signed up through an identity provider) proves
 * a sensitive change with a recent sign-in instead: the request's session
 * began within REAUTH_MAX_AGE_SECONDS (else 403 reauthentication_required:
 * sign in again). With TOTP on, a code is asked too, unless that sign-in
 * already included a second factor (its amr has otp or hwk): the MFA step of
 * a few minutes ago is the same proof the code would be. currentPassword, if
 * sent, is ignored (there is none to check).
 */
async function assertRecentSignIn(svc: AppServices, row: UserRow, given: StepUpProof, caller: StepUpCaller): Promise<void> {
  const [session] = await svc.database.db
    .select({ createdAt: sessions.createdAt, amr: sessions.amr })
    .from(sessions)
    .where(and(eq(sessions.id, caller.sessionId), eq(sessions.userId, row.id)));
  const maxAgeMs = svc.config.reauthMaxAgeSeconds * 1000;
  if (!session || svc.clock() - session.createdAt.getTime() > maxAgeMs) {
    problem(
      'reauthentication_required',
      `This account has no password: sign in again (a sign-in less than ${svc.config.reauthMaxAgeSeconds} seconds old confirms it is you)`,
      { audit: 'reauthentication_required' },
    );
  }
  if (row.totpEnabledAt === null) return;
  if (session.amr.split(',').some((v) => SECOND_FACTOR_AMR.has(v))) return;
  if (given.code === undefined) problem('mfa_code_required', STEP_UP_HINT, { audit: 'mfa_code_required' });
  const kind = await spendCodeWithinLimits(svc, { userId: row.id, email: row.email, ip: caller.ip }, given.code);
  if (kind === null) problem('invalid_mfa_code', 'The code is wrong or was already used', { status: 403, audit: 'mfa_failed' });
}

/**
 * The step-up of a sensitive change (API.md "Reauthentication"). A user with
 * a password gives the current one, and with TOTP on a code as well (a stolen
 * password, or a stolen token and password, is not enough). Both are checked
 * as one attempt under the sign-in limits (same counters), so a right
 * password does not reset the count of wrong codes. Wrong password: 403
 * invalid_credentials; wrong code: 403 invalid_mfa_code; no password sent:
 * `missing`. A user without a password proves a recent sign-in instead
 * (assertRecentSignIn).
 */
export async function assertReauthenticated(
  svc: AppServices,
  row: UserRow,
  given: StepUpProof,
  caller: StepUpCaller,
  missing: MissingPassword = 'validation_failed',
): Promise<void> {
  const { passwordHash } = row;
  if (passwordHash === null) return assertRecentSignIn(svc, row, given, caller);
  const currentPassword = given.currentPassword;
  if (currentPassword === undefined) passwordMissing(missing);
  const stepUp = row.totpEnabledAt !== null;
  if (stepUp && given.code === undefined) problem('mfa_code_required', STEP_UP_HINT, { audit: 'mfa_code_required' });
  let passwordOk = false;
  const ok = await verifyWithinLimits(
    passwordAttempts(svc),
    { email: row.email, ip: caller.ip },
    async () => {
      passwordOk = await verifyPassword(passwordHash, currentPassword);
      // No code is spent on a wrong password.
      if (!passwordOk || !stepUp) return passwordOk;
      return (await spendCode(svc, { userId: row.id, email: row.email, ip: caller.ip }, given.code!)) !== null;
    },
    'current_password_locked',
  );
  if (ok) return;
  if (!passwordOk) problem('invalid_credentials', 'The current password is wrong', { status: 403, audit: 'current_password_failed' });
  problem('invalid_mfa_code', 'The code is wrong or was already used', { status: 403, audit: 'mfa_failed' });
}

/** A code alone, where the contract asks for one without a password (a password reset with TOTP on). */
export async function assertCode(svc: AppServices, row: UserRow, code: string | undefined, ip: string): Promise<void> {
  if (row.totpEnabledAt === null) return;
  if (code === undefined) problem('mfa_code_required', STEP_UP_HINT, { audit: 'mfa_code_required' });
  const kind = await spendCodeWithinLimits(svc, { userId: row.id, email: row.email, ip }, code);
  if (kind === null) problem('invalid_mfa_code', 'The code is wrong or was already used', { status: 403, audit: 'mfa_failed' });
}

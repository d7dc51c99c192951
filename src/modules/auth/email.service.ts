// Mail-driven account flows: email verification, password reset, and the mails
// an email change sends. Tokens are single-use opaque tokens (only their hash is
// stored), one per user and kind (a newer one replaces the older), bound to the
// address they were sent to. Mail is written to the outbox in the transaction
// of the change that causes it; forgot-password and resend do all their work
// after the response, so neither the answer nor its timing tells whether the
// account exists.
import { and, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { emailTokens, sessions, users } from '../../db/schema.js';
import { withTx, type Tx } from '../../db/tx.js';
import { enqueueMail } from '../../adapters/mail/outbox.js';
import {
  emailChangedMessage,
  mailContextOf,
  resetPasswordMessage,
  verifyEmailMessage,
  type MailContext,
  type MailKind,
  securityNoticeMessage,
} from '../../adapters/mail/templates.js';
import { problem } from '../../lib/problem.js';
import { clearAccountLockout, passwordAttempts } from '../../security/password-attempts.js';
import { hashPassword } from '../../security/passwords.js';
import { hashOpaqueToken, newOpaqueToken } from '../../security/opaque-tokens.js';
import { publishRevokedSessions } from '../../security/session-state.js';
import { storeKeys } from '../../store/store.js';
import { profileOf, publishUserProfile } from '../users/users.cache.js';
import { assertPasswordNotCommon, rolesOf, toUser } from '../users/users.service.js';
import { assertCode } from '../mfa/mfa.codes.js';
import { removeEveryPasskey } from '../passkeys/passkeys.removal.js';
import type { User } from '../users/users.schemas.js';

type TokenKind = 'verify_email' | 'reset_password';

const ttlOf = (svc: AppServices, kind: TokenKind) =>
  kind === 'verify_email' ? svc.config.emailVerificationTtlSeconds : svc.config.passwordResetTtlSeconds;

/** The service as mail names it: the host of PUBLIC_URL. */
export function mailContext(svc: AppServices, ip: string, now: Date): MailContext {
  return mailContextOf(svc.config.publicUrl, ip, now);
}

const linkFor = (template: string, token: string) => template.replaceAll('{token}', encodeURIComponent(token));

/**
 * Count one mail of this kind to this address; false past MAIL_PER_ADDRESS_PER_HOUR
 * (the mail is then not sent, and nothing says so to the requester).
 */
export async function mayMail(svc: AppServices, kind: MailKind, email: string): Promise<boolean> {
  const w = await svc.store.hit(storeKeys.mailAddress(kind, email), 3600_000);
  if (w.count > svc.config.mail.perAddressPerHour) {
    svc.logger.info({ kind }, 'mail not sent: per-address limit reached');
    return false;
  }
  return true;
}

/** A new token of this kind for the user, replacing older ones (and dropping expired ones). */
async function issueToken(
  tx: Tx,
  svc: AppServices,
  userId: string,
  kind: TokenKind,
  email: string,
  now: Date,
): Promise<{ token: string; expiresAt: Date }> {
  const token = newOpaqueToken();
  const expiresAt = new Date(now.getTime() + ttlOf(svc, kind) * 1000);
  await tx.delete(emailTokens).where(and(eq(emailTokens.userId, userId), or(eq(emailTokens.kind, kind), lt(emailTokens.expiresAt, now))));
  await tx.insert(emailTokens).values({ tokenHash: hashOpaqueToken(token), userId, kind, email, createdAt: now, expiresAt });
  return { token, expiresAt };
}

/** Inside the transaction that created or changed the address: its verification token and mail. */
export async function queueVerificationMail(
  tx: Tx,
  svc: AppServices,
  user: { id: string; email: string },
  ip: string,
  now: Date,
): Promise<void> {
  const { token, expiresAt } = await issueToken(tx, svc, user.id, 'verify_email', user.email, now);
  const link = linkFor(svc.config.mail.verifyEmailUrl, token);
  const message = verifyEmailMessage(user.email, link, svc.config.emailVerificationTtlSeconds, mailContext(svc, ip, now));
  await enqueueMail(tx, { ...message, kind: 'verify_email', expiresAt }, now);
}

/** Inside an email change's transaction: a notice (no link) to the old address. */
export async function queueEmailChangedNotice(
  tx: Tx,
  svc: AppServices,
  oldEmail: string,
  newEmail: string,
  ip: string,
  now: Date,
): Promise<void> {
  const message = emailChangedMessage(oldEmail, newEmail, mailContext(svc, ip, now));
  await enqueueMail(tx, { ...message, kind: 'email_changed', expiresAt: new Date(now.getTime() + 7 * 86_400_000) }, now);
}

/**
 * Inside the transaction of a change to how the account signs in: a notice to
 * its owner (no link), so a factor added or removed by someone else is seen.
 */
export async function queueSecurityNotice(tx: Tx, svc: AppServices, to: string, change: string, ip: string, now: Date): Promise<void> {
  const message = securityNoticeMessage(to, change, mailContext(svc, ip, now));
  await enqueueMail(tx, { ...message, kind: 'security_notice', expiresAt: new Date(now.getTime() + 7 * 86_400_000) }, now);
}

/** Spend a token of this kind: the row it was, or a 400 (unknown, spent, expired). */
async function spendToken(tx: Tx, kind: TokenKind, token: string, now: Date) {
  const [row] = await tx
    .delete(emailTokens)
    .where(and(eq(emailTokens.tokenHash, hashOpaqueToken(token)), eq(emailTokens.kind, kind), gt(emailTokens.expiresAt, now)))
    .returning();
  if (!row) problem('invalid_email_token', 'This link is unknown, already used or expired', { audit: 'email_token_invalid' });
  return row;
}

/** POST /auth/verify-email. */
export async function verifyEmail(svc: AppServices, token: string): Promise<User> {
  const now = new Date(svc.clock());
  const row = await withTx(
    svc.database.db,
    async (tx) => {
      const t = await spendToken(tx, 'verify_email', token, now);
      const [u] = await tx
        .update(users)
        .set({ emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, ${now.toISOString()}::timestamptz)`, updatedAt: now })
        // The address changed since this link was sent: it proves nothing now.
        .where(and(eq(users.id, t.userId), eq(users.email, t.email)))
        .returning();
      if (!u) problem('invalid_email_token', 'This link is unknown, already used or expired', { audit: 'email_token_invalid' });
      return u;
    },
    { retries: svc.metrics.txRetries },
  );
  await publishUserProfile(svc.store, profileOf(row));
  const roles = (await rolesOf(svc.database.db, [row.id])).get(row.id) ?? [];
  return toUser(row, roles);
}

/** POST /auth/verify-email/resend, after the response: a new link if the account exists and is unverified. */
export async function resendVerification(svc: AppServices, email: string, ip: string): Promise<void> {
  if (svc.config.emailVerification === 'off') return;
  if (!(await mayMail(svc, 'verify_email', email))) return;
  const now = new Date(svc.clock());
  const queued = await withTx(
    svc.database.db,
    async (tx) => {
      const [u] = await tx
        .select({ id: users.id, email: users.email })
        .from(users)
        .where(and(eq(users.email, email), isNull(users.emailVerifiedAt)));
      if (!u) return false;
      await queueVerificationMail(tx, svc, u, ip, now);
      return true;
    },
    { retries: svc.metrics.txRetries },
  );
  if (queued) svc.outbox.wake();
}

/** POST /auth/password/forgot, after the response: a reset link if the account exists. */
export async function requestPasswordReset(svc: AppServices, email: string, ip: string): Promise<void> {
  if (!(await mayMail(svc, 'reset_password', email))) return;
  const now = new Date(svc.clock());
  const queued = await withTx(
    svc.database.db,
    async (tx) => {
      const [u] = await tx.select({ id: users.id, email: users.email }).from(users).where(eq(users.email, email));
      if (!u) return false;
      const { token, expiresAt } = await issueToken(tx, svc, u.id, 'reset_password', u.email, now);
      const link = linkFor(svc.config.mail.resetPasswordUrl, token);
      const message = resetPasswordMessage(u.email, link, svc.config.passwordResetTtlSeconds, mailContext(svc, ip, now));
      await enqueueMail(tx, { ...message, kind: 'reset_password', expiresAt }, now);
      return true;
    },
    { retries: svc.metrics.txRetries },
  );
  if (queued) svc.outbox.wake();
}

/**
 * POST /auth/password/reset: a new password for the token's account. Every
 * session ends, the lockout is cleared and the address counts as verified
 * (the mail reached it). No tokens are issued: the user signs in anew.
 */
export async function resetPassword(
  svc: AppServices,
  input: { token: string; password: string; code?: string | undefined; removePasskeys?: boolean | undefined },
  ip: string,
): Promise<{ userId: string }> {
  const now = new Date(svc.clock());
  const db = svc.database.db;
  // A cheap look first: a bad token costs no password hash.
  const [known] = await db
    .select({ userId: emailTokens.userId })
    .from(emailTokens)
    .where(
      and(eq(emailTokens.tokenHash, hashOpaqueToken(input.token)), eq(emailTokens.kind, 'reset_password'), gt(emailTokens.expiresAt, now)),
    );
  if (!known) problem('invalid_email_token', 'This link is unknown, already used or expired', { audit: 'email_token_invalid' });
  await assertPasswordNotCommon(input.password);
  // With TOTP on, the mailbox alone is not enough: a code too (the token stays usable when it is wrong).
  const [holder] = await db.select().from(users).where(eq(users.id, known.userId));
  if (holder) await assertCode(svc, holder, input.code, ip);
  const passwordHash = await hashPassword(input.password, svc.config.argon2);
  const { user, ended } = await withTx(
    db,
    async (tx) => {
      const t = await spendToken(tx, 'reset_password', input.token, now);
      const [u] = await tx
        .update(users)
        .set({
          passwordHash,
          emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, ${now.toISOString()}::timestamptz)`,
          updatedAt: now,
        })
        .where(and(eq(users.id, t.userId), eq(users.email, t.email)))
        .returning();
      if (!u) problem('invalid_email_token', 'This link is unknown, already used or expired', { audit: 'email_token_invalid' });
      const rows = await tx
        .update(sessions)
        .set({ revokedAt: now, revokedReason: 'password_reset' })
        .where(and(eq(sessions.userId, u.id), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id });
      if (!input.removePasskeys) return { user: u, ended: rows.map((r) => r.id) };
      const { user, removed } = await removeEveryPasskey(tx, u.id, now);
      if (removed > 0) await queueSecurityNotice(tx, svc, u.email, 'the password was reset and every passkey was removed', ip, now);
      return { user, ended: rows.map((r) => r.id) };
    },
    { retries: svc.metrics.txRetries },
  );
  if (input.removePasskeys) svc.outbox.wake();
  await Promise.all([
    ended.length ? publishRevokedSessions(svc.store, svc.sessionOptions, ended) : Promise.resolve(),
    publishUserProfile(svc.store, profileOf(user)),
    clearAccountLockout(passwordAttempts(svc), user.email),
  ]);
  return { userId: user.id };
}

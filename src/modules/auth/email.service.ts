// Mail-driven account flows: email verification, password reset, and the mails
// an email change sends. Tokens are single-use opaque tokens (only their hash is
// stored), one per user and kind (a newer one replaces the older), bound to the
// address they were sent to. Mail is written to the outbox in the transaction
// of the change that causes it; forgot-password and resend do all their work
// after the response, so neither the answer nor its timing tells whether the
// account exists.
import { and, desc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { emailTokens, sessions, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { profileChanged } from '../../events/events.js';
import { requestMail } from '../../events/mail-relay.js';
import type { Emit } from '../../events/outbox.js';
import {
  accountExistsMessage,
  emailChangedMessage,
  mailContextOf,
  resetPasswordMessage,
  verifyEmailMessage,
  type MailContext,
  type MailKind,
  securityNoticeMessage,
} from '../../adapters/mail/templates.js';
import { limitKeyOf } from '../../lib/ip.js';
import { problem } from '../../lib/problem.js';
import { clearAccountLockout, passwordAttempts } from '../../security/password-attempts.js';
import { assertPasswordNotCommon, hashPassword } from '../../security/passwords.js';
import { hashOpaqueToken, newOpaqueToken } from '../../security/opaque-tokens.js';
import { storeKeys } from '../../store/store.js';
import { rolesOf, toUser } from '../users/users.view.js';
import { assertCode } from '../../signin/codes.js';
import { removeEveryPasskey } from '../passkeys/passkeys.removal.js';
import { revokeSessions } from '../sessions/sessions.service.js';
import type { User } from '../users/users.schemas.js';

type TokenKind = 'verify_email' | 'reset_password';

const ttlOf = (svc: AppServices, kind: TokenKind) =>
  kind === 'verify_email' ? svc.config.emailVerificationTtlSeconds : svc.config.passwordResetTtlSeconds;

/** The service as mail names it: the host of PUBLIC_URL. */
export function mailContext(svc: AppServices, ip: string, now: Date): MailContext {
  return mailContextOf(svc.config.publicUrl, ip, now);
}

const linkFor = (template: string, token: string) => template.replaceAll('{token}', encodeURIComponent(token));

const MAIL_WINDOW_MS = 3600_000;
/** All clients together may mail one address this many times MAIL_PER_ADDRESS_PER_HOUR an hour (mail-bombing from many addresses). */
export const SHARED_MAIL_FACTOR = 10;
/** An address the account signed in from this recently is its owner's: exempt from the shared ceiling. */
const OWNER_ADDRESS_MS = 90 * 86_400_000;

/** Who asks for a mail to an address: the requesting client's address. */
export type MailRequester = { ip: string };

/** Whether the account holding this address signed in from the requester's address (its /64 for IPv6) lately. */
async function ownerAsks(svc: AppServices, email: string, ip: string): Promise<boolean> {
  const since = new Date(svc.clock() - OWNER_ADDRESS_MS);
  const rows = await svc.database.db
    .select({ ip: sessions.ip })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(users.email, email), gt(sessions.createdAt, since)))
    .orderBy(desc(sessions.createdAt))
    .limit(50);
  const key = limitKeyOf(ip);
  return rows.some((r) => limitKeyOf(r.ip) === key);
}

/**
 * Count one mail of this kind to this address, asked for by this client:
 * false past MAIL_PER_ADDRESS_PER_HOUR for this client (per address, IPv6 per
 * /64), or past SHARED_MAIL_FACTOR times that for all clients together unless
 * the client is the owner's (an address the account signed in from). So
 * strangers cannot spend what the owner needs, and no client mails an address
 * more than the limit an hour. When false the mail is not sent and nothing
 * says so to the requester; the log says so once per window. `counted` lists
 * the counters hit, to give back when no mail follows after all (a failed
 * registration counts no mail).
 */
export async function countMail(
  svc: AppServices,
  kind: MailKind,
  email: string,
  by: MailRequester,
): Promise<{ ok: boolean; counted: string[] }> {
  const limit = svc.config.mail.perAddressPerHour;
  const clientKey = storeKeys.mailClient(kind, email, by.ip);
  const mine = await svc.store.hit(clientKey, MAIL_WINDOW_MS);
  if (mine.count > limit) {
    if (mine.count === limit + 1) svc.logger.info({ kind }, 'mail not sent: per-address limit reached for this client');
    return { ok: false, counted: [clientKey] };
  }
  const sharedKey = storeKeys.mailAddress(kind, email);
  const all = await svc.store.hit(sharedKey, MAIL_WINDOW_MS);
  const ceiling = limit * SHARED_MAIL_FACTOR;
  if (all.count > ceiling) {
    if (all.count === ceiling + 1)
      svc.logger.warn({ kind }, 'per-address mail ceiling reached: only addresses the account signed in from are mailed');
    if (!(await ownerAsks(svc, email, by.ip))) return { ok: false, counted: [clientKey, sharedKey] };
  }
  return { ok: true, counted: [clientKey, sharedKey] };
}

/** countMail, for a mail that is sent whenever it is allowed. */
export async function mayMail(svc: AppServices, kind: MailKind, email: string, by: MailRequester): Promise<boolean> {
  return (await countMail(svc, kind, email, by)).ok;
}

/** Give back what countMail counted: no mail followed after all. */
export async function uncountMail(svc: AppServices, counted: string[]): Promise<void> {
  await Promise.all(counted.map((key) => svc.store.release(key)));
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
  emit: Emit,
  svc: AppServices,
  user: { id: string; email: string },
  ip: string,
  now: Date,
): Promise<void> {
  const { token, expiresAt } = await issueToken(tx, svc, user.id, 'verify_email', user.email, now);
  const link = linkFor(svc.config.mail.verifyEmailUrl, token);
  const message = verifyEmailMessage(user.email, link, svc.config.emailVerificationTtlSeconds, mailContext(svc, ip, now));
  await requestMail(tx, emit, { ...message, kind: 'verify_email', expiresAt }, now);
}

/** Inside an email change's transaction: a notice (no link) to the old address. */
export async function queueEmailChangedNotice(
  tx: Tx,
  emit: Emit,
  svc: AppServices,
  oldEmail: string,
  newEmail: string,
  ip: string,
  now: Date,
): Promise<void> {
  const message = emailChangedMessage(oldEmail, newEmail, mailContext(svc, ip, now));
  await requestMail(tx, emit, { ...message, kind: 'email_changed', expiresAt: new Date(now.getTime() + 7 * 86_400_000) }, now);
}

/**
 * Inside the transaction of a change to how the account signs in: a notice to
 * its owner (no link), so a factor added or removed by someone else is seen.
 */
export async function queueSecurityNotice(
  tx: Tx,
  emit: Emit,
  svc: AppServices,
  to: string,
  change: string,
  ip: string,
  now: Date,
): Promise<void> {
  const message = securityNoticeMessage(to, change, mailContext(svc, ip, now));
  await requestMail(tx, emit, { ...message, kind: 'security_notice', expiresAt: new Date(now.getTime() + 7 * 86_400_000) }, now);
}

/**
 * After a registration with an address that already has an account (with
 * EMAIL_VERIFICATION=required, where the answer does not say so): its owner
 * is told, with a link to the forgot-password page (nothing secret), within
 * the per-address mail limits.
 */
export async function sendAccountExistsNotice(svc: AppServices, email: string, ip: string): Promise<void> {
  if (!(await mayMail(svc, 'account_exists', email, { ip }))) return;
  const now = new Date(svc.clock());
  const message = accountExistsMessage(email, `${svc.config.publicUrl}/forgot-password`, mailContext(svc, ip, now));
  await svc.tx((tx, emit) =>
    requestMail(tx, emit, { ...message, kind: 'account_exists', expiresAt: new Date(now.getTime() + 7 * 86_400_000) }, now),
  );
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
  const row = await svc.tx(async (tx, emit) => {
    const t = await spendToken(tx, 'verify_email', token, now);
    const [u] = await tx
      .update(users)
      .set({ emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, ${now.toISOString()}::timestamptz)`, updatedAt: now })
      // The address changed since this link was sent: it proves nothing now.
      .where(and(eq(users.id, t.userId), eq(users.email, t.email)))
      .returning();
    if (!u) problem('invalid_email_token', 'This link is unknown, already used or expired', { audit: 'email_token_invalid' });
    await emit(profileChanged(u));
    return u;
  });
  const roles = (await rolesOf(svc.database.db, [row.id])).get(row.id) ?? [];
  return toUser(row, roles);
}

/** POST /auth/verify-email/resend, after the response: a new link if the account exists and is unverified. */
export async function resendVerification(svc: AppServices, email: string, ip: string): Promise<void> {
  if (svc.config.emailVerification === 'off') return;
  if (!(await mayMail(svc, 'verify_email', email, { ip }))) return;
  const now = new Date(svc.clock());
  await svc.tx(async (tx, emit) => {
    const [u] = await tx
      .select({ id: users.id, email: users.email })
      .from(users)
      .where(and(eq(users.email, email), isNull(users.emailVerifiedAt)));
    if (u) await queueVerificationMail(tx, emit, svc, u, ip, now);
  });
}

/** POST /auth/password/forgot, after the response: a reset link if the account exists. */
export async function requestPasswordReset(svc: AppServices, email: string, ip: string): Promise<void> {
  if (!(await mayMail(svc, 'reset_password', email, { ip }))) return;
  const now = new Date(svc.clock());
  await svc.tx(async (tx, emit) => {
    const [u] = await tx.select({ id: users.id, email: users.email }).from(users).where(eq(users.email, email));
    if (!u) return;
    const { token, expiresAt } = await issueToken(tx, svc, u.id, 'reset_password', u.email, now);
    const link = linkFor(svc.config.mail.resetPasswordUrl, token);
    const message = resetPasswordMessage(u.email, link, svc.config.passwordResetTtlSeconds, mailContext(svc, ip, now));
    await requestMail(tx, emit, { ...message, kind: 'reset_password', expiresAt }, now);
  });
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
  const { user } = await svc.tx(async (tx, emit) => {
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
    await revokeSessions(tx, emit, { userId: u.id }, 'password_reset', now);
    if (!input.removePasskeys) {
      await emit(profileChanged(u));
      return { user: u };
    }
    const { user, removed } = await removeEveryPasskey(tx, u.id, now);
    if (removed > 0) await queueSecurityNotice(tx, emit, svc, u.email, 'the password was reset and every passkey was removed', ip, now);
    await emit(profileChanged(user));
    return { user };
  });
  await clearAccountLockout(passwordAttempts(svc), user.email);
  return { userId: user.id };
}

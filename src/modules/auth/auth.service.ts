// Registration, the token pair that ends a sign-in on the API (the sign-in
// itself is src/signin/), refresh-token rotation with reuse detection, and logout.
import { randomUUID } from 'node:crypto';
import { and, eq, gt, isNull, sql } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { isUniqueViolation } from '../../db/errors.js';
import { refreshTokens, sessions, userRoles, type users } from '../../db/schema.js';
import { preparedSql } from '../../db/prepared.js';
import { retrying } from '../../db/tx.js';
import { rowsOf } from '../../db/rows.js';
import { storeKeys } from '../../store/store.js';
import { problem } from '../../lib/problem.js';
import { BASE_ROLE, DEFAULT_USER_ROLE, can } from '../../security/permissions.js';
import { assertPasswordNotCommon, hashPassword } from '../../security/passwords.js';
import { cacheUserRoles, publishSessionAlive } from '../../access/session-state.js';
import { signAccessToken } from '../../security/access-tokens.js';
import { hashRefreshToken, newRefreshToken } from '../../security/opaque-tokens.js';
import { rolesOf, toUser } from '../users/users.view.js';
import { revokeSessions } from '../sessions/sessions.service.js';
import { createUserWithRoles } from '../users/users.create.js';
import type { User } from '../users/users.schemas.js';
import type { TokenPair } from './auth.schemas.js';
import { countMail, queueVerificationMail, sendAccountExistsNotice, uncountMail } from './email.service.js';
import { storableText } from '../../lib/text.js';
import type { Authentication, SignInOrigin } from '../../signin/authentication.js';

type UserRow = typeof users.$inferSelect;

/**
 * POST /auth/register. A taken address is 409 email_taken, except with
 * EMAIL_VERIFICATION=required: there it gets the same 201 answer (a user that
 * is not stored) after the same work (the password is hashed on both paths),
 * and the address's owner is told by mail, so registration tells nobody which
 * addresses have accounts. A failed registration counts no mail.
 */
export async function registerUser(svc: AppServices, input: { email: string; password: string; name: string }, ip: string): Promise<User> {
  await assertPasswordNotCommon(input.password);
  const passwordHash = await hashPassword(input.password, svc.config.argon2);
  const now = new Date(svc.clock());
  // Unless verification is off, the link is mailed; the mail commits with the account.
  const mail = svc.config.emailVerification !== 'off' ? await countMail(svc, 'verify_email', input.email, { ip }) : undefined;
  try {
    const row = await svc.tx(async (tx, emit) => {
      const u = await createUserWithRoles(tx, { email: input.email, name: input.name, passwordHash, at: now }, [DEFAULT_USER_ROLE]);
      if (mail?.ok) await queueVerificationMail(tx, emit, svc, u, ip, now);
      return u;
    });
    return toUser(row, [DEFAULT_USER_ROLE]);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    if (mail) await uncountMail(svc, mail.counted);
    if (svc.config.emailVerification !== 'required') problem('email_taken', 'That email is already registered');
    svc.background.run('account-exists notice', () => sendAccountExistsNotice(svc, input.email, ip));
    // What a new account would have been: nothing tells it apart, and nothing of it is stored.
    const unstored = {
      id: randomUUID(),
      email: input.email,
      name: input.name,
      passwordHash,
      emailVerifiedAt: null,
      totpEnabledAt: null,
      passkeyCount: 0,
      createdAt: now,
      updatedAt: now,
    } as UserRow;
    return toUser(unstored, [DEFAULT_USER_ROLE]);
  }
}

async function issueTokens(
  svc: AppServices,
  userId: string,
  sessionId: string,
  roleNames: string[],
  refreshToken: string,
  sessionExpiresAt: Date,
  amr: readonly string[],
): Promise<TokenPair> {
  const iat = Math.floor(svc.clock() / 1000);
  const ttl = svc.config.jwt.accessTtlSeconds;
  const accessToken = await signAccessToken(svc.keyRing, {
    iss: svc.config.jwt.issuer,
    aud: svc.config.jwt.audience,
    sub: userId,
    sid: sessionId,
    jti: randomUUID(),
    iat,
    exp: iat + ttl,
    roles: [...roleNames].sort(),
    amr: [...amr],
  });
  await Promise.all([
    publishSessionAlive(svc.store, sessionId, userId, sessionExpiresAt.getTime() - svc.clock()),
    cacheUserRoles(svc.store, userId, roleNames),
  ]);
  return { accessToken, refreshToken, tokenType: 'Bearer', expiresIn: ttl };
}

/**
 * The session, its first refresh token and the user's roles in one statement:
 * one round trip where a transaction took five (a login's database cost
 * competes with argon2 for the same cores), prepared (src/db/prepared.ts).
 * Atomic as one statement is; the foreign key from the token to the session is
 * checked at its end.
 */
const startSessionStatement = preparedSql(
  'start_session',
  sql`
    WITH s AS (
      INSERT INTO ${sessions} (id, user_id, expires_at, created_at, ip, user_agent, amr)
      VALUES (${sql.placeholder('sessionId')}::uuid, ${sql.placeholder('userId')}::uuid, ${sql.placeholder('expiresAt')}::timestamptz, ${sql.placeholder('createdAt')}::timestamptz, ${sql.placeholder('ip')}::text, ${sql.placeholder('userAgent')}::text, ${sql.placeholder('amr')}::text)
      RETURNING id
    ), t AS (
      INSERT INTO ${refreshTokens} (token_hash, session_id, expires_at)
      SELECT ${sql.placeholder('tokenHash')}::text, s.id, ${sql.placeholder('expiresAt')}::timestamptz FROM s
      RETURNING session_id
    )
    SELECT t.session_id, ur.role_name FROM t LEFT JOIN ${userRoles} ur ON ur.user_id = ${sql.placeholder('userId')}::uuid`,
);

async function startSession(
  svc: AppServices,
  s: { sessionId: string; userId: string; tokenHash: string; expiresAt: Date; createdAt: Date; ip: string; userAgent: string; amr: string },
): Promise<string[]> {
  const values = { ...s, expiresAt: s.expiresAt.toISOString(), createdAt: s.createdAt.toISOString() };
  const result = await retrying(() => startSessionStatement(svc.database.db, values), {
    retries: svc.metrics.txRetries,
  });
  const rows = rowsOf<{ session_id: string; role_name: string | null }>(result);
  if (rows.length === 0) throw new Error('session was not created');
  return rows.flatMap((r) => (r.role_name === null ? [] : [r.role_name]));
}

/**
 * What the API makes of a sign-in (src/signin/): the session the
 * Authentication names, with its first refresh token, and the token pair.
 * `amr` says how the user signed in, for every access token of the session.
 */
export async function tokenPairFor(svc: AppServices, authentication: Authentication, origin: SignInOrigin): Promise<TokenPair> {
  const { userId, sessionId, amr } = authentication;
  const refreshToken = newRefreshToken();
  const expiresAt = new Date(svc.clock() + svc.config.jwt.refreshTtlSeconds * 1000);
  const roleNames = await startSession(svc, {
    sessionId,
    userId,
    tokenHash: hashRefreshToken(refreshToken),
    expiresAt,
    createdAt: authentication.authTime,
    ip: origin.ip,
    // Shown back to the user: bounded and storable whatever the client sent.
    userAgent: storableText(storableText(origin.userAgent).slice(0, 512)),
    amr: amr.join(','),
  });
  return issueTokens(svc, userId, sessionId, roleNames, refreshToken, expiresAt, amr);
}

/**
 * What the pages and the OpenID provider make of a sign-in that ends in the
 * browser (an upstream identity provider's callback): the session, as
 * tokenPairFor starts it, with no token handed out; the browser session
 * cookie is set on it next (startBrowserSession), and POST /session/tokens
 * gives the pages their token pair for it.
 */
export async function startSignedInSession(svc: AppServices, authentication: Authentication, origin: SignInOrigin): Promise<Date> {
  const { userId, sessionId, amr } = authentication;
  const expiresAt = new Date(svc.clock() + svc.config.jwt.refreshTtlSeconds * 1000);
  const roleNames = await startSession(svc, {
    sessionId,
    userId,
    // A refresh token nobody holds: the statement makes the session with one.
    tokenHash: hashRefreshToken(newRefreshToken()),
    expiresAt,
    createdAt: authentication.authTime,
    ip: origin.ip,
    userAgent: storableText(storableText(origin.userAgent).slice(0, 512)),
    amr: amr.join(','),
  });
  await Promise.all([
    publishSessionAlive(svc.store, sessionId, userId, expiresAt.getTime() - svc.clock()),
    cacheUserRoles(svc.store, userId, roleNames),
  ]);
  return expiresAt;
}

/**
 * POST /session/tokens: a token pair for a live browser session (a new
 * refresh token of that same session; the access token says how the session
 * signed in). Null when the session has ended meanwhile.
 */
export async function tokenPairForSession(svc: AppServices, session: { sessionId: string; userId: string }): Promise<TokenPair | null> {
  const refreshToken = newRefreshToken();
  const now = new Date(svc.clock());
  const found = await svc.tx(async (tx) => {
    const [row] = await tx
      .select({ expiresAt: sessions.expiresAt, amr: sessions.amr })
      .from(sessions)
      .where(
        and(
          eq(sessions.id, session.sessionId),
          eq(sessions.userId, session.userId),
          isNull(sessions.revokedAt),
          gt(sessions.expiresAt, now),
        ),
      );
    if (!row) return null;
    await tx
      .insert(refreshTokens)
      .values({ tokenHash: hashRefreshToken(refreshToken), sessionId: session.sessionId, expiresAt: row.expiresAt });
    const roleNames = (await rolesOf(tx, [session.userId])).get(session.userId) ?? [];
    return { ...row, roleNames };
  });
  if (!found) return null;
  return issueTokens(svc, session.userId, session.sessionId, found.roleNames, refreshToken, found.expiresAt, found.amr.split(','));
}

type RefreshOutcome =
  | { kind: 'ok'; userId: string; sessionId: string; roles: string[]; expiresAt: Date; amr: string[] }
  | { kind: 'reused'; sessionId: string }
  | { kind: 'invalid' };

/** Rotate a refresh token. A spent token presented again revokes its whole session. */
export async function refresh(svc: AppServices, token: string): Promise<TokenPair> {
  const hash = hashRefreshToken(token);
  const next = newRefreshToken();
  const now = new Date(svc.clock());
  const permissionsOf = await svc.roleCache.snapshot(await svc.store.get(storeKeys.rolesVersion));
  const outcome = await svc.tx<RefreshOutcome>(async (tx, emit) => {
    const [spent] = await tx
      .update(refreshTokens)
      .set({ spentAt: now })
      .where(and(eq(refreshTokens.tokenHash, hash), isNull(refreshTokens.spentAt), gt(refreshTokens.expiresAt, now)))
      .returning({ sessionId: refreshTokens.sessionId });
    if (!spent) {
      const [row] = await tx.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, hash));
      if (!row || row.spentAt === null) return { kind: 'invalid' };
      await revokeSessions(tx, emit, { sessionId: row.sessionId }, 'refresh_token_reused', now);
      return { kind: 'reused', sessionId: row.sessionId };
    }
    const [session] = await tx.select().from(sessions).where(eq(sessions.id, spent.sessionId));
    if (!session || session.revokedAt !== null || session.expiresAt <= now) return { kind: 'invalid' };
    const roleNames = (await rolesOf(tx, [session.userId])).get(session.userId) ?? [];
    // Judged on the token's user; throwing rolls the spend back.
    if (!can(permissionsOf([BASE_ROLE, ...roleNames]), 'auth:refresh')) {
      problem('forbidden', 'Missing permission auth:refresh', { audit: 'permission_denied: auth:refresh' });
    }
    await tx.insert(refreshTokens).values({ tokenHash: hashRefreshToken(next), sessionId: session.id, expiresAt: session.expiresAt });
    await tx.update(sessions).set({ lastRefreshedAt: now }).where(eq(sessions.id, session.id));
    return {
      kind: 'ok',
      userId: session.userId,
      sessionId: session.id,
      roles: roleNames,
      expiresAt: session.expiresAt,
      amr: session.amr.split(','),
    };
  });
  if (outcome.kind === 'invalid') problem('invalid_refresh_token', 'The refresh token is unknown or expired');
  if (outcome.kind === 'reused') {
    svc.stats.add('auth.refreshReused');
    problem('refresh_token_reused', 'This refresh token was already used: the session is revoked', {
      audit: 'refresh_token_reused',
    });
  }
  svc.stats.add('auth.refreshed');
  return issueTokens(svc, outcome.userId, outcome.sessionId, outcome.roles, next, outcome.expiresAt, outcome.amr);
}

/** End the refresh token's session. Unknown tokens are fine: logout is idempotent. */
export async function logout(svc: AppServices, token: string): Promise<void> {
  const db = svc.database.db;
  const [row] = await db
    .select({ sessionId: refreshTokens.sessionId })
    .from(refreshTokens)
    .where(eq(refreshTokens.tokenHash, hashRefreshToken(token)));
  if (!row) return;
  // Also when it had ended already: logging out again publishes its end again.
  await svc.tx((tx, emit) => revokeSessions(tx, emit, { sessionId: row.sessionId }, 'logout', new Date(svc.clock())));
}

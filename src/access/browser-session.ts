// The browser session: an HttpOnly SameSite=Lax cookie that names a row of
// `sessions` and proves it with a secret whose SHA-256 the row keeps. Only the
// hosted pages and the provider's browser endpoints read it (the JSON API
// stays cookie-free). It is read from the database on every use, so a session
// ended anywhere ends it on every instance on the next request.
// Its CSRF token is derived from the cookie's secret: a page that cannot read
// the cookie cannot make the token.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { and, eq, gt, isNull } from 'drizzle-orm';
import type { Context } from 'hono';
import type { Db } from '../db/connect.js';
import { sessions } from '../db/schema.js';
import { isUuid } from '../lib/cursor.js';
import { requestHeader } from '../lib/node-fast-path.js';
import { problem } from '../lib/problem.js';
import { hashOpaqueToken, newOpaqueToken } from '../security/opaque-tokens.js';

export type BrowserSession = {
  /** The `sessions` row: the `sid` of ID tokens and of the pages' token pair. */
  sessionId: string;
  userId: string;
  /** When the user signed in (the session's start): `auth_time`. */
  authTime: Date;
  amr: string[];
  /** The cookie's secret half, from which the CSRF token is derived. */
  secret: string;
};

/** `__Host-` (with Secure) when the service is served over https (PUBLIC_URL), a plain name otherwise. */
export const browserCookieName = (publicUrl: string) => (publicUrl.startsWith('https://') ? '__Host-auth_session' : 'auth_session');

const COOKIE_VALUE = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

/** The value of the cookie: the session id and the secret. */
export const browserCookieValue = (sessionId: string, secret: string) => `${sessionId}.${secret}`;

/** The cookie's value from a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eqAt = part.indexOf('=');
    if (eqAt < 0) continue;
    if (part.slice(0, eqAt).trim() === name) return part.slice(eqAt + 1).trim();
  }
  return undefined;
}

/**
 * The live session the cookie value names, or null: unknown, wrong secret,
 * ended, expired or never made a browser session.
 */
export async function loadBrowserSession(db: Db, value: string | undefined, nowMs: number): Promise<BrowserSession | null> {
  const m = value === undefined ? null : COOKIE_VALUE.exec(value);
  if (!m || !isUuid(m[1]!)) return null;
  const [sessionId, secret] = [m[1]!, m[2]!];
  const [row] = await db
    .select({
      userId: sessions.userId,
      createdAt: sessions.createdAt,
      amr: sessions.amr,
      expiresAt: sessions.expiresAt,
      revokedAt: sessions.revokedAt,
      browserKeyHash: sessions.browserKeyHash,
    })
    .from(sessions)
    .where(eq(sessions.id, sessionId));
  if (!row || row.revokedAt !== null || row.expiresAt.getTime() <= nowMs || row.browserKeyHash === null) return null;
  const presented = Buffer.from(hashOpaqueToken(secret));
  const stored = Buffer.from(row.browserKeyHash);
  if (presented.length !== stored.length || !timingSafeEqual(presented, stored)) return null;
  return { sessionId, userId: row.userId, authTime: row.createdAt, amr: row.amr.split(','), secret };
}

/** The CSRF token of a browser session: what a form it renders carries back. */
export const csrfTokenOf = (session: Pick<BrowserSession, 'secret'>) =>
  createHmac('sha256', session.secret).update('csrf').digest('base64url');

/** Whether a submitted CSRF token is this session's. */
export function csrfTokenMatches(session: Pick<BrowserSession, 'secret'>, token: string | undefined): boolean {
  if (token === undefined) return false;
  const expected = Buffer.from(csrfTokenOf(session));
  const given = Buffer.from(token);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Thrown (forbidden) unless the submitted CSRF token is this session's. */
export function checkCsrf(session: Pick<BrowserSession, 'secret'>, token: string | undefined): void {
  if (!csrfTokenMatches(session, token)) problem('forbidden', 'The form is stale or was not sent by this site: reload the page');
}

/** Whether an `Origin` header is the service's own origin (PUBLIC_URL's); a missing or `null` Origin is not. */
export function isSameOrigin(origin: string | undefined, publicUrl: string): boolean {
  if (origin === undefined || origin === 'null') return false;
  try {
    return origin === new URL(publicUrl).origin;
  } catch {
    return false;
  }
}

/**
 * Thrown (forbidden) unless the request comes from a page of this service:
 * every state-changing request a browser session authenticates checks it, so
 * another site cannot make the browser send one with the cookie.
 */
export function requireSameOrigin(c: Context, publicUrl: string): void {
  if (!isSameOrigin(requestHeader(c, 'origin'), publicUrl)) problem('forbidden', 'Only pages of this service may send this request');
}

/**
 * Make a live session of this user a browser session: a new secret, whose
 * SHA-256 the row keeps (a repeat call rotates it, so an older cookie stops
 * working). Null when the session has ended, expired or is not the user's.
 */
export async function startBrowserSession(
  db: Db,
  sessionId: string,
  userId: string,
  nowMs: number,
): Promise<{ value: string; expiresAt: Date } | null> {
  if (!isUuid(sessionId)) return null;
  const secret = newOpaqueToken();
  const [row] = await db
    .update(sessions)
    .set({ browserKeyHash: hashOpaqueToken(secret) })
    .where(
      and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, new Date(nowMs))),
    )
    .returning({ expiresAt: sessions.expiresAt });
  return row ? { value: browserCookieValue(sessionId, secret), expiresAt: row.expiresAt } : null;
}

/** The Set-Cookie header of the browser session (Max-Age 0 and an empty value clear it). */
export function browserCookieHeader(publicUrl: string, value: string, maxAgeSeconds: number): string {
  const secure = publicUrl.startsWith('https://') ? '; Secure' : '';
  return `${browserCookieName(publicUrl)}=${value}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Path=/; HttpOnly; SameSite=Lax${secure}`;
}

// The user's claims by scope (OpenID Connect Core §5.4, plus `roles`), shared
// by the ID token and userinfo, and the ID token itself (§2, §3.1.3.6).
import { eq } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { userRoles, users } from '../db/schema.js';
import type { OAuthClient } from './clients.js';
import { atHash, signIdToken } from './jwt.js';

export type ClaimsSubject = {
  id: string;
  name: string;
  email: string;
  emailVerified: boolean;
  updatedAt: Date;
  roles: string[];
};

/** The user as claims describe them (current roles), or null when the account is gone. */
export async function loadClaimsSubject(svc: Pick<AppServices, 'database'>, userId: string): Promise<ClaimsSubject | null> {
  const { db } = svc.database;
  const [[user], roles] = await Promise.all([
    db.select().from(users).where(eq(users.id, userId)),
    db.select({ role: userRoles.roleName }).from(userRoles).where(eq(userRoles.userId, userId)),
  ]);
  if (!user) return null;
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    emailVerified: user.emailVerifiedAt !== null,
    updatedAt: user.updatedAt,
    roles: roles.map((r) => r.role).sort(),
  };
}

export const scopeList = (scopes: string): string[] => scopes.split(' ').filter(Boolean);

/** The claims the scopes give (besides `sub`). */
export function scopeClaims(user: ClaimsSubject, scopes: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (scopes.includes('profile')) {
    out.name = user.name;
    out.updated_at = Math.floor(user.updatedAt.getTime() / 1000);
  }
  if (scopes.includes('email')) {
    out.email = user.email;
    out.email_verified = user.emailVerified;
  }
  if (scopes.includes('roles')) out.roles = user.roles;
  return out;
}

export type IdTokenInput = {
  client: OAuthClient;
  user: ClaimsSubject;
  scopes: readonly string[];
  sessionId: string;
  /** Session start, epoch seconds. */
  authTime: number;
  amr: string[];
  nonce: string | null;
  accessToken: string;
  /** Epoch seconds; the ID token lives as long as the access token issued with it. */
  iat: number;
  exp: number;
};

export function signIdTokenFor(svc: AppServices, i: IdTokenInput): Promise<string> {
  const alg = i.client.idTokenSignedResponseAlg;
  return signIdToken(svc, alg, {
    iss: svc.config.publicUrl,
    sub: i.user.id,
    aud: i.client.id,
    azp: i.client.id,
    exp: i.exp,
    iat: i.iat,
    auth_time: i.authTime,
    ...(i.nonce !== null ? { nonce: i.nonce } : {}),
    amr: i.amr,
    sid: i.sessionId,
    at_hash: atHash(alg, i.accessToken),
    ...scopeClaims(i.user, i.scopes),
  });
}

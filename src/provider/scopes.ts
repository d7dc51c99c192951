// The scopes the provider knows, what each gives (the consent page says it in
// plain words), and how a request's scope parameter becomes the scopes asked:
// unknown ones are dropped (OpenID Connect Core 3.1.2.1 lets a provider ignore
// them), known ones the client may not ask for are refused (invalid_scope), and
// offline_access is dropped for a client that cannot hold a refresh token (Core 11).
import type { OAuthClient } from './clients.js';

export const SCOPE_DESCRIPTIONS = {
  openid: 'Sign you in with your account',
  profile: 'See your name and when your profile last changed',
  email: 'See your email address and whether it is verified',
  roles: 'See the roles you hold',
  offline_access: 'Stay connected while you are away (keep access without asking you again)',
} as const;

export type KnownScope = keyof typeof SCOPE_DESCRIPTIONS;

export const KNOWN_SCOPES = Object.keys(SCOPE_DESCRIPTIONS) as KnownScope[];

const isKnown = (s: string): s is KnownScope => Object.hasOwn(SCOPE_DESCRIPTIONS, s);

export type ScopeResolution = { ok: true; scopes: KnownScope[] } | { ok: false; refused: string[] };

/** The scopes a request asks for, in the provider's order, or the ones this client may not ask for. */
export function resolveScopes(scopeParam: string | undefined, client: OAuthClient): ScopeResolution {
  const asked = new Set((scopeParam ?? '').split(' ').filter(isKnown));
  const refused = [...asked].filter((s) => !client.scopes.includes(s));
  if (refused.length > 0) return { ok: false, refused };
  if (!client.grantTypes.includes('refresh_token')) asked.delete('offline_access');
  return { ok: true, scopes: KNOWN_SCOPES.filter((s) => asked.has(s)) };
}

/** Scopes as stored and sent: space-separated. */
export const scopeString = (scopes: readonly string[]) => scopes.join(' ');

export const scopeList = (text: string) => text.split(' ').filter(Boolean);

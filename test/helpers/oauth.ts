// OpenID provider test helpers: registered clients, a browser session for a
// signed-in user, ID tokens to hint with, and authorization URLs.
import { randomBytes } from 'node:crypto';
import { signIdToken } from '../../src/provider/jwt.js';
import { ADMIN, type TestApp } from './app.js';
import type { Session } from './http.js';

export type ClientFields = {
  id?: string;
  name?: string;
  type?: 'confidential' | 'public';
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  scopes?: string[];
  firstParty?: boolean;
  allowedOrigins?: string[];
  audiences?: string[];
  backchannelLogoutUri?: string | null;
};

export type RegisteredClient = {
  id: string;
  /** The secret of a confidential client (null for a public one). */
  secret: string | null;
  redirectUri: string;
  postLogoutRedirectUri: string;
};

/** A registered client (defaults: confidential, https://rp.example/cb, openid profile email offline_access), through POST /admin/clients. */
export async function registerClient(t: TestApp, fields: ClientFields = {}): Promise<RegisteredClient> {
  const admin = await t.request('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: ADMIN.email, password: ADMIN.password }),
  });
  if (admin.status !== 200) throw new Error(`admin login: ${admin.status} ${await admin.text()}`);
  const { accessToken } = (await admin.json()) as { accessToken: string };
  const redirectUris = fields.redirectUris ?? ['https://rp.example/cb'];
  const postLogoutRedirectUris = fields.postLogoutRedirectUris ?? ['https://rp.example/logged-out'];
  const res = await t.request('/admin/clients', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({
      id: fields.id ?? `rp-${randomBytes(5).toString('hex')}`,
      name: fields.name ?? 'Relying Party',
      type: fields.type ?? 'confidential',
      redirectUris,
      postLogoutRedirectUris,
      grantTypes: fields.grantTypes ?? ['authorization_code', 'refresh_token'],
      scopes: fields.scopes ?? ['openid', 'profile', 'email', 'offline_access'],
      firstParty: fields.firstParty ?? false,
      allowedOrigins: fields.allowedOrigins ?? [],
      audiences: fields.audiences ?? [],
      backchannelLogoutUri: fields.backchannelLogoutUri ?? null,
    }),
  });
  const body = (await res.json()) as { id: string; clientSecret?: string };
  if (res.status !== 201) throw new Error(`POST /admin/clients: ${res.status} ${JSON.stringify(body)}`);
  return {
    id: body.id,
    secret: body.clientSecret ?? null,
    redirectUri: redirectUris[0] ?? '',
    postLogoutRedirectUri: postLogoutRedirectUris[0] ?? '',
  };
}

/** The `sid` of a session's access token. */
export const sidOf = (s: Pick<Session, 'accessToken'>): string =>
  JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;

/** A Cookie header carrying the browser session of this sign-in, set as the hosted pages set it (POST /session). */
export async function browserCookieFor(t: TestApp, session: Pick<Session, 'accessToken'>): Promise<string> {
  const res = await t.request('/session', {
    method: 'POST',
    headers: { authorization: `Bearer ${session.accessToken}`, origin: t.services.config.publicUrl },
  });
  const setCookie = res.headers.get('set-cookie');
  if (res.status !== 204 || !setCookie) throw new Error(`POST /session: ${res.status} ${await res.text()}`);
  return setCookie.split(';')[0]!;
}

/** An ID token of this provider (RS256, as the token endpoint signs them) for a user and client, to send as id_token_hint. */
export async function idTokenFor(
  t: TestApp,
  claims: { sub: string; aud: string; sid?: string; expiresAtSeconds?: number },
): Promise<string> {
  const now = Math.floor(t.services.clock() / 1000);
  return signIdToken(t.services, 'RS256', {
    sub: claims.sub,
    aud: claims.aud,
    ...(claims.sid !== undefined ? { sid: claims.sid } : {}),
    iat: now - 60,
    exp: claims.expiresAtSeconds ?? now + 300,
  });
}

/** /oauth2/authorize with these parameters (a code request of the client to its first redirect URI unless overridden). */
export function authorizePath(client: RegisteredClient, params: Record<string, string | undefined> = {}): string {
  const all: Record<string, string | undefined> = {
    client_id: client.id,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    scope: 'openid',
    state: `st-${randomBytes(4).toString('hex')}`,
    ...params,
  };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v !== undefined) q.append(k, v);
  return `/oauth2/authorize?${q}`;
}

/** A PKCE pair (RFC 7636, S256). */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: Buffer.from(digest).toString('base64url') };
}

/** The parameters of a redirect's Location (to the client). */
export const paramsOf = (location: string | null): URLSearchParams => new URLSearchParams(new URL(location ?? '', 'http://x').search);

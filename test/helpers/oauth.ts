// OpenID provider test helpers: registered clients, a browser session for a
// signed-in user, ID tokens to hint with, and authorization URLs.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { signIdToken } from '../../src/provider/jwt.js';
import { ADMIN, createTestApp, redisStore, type TestApp } from './app.js';
import { type Call, client, loginAdmin, type Session } from './http.js';
import { clickThrough, type UserAgent } from './oidc-peers.js';
import { type Backend, openDatabase } from './services.js';

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

// ---------------------------------------------------------------- the provider served on a real socket

/** This service as an OpenID provider on a real loopback port, for relying parties that talk HTTP (openid-client, Auth.js, Apache). */
export type ServedProvider = {
  /** http://127.0.0.1:<port>: PUBLIC_URL, so the issuer. */
  issuer: string;
  t: TestApp;
  /** In-process API calls (setting up: users, clients). */
  call: Call;
  /** An admin's session, for /admin/clients. */
  admin: Session;
  stop(): Promise<void>;
};

/**
 * The app on `backend` (PGlite with the in-process store, or PostgreSQL with
 * Redis), served by @hono/node-server on a free loopback port bound before the
 * app is made, so PUBLIC_URL names that port.
 */
export async function serveProvider(
  backend: Backend,
  overrides: Record<string, string> = {},
  /** The app's clock, for a test that moves it (default: real time). */
  clock?: () => number,
): Promise<ServedProvider> {
  let app: TestApp | undefined;
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve(
      {
        fetch: (req, env) => (app ? app.app.fetch(req, env) : new Response('starting', { status: 503 })),
        port: 0,
        hostname: '127.0.0.1',
      },
      () => resolve(s),
    );
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const db = await openDatabase(backend);
  app = await createTestApp({
    database: db.database,
    ...(backend === 'postgres' ? { store: redisStore() } : {}),
    overrides: { PUBLIC_URL: issuer, ...overrides },
    ...(clock ? { clock } : {}),
  });
  const t = app;
  const call = client(t);
  return {
    issuer,
    t,
    call,
    admin: await loginAdmin(call),
    async stop() {
      // Relying parties keep connections alive (fetch's pool): close them, or close() waits for their timeout.
      (server as import('node:http').Server).closeAllConnections();
      await new Promise((r) => server.close(r));
      await t.stop();
      await db.dispose();
    },
  };
}

/** A client registered through POST /admin/clients (as an admin would): its id and, for a confidential one, its secret. */
export async function createClientViaApi(
  p: Pick<ServedProvider, 'call' | 'admin'>,
  fields: ClientFields & { idTokenSignedResponseAlg?: 'RS256' | 'ES256' | 'EdDSA' },
): Promise<{ id: string; secret: string | null }> {
  const res = await p.call('POST', '/admin/clients', {
    token: p.admin.accessToken,
    body: { name: fields.name ?? `Relying Party ${fields.id ?? ''}`.trim(), ...fields },
  });
  if (res.status !== 201) throw new Error(`POST /admin/clients: ${res.status} ${res.text}`);
  return { id: res.body.id, secret: res.body.clientSecret ?? null };
}

/**
 * Sign a user in at this provider "as a browser", from an authorization URL a
 * relying party sent the browser to: when the authorization sends it to /login,
 * the user signs in as the hosted login page does (POST /auth/login, then
 * POST /session with the access token and the page's Origin, which sets the
 * browser-session cookie in `ua`'s jar) and the browser goes on to `next`; a
 * consent page is answered "Allow". Returns the redirect back to `redirectUri`
 * (with `code` or `error`), not requested.
 */
export async function signInAtProvider(
  ua: UserAgent,
  authorizeUrl: string | URL,
  user: { email: string; password: string },
  redirectUri: string,
): Promise<URL> {
  const stopAt = (u: URL) => u.href.startsWith(redirectUri);
  const start = new URL(authorizeUrl);
  const atLogin = (u: URL) => u.origin === start.origin && u.pathname === '/login';
  let page = await ua.get(start, { stopAt: (u) => stopAt(u) || atLogin(u) });
  const here = new URL(page.url);
  if (atLogin(here)) {
    const next = here.searchParams.get('next');
    if (!next?.startsWith('/')) throw new Error(`the login page was given no same-site next: ${here.href}`);
    await browserSignIn(ua, start.origin, user);
    page = await ua.get(new URL(next, start.origin), { stopAt });
  }
  return clickThrough(ua, page, stopAt, /allow/i);
}

/** What the hosted login page does on a password sign-in: the JSON login, then the browser session for its token pair. */
export async function browserSignIn(ua: UserAgent, origin: string, user: { email: string; password: string }): Promise<void> {
  const login = await ua.send(`${origin}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', origin },
    body: JSON.stringify(user),
  });
  if (login.status !== 200) throw new Error(`POST /auth/login: ${login.status} ${await login.text()}`);
  const { accessToken } = (await login.json()) as { accessToken: string };
  const session = await ua.send(`${origin}/session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, origin, accept: 'application/json' },
  });
  if (session.status !== 204) throw new Error(`POST /session: ${session.status} ${await session.text()}`);
}

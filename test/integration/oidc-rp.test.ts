// Real relying parties sign users in through an OpenID provider with no code
// written for it: openid-client (the certified Node RP library), Auth.js
// (@auth/core, served over HTTP like an app would) and Apache's mod_auth_openidc.
// Each runs against every provider of PROVIDERS: oidc-provider (the certified
// Node provider, in process) proves the harness; this service's provider joins
// once its endpoints exist (see `ours` below), with the same tests unchanged.
import { serve } from '@hono/node-server';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apacheRedirectUri, apacheUnavailable, startApache } from '../helpers/apache.js';
import { clickThrough, loginAtPeer, type PeerClient, startOidcProvider, UserAgent } from '../helpers/oidc-peers.js';
import { freePort } from '../helpers/processes.js';

/** A client the tests need registered, by role. */
type ClientSpec = { id: string; secret: string; redirectUris: string[]; postLogoutRedirectUris?: string[] };

/** A provider under test: started with the tests' clients and one user, signed in by a UserAgent. */
type ProviderUnderTest = {
  name: string;
  /** The issuer, and the user every sign-in is for (`sub` and `email` as the provider reports them). */
  start(clients: ClientSpec[]): Promise<{ issuer: string; user: { sub: string; email: string }; stop(): Promise<void> }>;
  /**
   * Sign the user in (and consent) in `ua`, from an authorization URL the RP
   * sent the browser to; returns the redirect back to `redirectUri`, not requested.
   */
  signIn(ua: UserAgent, authorizeUrl: URL, redirectUri: string): Promise<URL>;
  /** Authorization parameters that get a refresh token (offline_access) granted. */
  offlineParams: Record<string, string>;
};

/** Follow an RP-initiated logout through the provider's pages (confirming it) back to `postLogoutRedirectUri`. */
async function signOut(ua: UserAgent, endSessionUrl: URL, postLogoutRedirectUri: string): Promise<URL> {
  const stopAt = (u: URL) => u.href.startsWith(postLogoutRedirectUri);
  const page = await ua.get(endSessionUrl, { stopAt });
  return clickThrough(ua, page, stopAt, /yes|sign out|log out/i);
}

const peer: ProviderUnderTest = {
  name: 'oidc-provider',
  async start(clients) {
    const op = await startOidcProvider({
      clients: clients.map(
        (c): PeerClient => ({
          client_id: c.id,
          client_secret: c.secret,
          redirect_uris: c.redirectUris,
          ...(c.postLogoutRedirectUris ? { post_logout_redirect_uris: c.postLogoutRedirectUris } : {}),
        }),
      ),
      accounts: { 'user-1': { email: 'ada@example.test', name: 'Ada Lovelace' } },
    });
    return { issuer: op.issuer, user: { sub: 'user-1', email: 'ada@example.test' }, stop: () => op.stop() };
  },
  signIn: (ua, url, redirectUri) => loginAtPeer(ua, url, 'user-1', redirectUri),
  // oidc-provider grants offline_access only on an explicit consent (OpenID Connect Core 11).
  offlineParams: { prompt: 'consent' },
};

// This service as the provider, once /oauth2/authorize, /oauth2/token and /oauth2/userinfo
// are on main. To wire it: start the app on a real socket with PUBLIC_URL = its URL
// (useServedApp / browser.ts), register `clients` as confidential first-party clients
// (OAUTH_CLIENTS_FILE or POST /admin/clients), register a user; signIn follows the
// authorization to /login, submits the email and password form (UserAgent.submit),
// follows `next` back to /oauth2/authorize and, for a consent page, submits "Allow".
const ours: ProviderUnderTest | null = null;

const PROVIDERS = [peer, ...(ours ? [ours] : [])];
const SECRET = 'rp-secret-0123456789-0123456789-0123456789';

describe.each(PROVIDERS)('relying parties against $name', (provider) => {
  let issuer: string;
  let user: { sub: string; email: string };
  let stop: () => Promise<void>;
  let authJsPort: number;
  let apachePort: number;
  const APP_REDIRECT = 'http://127.0.0.1:1/callback';
  const APP_SIGNED_OUT = 'http://127.0.0.1:1/signed-out';

  beforeAll(async () => {
    authJsPort = await freePort();
    apachePort = await freePort();
    ({ issuer, user, stop } = await provider.start([
      { id: 'rp-openid-client', secret: SECRET, redirectUris: [APP_REDIRECT], postLogoutRedirectUris: [APP_SIGNED_OUT] },
      { id: 'rp-authjs', secret: SECRET, redirectUris: [`http://127.0.0.1:${authJsPort}/auth/callback/op`] },
      {
        id: 'rp-apache',
        secret: SECRET,
        redirectUris: [apacheRedirectUri(apachePort)],
        postLogoutRedirectUris: [`http://127.0.0.1:${apachePort}/index.html`],
      },
    ]));
  });
  afterAll(async () => {
    await stop?.();
  });

  it('openid-client: discovery, authorization code with PKCE, ID token, userinfo', async () => {
    const config = await oidc.discovery(new URL(issuer), 'rp-openid-client', SECRET, oidc.ClientSecretBasic(SECRET), {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: APP_REDIRECT,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const back = await provider.signIn(new UserAgent(), url, APP_REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: issuer, sub: user.sub, aud: 'rp-openid-client', nonce });
    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.sub);
    expect(info).toMatchObject({ sub: user.sub, email: user.email });
  });

  /** openid-client's configuration for the app client, and a signed-in user's tokens. */
  async function openidClientSignIn(ua: UserAgent, extra: Record<string, string> = {}) {
    const config = await oidc.discovery(new URL(issuer), 'rp-openid-client', SECRET, oidc.ClientSecretBasic(SECRET), {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: APP_REDIRECT,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...extra,
    });
    const back = await provider.signIn(ua, url, APP_REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state });
    return { config, tokens };
  }

  it('openid-client: offline_access gives a refresh token; refreshing rotates it and keeps the subject', async () => {
    const { config, tokens } = await openidClientSignIn(new UserAgent(), {
      scope: 'openid email offline_access',
      ...provider.offlineParams,
    });
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()?.sub).toBe(user.sub);
    const info = await oidc.fetchUserInfo(config, refreshed.access_token, user.sub);
    expect(info.email).toBe(user.email);
  });

  it('openid-client: RP-initiated logout ends the browser session (prompt=none then asks for a login)', async () => {
    const ua = new UserAgent();
    const { config, tokens } = await openidClientSignIn(ua);
    const end = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: APP_SIGNED_OUT,
      state: 'bye',
    });
    const back = await signOut(ua, end, APP_SIGNED_OUT);
    expect(back.searchParams.get('state')).toBe('bye');

    const silent = oidc.buildAuthorizationUrl(config, { redirect_uri: APP_REDIRECT, scope: 'openid', prompt: 'none', state: 's' });
    const answer = await ua.get(silent, { stopAt: (u) => u.href.startsWith(APP_REDIRECT) });
    expect(new URL(answer.url).searchParams.get('error')).toBe('login_required');
  });

  it('Auth.js: sign-in through the provider gives the app a session with the user', async () => {
    const { Auth } = await import('@auth/core');
    const appUrl = `http://127.0.0.1:${authJsPort}`;
    const server = serve({
      port: authJsPort,
      hostname: '127.0.0.1',
      fetch: (req) =>
        Auth(req, {
          basePath: '/auth',
          trustHost: true,
          secret: 'auth-js-secret-0123456789-0123456789',
          providers: [
            {
              id: 'op',
              name: 'The provider',
              type: 'oidc',
              issuer,
              clientId: 'rp-authjs',
              clientSecret: SECRET,
              checks: ['pkce', 'state', 'nonce'],
              authorization: { params: { scope: 'openid email profile' } },
            },
          ],
        }),
    });
    try {
      const ua = new UserAgent();
      const csrf = JSON.parse((await ua.get(`${appUrl}/auth/csrf`)).text) as { csrfToken: string };
      const toProvider = await ua.post(
        `${appUrl}/auth/signin/op`,
        { csrfToken: csrf.csrfToken, callbackUrl: `${appUrl}/done` },
        { stopAt: (u) => u.origin === issuer },
      );
      const redirectUri = `${appUrl}/auth/callback/op`;
      const back = await provider.signIn(ua, new URL(toProvider.url), redirectUri);
      const done = await ua.get(back, { stopAt: (u) => u.pathname === '/done' });
      expect(done.url).toBe(`${appUrl}/done`);
      const session = JSON.parse((await ua.get(`${appUrl}/auth/session`)).text) as { user?: { email?: string } };
      expect(session.user?.email).toBe(user.email);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  const noApache = apacheUnavailable();
  it.skipIf(noApache !== null)(
    `Apache mod_auth_openidc: the protected page sees the user; its logout ends the provider's session too${noApache ? ` (${noApache})` : ''}`,
    async () => {
      const apache = await startApache({ issuer, clientId: 'rp-apache', clientSecret: SECRET, port: apachePort });
      try {
        const ua = new UserAgent();
        const toProvider = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === issuer });
        const back = await provider.signIn(ua, new URL(toProvider.url), apache.redirectUri);
        const page = await ua.get(back);
        expect(page.status, apache.errorLog()).toBe(200);
        expect(page.text).toContain(`REMOTE_USER=${user.sub}`);
        expect(page.text).toContain(`EMAIL=${user.email}`);

        // Its logout ends the local session and, through the provider's end-session endpoint, the provider's.
        const signedOut = await signOut(ua, new URL(apache.logoutUrl()), `${apache.url}/index.html`);
        expect(signedOut.href).toBe(`${apache.url}/index.html`);
        const again = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === issuer });
        expect(new URL(again.url).origin).toBe(issuer);
        const toLogin = await ua.get(again.url, { stopAt: (u) => u.href.startsWith(apache.redirectUri) });
        expect(toLogin.status).toBe(200); // the provider's sign-in page, not a silent sign-in
        expect(toLogin.text).toMatch(/<form/i);
      } finally {
        await apache.stop();
      }
    },
  );

  // Later (full): back-channel logout received by a test endpoint, oauth4webapi
  // against each error path, ES256/EdDSA ID tokens (idTokenSignedResponseAlg).
});

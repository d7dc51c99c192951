// Real relying parties sign users in through an OpenID provider with no code
// written for it: openid-client (the certified Node RP library), Auth.js
// (@auth/core, served over HTTP like an app would) and Apache's mod_auth_openidc.
// Each runs against every provider of PROVIDERS, with the same tests: oidc-provider
// (the certified Node provider, in process) proves the harness; this service's
// provider, served on a real loopback port on each backend, is what they measure.
import { generateKeyPairSync } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { OIDCConfig } from '@auth/core/providers';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apacheRedirectUri, apacheUnavailable, startApache } from '../helpers/apache.js';
import { until } from '../helpers/eventually.js';
import { PASSWORD, registerAndLogin, uniqueEmail } from '../helpers/http.js';
import { createClientViaApi, serveProvider, signInAtProvider } from '../helpers/oauth.js';
import { clickThrough, loginAtPeer, type Page, type PeerClient, startOidcProvider, UserAgent } from '../helpers/oidc-peers.js';
import { freePort } from '../helpers/processes.js';
import { type Backend, BACKENDS } from '../helpers/services.js';

/** A client the tests need registered, by role. */
type ClientSpec = {
  id: string;
  /** A public client (no secret: token_endpoint_auth_method none, PKCE). Default: confidential. */
  public?: boolean;
  /** How a confidential client authenticates (a provider may bind a client to one method). Default client_secret_basic. */
  auth?: 'client_secret_basic' | 'client_secret_post';
  /** The ID token's alg. Default RS256. */
  idTokenAlg?: 'RS256' | 'ES256' | 'EdDSA';
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  /** Back-Channel Logout 1.0: where logout tokens go. */
  backchannelLogoutUri?: string;
};

/** A provider under test: started with the tests' clients and one user, signed in by a UserAgent. */
type ProviderUnderTest = {
  name: string;
  /**
   * The issuer, the secret of each confidential client (by id) and the user every sign-in
   * is for (`sub`, `email` and `name` as the provider reports them).
   */
  start(clients: ClientSpec[]): Promise<{
    issuer: string;
    secrets: Record<string, string>;
    user: { sub: string; email: string; name: string };
    stop(): Promise<void>;
  }>;
  /**
   * Sign the user in (and consent) in `ua`, from an authorization URL the RP
   * sent the browser to; returns the redirect back to `redirectUri`, not requested.
   */
  signIn(ua: UserAgent, authorizeUrl: URL, redirectUri: string): Promise<URL>;
  /** Authorization parameters that get a refresh token (offline_access) granted. */
  offlineParams: Record<string, string>;
  /** Whether the browser was sent to the provider's sign-in page (`page` was fetched with stopAt = isLoginUrl). */
  isLoginUrl(url: URL): boolean;
  isLoginPage(page: Page): boolean;
  /** Whether an RP-initiated logout also ends the tokens of that sign-in (its session). */
  logoutEndsTokens: boolean;
  /** Whether ID tokens carry `sid` (oidc-provider's only with a logout feature that needs it). */
  sidInIdToken: boolean;
};

/** Follow an RP-initiated logout through the provider's pages (confirming it) back to `postLogoutRedirectUri`. */
async function signOut(ua: UserAgent, endSessionUrl: URL, postLogoutRedirectUri: string): Promise<URL> {
  const stopAt = (u: URL) => u.href.startsWith(postLogoutRedirectUri);
  const page = await ua.get(endSessionUrl, { stopAt });
  return clickThrough(ua, page, stopAt, /yes|sign out|log out/i);
}

const SECRET = 'rp-secret-0123456789-0123456789-0123456789';
const P256_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const NAME = 'Ada Lovelace';

const peer: ProviderUnderTest = {
  name: 'oidc-provider',
  async start(clients) {
    const op = await startOidcProvider({
      clients: clients.map(
        (c): PeerClient => ({
          client_id: c.id,
          ...(c.public ? {} : { client_secret: SECRET, token_endpoint_auth_method: c.auth ?? 'client_secret_basic' }),
          redirect_uris: c.redirectUris,
          ...(c.postLogoutRedirectUris ? { post_logout_redirect_uris: c.postLogoutRedirectUris } : {}),
          ...(c.idTokenAlg ? { id_token_signed_response_alg: c.idTokenAlg } : {}),
          ...(c.backchannelLogoutUri ? { backchannel_logout_uri: c.backchannelLogoutUri } : {}),
        }),
      ),
      accounts: { 'user-1': { email: 'ada@example.test', name: NAME } },
    });
    const secrets = Object.fromEntries(clients.filter((c) => !c.public).map((c) => [c.id, SECRET]));
    return { issuer: op.issuer, secrets, user: { sub: 'user-1', email: 'ada@example.test', name: NAME }, stop: () => op.stop() };
  },
  signIn: (ua, url, redirectUri) => loginAtPeer(ua, url, 'user-1', redirectUri),
  // oidc-provider grants offline_access only on an explicit consent (OpenID Connect Core 11).
  offlineParams: { prompt: 'consent' },
  isLoginUrl: () => false,
  isLoginPage: (page) => page.status === 200 && /<form/i.test(page.text),
  logoutEndsTokens: false,
  sidInIdToken: false,
};

/**
 * This service as the provider: served on a real loopback port (PUBLIC_URL = its
 * origin) on `backend`; clients registered through POST /admin/clients by an admin;
 * one user registered through the API. A sign-in is what a browser does: the
 * authorization sends it to /login, the hosted page signs in (POST /auth/login, then
 * POST /session sets the browser-session cookie), the browser goes back to `next`,
 * and the consent page is answered "Allow".
 */
function ours(backend: Backend): ProviderUnderTest {
  const user = { email: uniqueEmail('ada'), password: PASSWORD };
  return {
    name: `this service (${backend})`,
    async start(clients) {
      // A P-256 key configured, so ES256 is offered too.
      const p = await serveProvider(backend, { JWT_EC_PRIVATE_KEY: P256_KEY });
      try {
        const secrets: Record<string, string> = {};
        for (const c of clients) {
          const created = await createClientViaApi(p, {
            id: c.id,
            name: `App ${c.id}`,
            type: c.public ? 'public' : 'confidential',
            redirectUris: c.redirectUris,
            postLogoutRedirectUris: c.postLogoutRedirectUris ?? [],
            ...(c.idTokenAlg ? { idTokenSignedResponseAlg: c.idTokenAlg } : {}),
            ...(c.backchannelLogoutUri ? { backchannelLogoutUri: c.backchannelLogoutUri } : {}),
          });
          if (created.secret) secrets[c.id] = created.secret;
        }
        const s = await registerAndLogin(p.call, { ...user, name: NAME });
        return { issuer: p.issuer, secrets, user: { sub: s.userId, email: user.email, name: NAME }, stop: () => p.stop() };
      } catch (err) {
        await p.stop();
        throw err;
      }
    },
    signIn: (ua, url, redirectUri) => signInAtProvider(ua, url, user, redirectUri),
    // offline_access always asks for consent here; nothing more to ask.
    offlineParams: {},
    isLoginUrl: (url) => url.pathname === '/login',
    isLoginPage: (page) => new URL(page.url).pathname === '/login',
    // The browser session is a `sessions` row: logging out ends every token of that sign-in.
    logoutEndsTokens: true,
    sidInIdToken: true,
  };
}

const PROVIDERS = [peer, ...BACKENDS.map(ours)];

describe.each(PROVIDERS)('relying parties against $name', (provider) => {
  let issuer: string;
  let secrets: Record<string, string>;
  let user: { sub: string; email: string; name: string };
  let stop: () => Promise<void>;
  let authJsPort: number;
  let apachePort: number;
  const APP_REDIRECT = 'http://127.0.0.1:1/callback';
  const APP_SIGNED_OUT = 'http://127.0.0.1:1/signed-out';

  beforeAll(async () => {
    authJsPort = await freePort();
    apachePort = await freePort();
    ({ issuer, secrets, user, stop } = await provider.start([
      { id: 'rp-openid-client', redirectUris: [APP_REDIRECT], postLogoutRedirectUris: [APP_SIGNED_OUT] },
      { id: 'rp-public', public: true, redirectUris: [APP_REDIRECT], postLogoutRedirectUris: [APP_SIGNED_OUT] },
      { id: 'rp-post', auth: 'client_secret_post', redirectUris: [APP_REDIRECT], postLogoutRedirectUris: [APP_SIGNED_OUT] },
      { id: 'rp-eddsa', idTokenAlg: 'EdDSA', redirectUris: [APP_REDIRECT], postLogoutRedirectUris: [APP_SIGNED_OUT] },
      { id: 'rp-es256', idTokenAlg: 'ES256', redirectUris: [APP_REDIRECT], postLogoutRedirectUris: [APP_SIGNED_OUT] },
      { id: 'rp-authjs', redirectUris: [`http://127.0.0.1:${authJsPort}/auth/callback/op`] },
      {
        id: 'rp-apache',
        redirectUris: [apacheRedirectUri(apachePort)],
        postLogoutRedirectUris: [`http://127.0.0.1:${apachePort}/index.html`],
        backchannelLogoutUri: `${apacheRedirectUri(apachePort)}?logout=backchannel`,
      },
    ]));
  });
  afterAll(async () => {
    await stop?.();
  });

  type RpClient = { id: string; auth: 'basic' | 'post' | 'none'; metadata?: Partial<oidc.ClientMetadata> };
  const BASIC: RpClient = { id: 'rp-openid-client', auth: 'basic' };

  /** openid-client's configuration for a client, from discovery (loopback http allowed). */
  function discover(c: RpClient): Promise<oidc.Configuration> {
    const secret = c.auth === 'none' ? undefined : secrets[c.id]!;
    const auth = c.auth === 'none' ? oidc.None() : c.auth === 'post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
    const metadata: Partial<oidc.ClientMetadata> = { ...(secret ? { client_secret: secret } : {}), ...c.metadata };
    return oidc.discovery(new URL(issuer), c.id, metadata, auth, { execute: [oidc.allowInsecureRequests] });
  }

  /** A sign-in through openid-client: authorization code with PKCE, state and nonce; the tokens, verified. */
  async function openidClientSignIn(ua: UserAgent, c: RpClient = BASIC, extra: Record<string, string> = {}, maxAge?: number) {
    const config = await discover(c);
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
      ...extra,
    });
    const back = await provider.signIn(ua, url, APP_REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      ...(maxAge !== undefined ? { maxAge } : {}),
    });
    return { config, tokens, nonce };
  }

  const headerOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { alg: string };

  /** The clients of the full openid-client flow: each way to authenticate, and each ID token alg that matters. */
  const FLOWS: { title: string; client: RpClient; alg: string }[] = [
    { title: 'client_secret_basic, RS256', client: BASIC, alg: 'RS256' },
    { title: 'client_secret_post', client: { id: 'rp-post', auth: 'post' }, alg: 'RS256' },
    { title: 'public client (none)', client: { id: 'rp-public', auth: 'none' }, alg: 'RS256' },
    {
      title: 'EdDSA ID tokens',
      client: { id: 'rp-eddsa', auth: 'basic', metadata: { id_token_signed_response_alg: 'EdDSA' } },
      alg: 'EdDSA',
    },
    {
      title: 'ES256 ID tokens',
      client: { id: 'rp-es256', auth: 'basic', metadata: { id_token_signed_response_alg: 'ES256' } },
      alg: 'ES256',
    },
  ];

  it.each(FLOWS)(
    'openid-client, $title: discovery, code + PKCE, verified ID token, userinfo, refresh, end session',
    async ({ client, alg }) => {
      const ua = new UserAgent();
      const { config, tokens, nonce } = await openidClientSignIn(ua, client, {
        scope: 'openid email profile offline_access',
        ...provider.offlineParams,
      });
      // openid-client verified the ID token (signature by the JWKS, iss, aud, exp, nonce) before this.
      expect(headerOf(tokens.id_token!).alg).toBe(alg);
      expect(tokens.claims()).toMatchObject({ iss: issuer, sub: user.sub, aud: client.id, nonce });
      if (provider.sidInIdToken) expect(tokens.claims()?.sid).toBeTypeOf('string');
      const info = await oidc.fetchUserInfo(config, tokens.access_token, user.sub);
      expect(info).toMatchObject({ sub: user.sub, email: user.email, name: user.name });

      // Refreshing rotates the refresh token and keeps the subject (the new ID token verified too).
      expect(tokens.refresh_token).toBeTruthy();
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.refresh_token).toBeTruthy();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      if (refreshed.id_token) expect(headerOf(refreshed.id_token).alg).toBe(alg);
      expect(refreshed.claims()?.sub ?? user.sub).toBe(user.sub);
      expect((await oidc.fetchUserInfo(config, refreshed.access_token, user.sub)).email).toBe(user.email);

      // RP-initiated logout: back to the app with its state; the browser session is over.
      const end = oidc.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token!,
        post_logout_redirect_uri: APP_SIGNED_OUT,
        state: 'bye',
      });
      const back = await signOut(ua, end, APP_SIGNED_OUT);
      expect(back.searchParams.get('state')).toBe('bye');
      // (With PKCE: a public client's request without it is refused before the session is looked at.)
      const silent = oidc.buildAuthorizationUrl(config, {
        redirect_uri: APP_REDIRECT,
        scope: 'openid',
        prompt: 'none',
        state: 's',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const answer = await ua.get(silent, { stopAt: (u) => u.href.startsWith(APP_REDIRECT) });
      expect(new URL(answer.url).searchParams.get('error')).toBe('login_required');
      if (provider.logoutEndsTokens) {
        await expect(oidc.fetchUserInfo(config, refreshed.access_token, user.sub)).rejects.toMatchObject({ status: 401 });
        await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      }
    },
  );

  it('openid-client: prompt=none with a browser session and a grant signs in silently (no page)', async () => {
    const ua = new UserAgent();
    const first = await openidClientSignIn(ua);
    const { config } = first;
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const silent = oidc.buildAuthorizationUrl(config, {
      redirect_uri: APP_REDIRECT,
      scope: 'openid email profile',
      prompt: 'none',
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const answer = await ua.get(silent, { stopAt: (u) => u.href.startsWith(APP_REDIRECT) });
    expect(answer.url.startsWith(APP_REDIRECT), `${answer.status} ${answer.url}`).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(answer.url), { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()?.sub).toBe(user.sub);
    expect(tokens.claims()?.sid).toBe(first.tokens.claims()?.sid); // the same sign-in (this service names it; oidc-provider does not)
  });

  it('openid-client: max_age=0 asks the signed-in user to sign in again; the new ID token says when (auth_time)', async () => {
    const ua = new UserAgent();
    await openidClientSignIn(ua);
    await new Promise((r) => setTimeout(r, 1100)); // auth_time has a resolution of a second
    const signedInAgainFrom = Math.floor(Date.now() / 1000);
    // openid-client checks auth_time against max_age itself (maxAge).
    const again = await openidClientSignIn(ua, BASIC, { max_age: '0' }, 0);
    expect(again.tokens.claims()!.auth_time).toBeGreaterThanOrEqual(signedInAgainFrom);
  });

  it('openid-client: revoking the refresh token (RFC 7009) ends the grant; introspection (RFC 7662) then says inactive', async () => {
    const { config, tokens } = await openidClientSignIn(new UserAgent(), BASIC, {
      scope: 'openid email offline_access',
      ...provider.offlineParams,
    });
    const live = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(live).toMatchObject({ active: true, client_id: 'rp-openid-client', sub: user.sub });
    expect(live.scope?.split(' ')).toContain('email');
    await oidc.tokenRevocation(config, tokens.refresh_token!);
    expect(await oidc.tokenIntrospection(config, tokens.refresh_token!)).toMatchObject({ active: false });
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    if (provider.logoutEndsTokens) {
      // Here the grant's sign-in ends with it: its access token too.
      expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
    }
  });

  it("openid-client surfaces the provider's refusals: a wrong secret, a wrong PKCE verifier, a code used twice", async () => {
    const config = await discover(BASIC);
    const wrong = await oidc.discovery(new URL(issuer), BASIC.id, {}, oidc.ClientSecretBasic('not-the-secret'), {
      execute: [oidc.allowInsecureRequests],
    });
    const codeFor = async (ua: UserAgent) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: APP_REDIRECT,
        scope: 'openid',
        state,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      return { back: await provider.signIn(ua, url, APP_REDIRECT), verifier, state };
    };
    const ua = new UserAgent();

    const a = await codeFor(ua);
    const secretRefused = oidc.authorizationCodeGrant(wrong, a.back, { pkceCodeVerifier: a.verifier, expectedState: a.state });
    // A 401 with a WWW-Authenticate challenge (RFC 6749 5.2): openid-client reports the challenge.
    await expect(secretRefused).rejects.toMatchObject({ status: 401, code: 'OAUTH_WWW_AUTHENTICATE_CHALLENGE' });

    const b = await codeFor(ua);
    const verifierRefused = oidc.authorizationCodeGrant(config, b.back, {
      pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
      expectedState: b.state,
    });
    await expect(verifierRefused).rejects.toMatchObject({ error: 'invalid_grant' });

    const c = await codeFor(ua);
    await oidc.authorizationCodeGrant(config, c.back, { pkceCodeVerifier: c.verifier, expectedState: c.state });
    const replay = oidc.authorizationCodeGrant(config, c.back, { pkceCodeVerifier: c.verifier, expectedState: c.state });
    await expect(replay).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('Auth.js (nothing configured but the issuer and the client) ends with a session holding the name and email', async () => {
    const { Auth } = await import('@auth/core');
    const appUrl = `http://127.0.0.1:${authJsPort}`;
    const op = { id: 'op', type: 'oidc', issuer, clientId: 'rp-authjs', clientSecret: secrets['rp-authjs'] } as OIDCConfig<
      Record<string, unknown>
    >;
    const server = serve({
      port: authJsPort,
      hostname: '127.0.0.1',
      fetch: (req) => Auth(req, { basePath: '/auth', trustHost: true, secret: 'auth-js-secret-0123456789-0123456789', providers: [op] }),
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
      const session = JSON.parse((await ua.get(`${appUrl}/auth/session`)).text) as { user?: { email?: string; name?: string } };
      expect(session.user).toMatchObject({ email: user.email, name: user.name });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  const noApache = apacheUnavailable();
  it.skipIf(noApache !== null)(
    `Apache mod_auth_openidc: the protected page sees the user; its logout ends the provider's session too${noApache ? ` (${noApache})` : ''}`,
    async () => {
      const apache = await startApache({ issuer, clientId: 'rp-apache', clientSecret: secrets['rp-apache'], port: apachePort });
      try {
        const ua = new UserAgent();
        const toProvider = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === issuer });
        const back = await provider.signIn(ua, new URL(toProvider.url), apache.redirectUri);
        const page = await ua.get(back);
        expect(page.status, apache.errorLog()).toBe(200);
        expect(page.text).toContain(`REMOTE_USER=${user.sub}`);
        expect(page.text).toContain(`EMAIL=${user.email}`);
        expect(page.text).toContain(`NAME=${user.name}`);

        // Its logout ends the local session and, through the provider's end-session endpoint, the provider's.
        const signedOut = await signOut(ua, new URL(apache.logoutUrl()), `${apache.url}/index.html`);
        expect(signedOut.href).toBe(`${apache.url}/index.html`);
        const again = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === issuer });
        expect(new URL(again.url).origin).toBe(issuer);
        const toLogin = await ua.get(again.url, {
          stopAt: (u) => u.href.startsWith(apache.redirectUri) || provider.isLoginUrl(u),
        });
        // The provider's sign-in page, not a silent sign-in.
        expect(provider.isLoginPage(toLogin), `${toLogin.status} ${toLogin.url}`).toBe(true);
      } finally {
        await apache.stop();
      }
    },
  );

  it.skipIf(noApache !== null)(
    "Apache mod_auth_openidc: a sign-out at the provider ends the app's session too (Back-Channel Logout)",
    async () => {
      const apache = await startApache({ issuer, clientId: 'rp-apache', clientSecret: secrets['rp-apache'], port: apachePort });
      try {
        const ua = new UserAgent();
        const toProvider = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === issuer });
        const back = await provider.signIn(ua, new URL(toProvider.url), apache.redirectUri);
        expect((await ua.get(back)).text).toContain(`REMOTE_USER=${user.sub}`);
        expect((await ua.get(apache.protectedUrl)).status).toBe(200);

        // The user signs out at the provider (its end-session endpoint, no hint: a page asks to confirm).
        const config = await discover(BASIC);
        const endpoint = config.serverMetadata().end_session_endpoint!;
        const confirm = await ua.get(endpoint);
        await ua.submit(confirm, {}, { button: /yes|sign out|log out/i });

        // The provider told Apache (a logout token to its back-channel URI): the app's session is gone.
        await until(
          'Apache sends the user to the provider again',
          async () => {
            const again = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === issuer });
            return new URL(again.url).origin === issuer;
          },
          { timeoutMs: 10_000, everyMs: 100 },
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${apache.errorLog()}`);
        });
      } finally {
        await apache.stop();
      }
    },
  );
});

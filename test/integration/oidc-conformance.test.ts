// The OpenID Foundation certification plans (oidcc-basic, oidcc-config,
// oidcc-rp-initiated-logout), one test per module not already tested in
// oauth-authorize, oauth-token or provider-keys (docs/conformance.md maps
// every module to its test). Each test is named after its module and does
// what the module's relying party does, on both backends.
import { createHash } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Call, PASSWORD, registerAndLogin, type Session, login as signIn } from '../helpers/http.js';
import { authorizePath, browserCookieFor, paramsOf, type RegisteredClient, registerClient } from '../helpers/oauth.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const ISSUER = 'http://localhost:3000';
const ORIGIN = { origin: ISSUER };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (c: RegisteredClient) => `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString('base64')}`;
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, any>;

describe.each(BACKENDS)('OpenID certification modules (%s)', (backend) => {
  let ahead = 0;
  const used = useTestApp(backend, { clock: () => Date.now() + ahead });
  const call: Call = (...args) => used.call(...args);
  let rp: RegisteredClient;
  let firstParty: RegisteredClient;
  let user: Session;
  let cookie: string;

  beforeAll(async () => {
    rp = await registerClient(used.t);
    firstParty = await registerClient(used.t, { firstParty: true, redirectUris: ['https://first.example/cb'] });
    user = await registerAndLogin(call, { name: 'Grace Hopper' });
    cookie = await browserCookieFor(used.t, user);
  });

  const get = (path: string, c?: string) => call('GET', path, c ? { headers: { cookie: c } } : {});
  const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    call('POST', path, { raw: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } });

  async function signedIn(): Promise<{ user: Session; cookie: string }> {
    const u = await registerAndLogin(call);
    return { user: u, cookie: await browserCookieFor(used.t, u) };
  }

  /** The code a signed-in browser brings back from /oauth2/authorize (a first-party client: no consent page). */
  async function codeOf(res: Awaited<ReturnType<Call>>, client: RegisteredClient = firstParty): Promise<string> {
    expect(res.status, res.text).toBe(302);
    const location = res.headers.get('location')!;
    expect(location.startsWith(`${client.redirectUri}?`), location).toBe(true);
    const code = paramsOf(location).get('code');
    expect(code).toBeTruthy();
    return code!;
  }

  async function exchange(code: string, client: RegisteredClient = firstParty) {
    const res = await post(
      '/oauth2/token',
      { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri },
      {
        authorization: basic(client),
      },
    );
    expect(res.status, res.text).toBe(200);
    return res.body as { access_token: string; id_token: string; refresh_token?: string };
  }

  const userinfo = async (accessToken: string) => {
    const res = await call('GET', '/oauth2/userinfo', { headers: { authorization: `Bearer ${accessToken}` } });
    expect(res.status).toBe(200);
    return res.body as Record<string, unknown>;
  };

  /** openid-client, a certified relying party, talking to the in-process app. */
  async function relyingParty(client: RegisteredClient, auth: oidc.ClientAuth): Promise<oidc.Configuration> {
    const fetchApp: oidc.CustomFetch = async (url, options) =>
      used.t.request(url, { method: options.method, headers: options.headers as HeadersInit, body: options.body as BodyInit });
    const config = await oidc.discovery(new URL(ISSUER), client.id, undefined, auth, {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: fetchApp,
    });
    config[oidc.customFetch] = fetchApp;
    return config;
  }

  /** A whole flow as openid-client runs it: PKCE, state, nonce; the browser's part done with the session cookie. */
  async function happyFlow(client: RegisteredClient, auth: oidc.ClientAuth, c: string, consent: boolean) {
    const config = await relyingParty(client, auth);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: client.redirectUri,
      scope: 'openid profile email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    let res = await get(url.pathname + url.search, c);
    if (consent) {
      const consentPath = res.headers.get('location')!;
      expect(consentPath).toMatch(/^\/oauth2\/consent\?/);
      const page = await get(consentPath, c);
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.text)![1]!;
      const interaction = new URL(consentPath, ISSUER).searchParams.get('interaction')!;
      res = await post('/oauth2/consent', { interaction, csrf_token: csrf, decision: 'allow' }, { ...ORIGIN, cookie: c });
      expect(res.status).toBe(303);
    }
    const callback = new URL(res.headers.get('location')!);
    expect(callback.origin + callback.pathname).toBe(client.redirectUri);
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    return { config, tokens };
  }

  describe('oidcc-basic-certification-test-plan', () => {
    it('oidcc-server, oidcc-idtoken-signature: a third-party client completes the flow (consent, client_secret_basic); RS256 ID token by default', async () => {
      const { cookie: c, user: u } = await signedIn();
      const { config, tokens } = await happyFlow(rp, oidc.ClientSecretBasic(rp.secret!), c, true);
      const claims = tokens.claims()!;
      expect(claims.sub).toBe(u.userId);
      expect(claims.iss).toBe(ISSUER);
      expect(claims.aud).toBe(rp.id);
      expect(typeof claims.auth_time).toBe('number');
      const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString());
      expect(header.alg).toBe('RS256');
      const jwks = (await get('/.well-known/jwks.json')).body as { keys: { kid: string; alg: string }[] };
      expect(jwks.keys.find((k) => k.kid === header.kid)?.alg).toBe('RS256');
      // at_hash (Core 3.1.3.6): the left half of the access token's SHA-256.
      const digest = createHash('sha256').update(tokens.access_token).digest();
      expect(claims.at_hash).toBe(digest.subarray(0, 16).toString('base64url'));
      const info = await oidc.fetchUserInfo(config, tokens.access_token, u.userId);
      expect(info.sub).toBe(u.userId);
      expect(info.email).toBe(u.email);
    });

    it('oidcc-server-client-secret-post', async () => {
      const { cookie: c, user: u } = await signedIn();
      const { tokens } = await happyFlow(firstParty, oidc.ClientSecretPost(firstParty.secret!), c, false);
      expect(tokens.claims()!.sub).toBe(u.userId);
    });

    it('oidcc-scope-profile, -email, -address, -phone, -all: userinfo answers the claims of the scopes granted; address and phone are not offered and are ignored', async () => {
      const infoFor = async (scope: string) =>
        userinfo((await exchange(await codeOf(await get(authorizePath(firstParty, { scope }), cookie)))).access_token);
      const profile = await infoFor('openid profile');
      expect(profile).toMatchObject({ sub: user.userId, name: 'Grace Hopper' });
      expect(typeof profile.updated_at).toBe('number');
      expect(profile.email).toBeUndefined();
      const email = await infoFor('openid email');
      expect(email).toMatchObject({ sub: user.userId, email: user.email, email_verified: expect.any(Boolean) });
      expect(email.name).toBeUndefined();
      expect(await infoFor('openid address')).toEqual({ sub: user.userId });
      expect(await infoFor('openid phone')).toEqual({ sub: user.userId });
      const all = await infoFor('openid address email phone profile');
      expect(all).toMatchObject({ sub: user.userId, name: 'Grace Hopper', email: user.email });
      expect(Object.keys(all).sort()).toEqual(['email', 'email_verified', 'name', 'sub', 'updated_at']);
    });

    it('oidcc-alternate-happy-flow: scope values and parameters in another order', async () => {
      const q = new URLSearchParams({
        state: 'alt',
        scope: 'email profile openid',
        nonce: 'n-alt',
        redirect_uri: firstParty.redirectUri,
        response_type: 'code',
        client_id: firstParty.id,
      });
      const tokens = await exchange(await codeOf(await get(`/oauth2/authorize?${q}`, cookie)));
      const claims = claimsOf(tokens.id_token);
      expect(claims.nonce).toBe('n-alt');
      expect(claims.email).toBe(user.email);
    });

    it('oidcc-display-page, oidcc-display-popup: without a session the user is sent to sign in, not to an error', async () => {
      for (const display of ['page', 'popup']) {
        const res = await get(authorizePath(firstParty, { display }));
        expect(res.status).toBe(302);
        expect(new URL(res.headers.get('location')!, ISSUER).pathname).toBe('/login');
      }
    });

    it('oidcc-prompt-login, oidcc-max-age-1: the ID token after the new sign-in has a later auth_time, the same sub', async () => {
      for (const params of [{ prompt: 'login' }, { max_age: '1' }] as Record<string, string>[]) {
        const { user: u, cookie: c } = await signedIn();
        const first = claimsOf((await exchange(await codeOf(await get(authorizePath(firstParty), c)))).id_token);
        ahead += 2000;
        const toLogin = new URL((await get(authorizePath(firstParty, params), c)).headers.get('location')!, ISSUER);
        expect(toLogin.pathname).toBe('/login');
        const fresh = await browserCookieFor(used.t, await signIn(call, u.email, PASSWORD));
        const second = claimsOf((await exchange(await codeOf(await get(toLogin.searchParams.get('next')!, fresh)))).id_token);
        expect(second.sub).toBe(first.sub);
        expect(second.auth_time).toBeGreaterThan(first.auth_time);
      }
    });

    it('oidcc-max-age-10000: a recent enough sign-in answers at once, with the same sub and auth_time', async () => {
      const first = claimsOf((await exchange(await codeOf(await get(authorizePath(firstParty, { max_age: '15000' }), cookie)))).id_token);
      const second = claimsOf((await exchange(await codeOf(await get(authorizePath(firstParty, { max_age: '10000' }), cookie)))).id_token);
      expect(second.sub).toBe(first.sub);
      expect(second.auth_time).toBe(first.auth_time);
    });

    it('oidcc-id-token-hint: prompt=none with the ID token of the first authorization answers at once, same sub and auth_time', async () => {
      const first = await exchange(await codeOf(await get(authorizePath(firstParty), cookie)));
      const code = await codeOf(await get(authorizePath(firstParty, { prompt: 'none', id_token_hint: first.id_token }), cookie));
      const second = claimsOf((await exchange(code)).id_token);
      expect(second.sub).toBe(claimsOf(first.id_token).sub);
      expect(second.auth_time).toBe(claimsOf(first.id_token).auth_time);
    });

    it('oidcc-login-hint, oidcc-ui-locales, oidcc-claims-locales: accepted without error, with or without a session', async () => {
      const params = { login_hint: `buffy@${new URL(ISSUER).hostname}`, ui_locales: 'se', claims_locales: 'se' };
      for (const [name, value] of Object.entries(params)) {
        await codeOf(await get(authorizePath(firstParty, { [name]: value }), cookie));
        const res = await get(authorizePath(firstParty, { [name]: value }));
        expect(new URL(res.headers.get('location')!, ISSUER).pathname).toBe('/login');
      }
    });

    it('oidcc-ensure-request-with-acr-values-succeeds', async () => {
      await exchange(await codeOf(await get(authorizePath(firstParty, { acr_values: '1 2' }), cookie)));
    });

    it('oidcc-claims-essential: the claims parameter is not supported and is ignored', async () => {
      const claims = JSON.stringify({ userinfo: { name: { essential: true } } });
      const tokens = await exchange(await codeOf(await get(authorizePath(firstParty, { scope: 'openid profile', claims }), cookie)));
      expect((await userinfo(tokens.access_token)).name).toBe('Grace Hopper');
    });

    it('oidcc-codereuse-30seconds: a second use 30 s later is invalid_grant and the first access token is refused', async () => {
      const code = await codeOf(await get(authorizePath(firstParty), cookie));
      const tokens = await exchange(code);
      ahead += 30_000;
      try {
        const again = await post(
          '/oauth2/token',
          { grant_type: 'authorization_code', code, redirect_uri: firstParty.redirectUri },
          {
            authorization: basic(firstParty),
          },
        );
        expect(again.status).toBe(400);
        expect(again.body.error).toBe('invalid_grant');
        const info = await call('GET', '/oauth2/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } });
        expect(info.status).toBe(401);
      } finally {
        ahead -= 30_000;
      }
    });

    it('oidcc-ensure-post-request-succeeds: an authorization request sent as a form completes with a code', async () => {
      const form = Object.fromEntries(new URL(authorizePath(firstParty, { state: 'posted' }), ISSUER).searchParams);
      const res = await post('/oauth2/authorize', form, { cookie });
      expect(res.status).toBe(303);
      const next = new URL(res.headers.get('location')!);
      const code = await codeOf(await get(next.pathname + next.search, cookie));
      expect(code).toBeTruthy();
    });
  });

  describe('oidcc-rp-initiated-logout-certification-test-plan', () => {
    const isLive = async (s: Session) => (await call('GET', '/users/me', { token: s.accessToken })).status === 200;
    /** An ID token of this user's sign-in from the token endpoint, as the module's relying party holds it. */
    const idTokenOf = async (c: string) => (await exchange(await codeOf(await get(authorizePath(firstParty), c)))).id_token;
    const logout = (params: Record<string, string>, c: string) => get(`/oauth2/logout?${new URLSearchParams(params)}`, c);

    function expectConfirmPage(res: Awaited<ReturnType<Call>>) {
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
      expect(res.text).toContain('action="/oauth2/logout/confirm"');
    }
    const confirm = (page: Awaited<ReturnType<Call>>, c: string) =>
      post(
        '/oauth2/logout/confirm',
        Object.fromEntries([...page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!])),
        { ...ORIGIN, cookie: c },
      );

    it('oidcc-rp-initiated-logout-modified-id-token-hint: a hint changed to alg none is not trusted; no redirect, the user is asked', async () => {
      const { user: u, cookie: c } = await signedIn();
      const [, payload] = (await idTokenOf(c)).split('.');
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
      const page = await logout({ id_token_hint: unsigned, post_logout_redirect_uri: firstParty.postLogoutRedirectUri, state: 's' }, c);
      expectConfirmPage(page);
      expect(await isLive(u)).toBe(true);
    });

    it('oidcc-rp-initiated-logout-bad-id-token-hint: a hint signed by another key is not trusted; no redirect, the user is asked', async () => {
      const { user: u, cookie: c } = await signedIn();
      const { privateKey } = await generateKeyPair('RS256');
      const forged = await new SignJWT({ ...claimsOf(await idTokenOf(c)) })
        .setProtectedHeader({ alg: 'RS256', kid: 'attacker' })
        .sign(privateKey);
      const page = await logout({ id_token_hint: forged, post_logout_redirect_uri: firstParty.postLogoutRedirectUri, state: 's' }, c);
      expectConfirmPage(page);
      expect(await isLive(u)).toBe(true);
    });

    it('oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri: never redirected to', async () => {
      const { user: u, cookie: c } = await signedIn();
      const hint = await idTokenOf(c);
      const res = await logout(
        { id_token_hint: hint, post_logout_redirect_uri: `${firstParty.postLogoutRedirectUri}?foo=bar`, state: 's' },
        c,
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
      expect(res.text).not.toContain('foo=bar');
      expect(await isLive(u)).toBe(false);
    });

    it('oidcc-rp-initiated-logout-no-post-logout-redirect-uri: signed out, shown the signed-out page', async () => {
      const { user: u, cookie: c } = await signedIn();
      const res = await logout({ id_token_hint: await idTokenOf(c) }, c);
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
      expect(res.text).toContain('You are signed out');
      expect(await isLive(u)).toBe(false);
      const none = paramsOf((await get(authorizePath(firstParty, { prompt: 'none' }), c)).headers.get('location'));
      expect(none.get('error')).toBe('login_required');
    });

    it('oidcc-rp-initiated-logout-no-params, oidcc-rp-initiated-logout-only-state: the user confirms, is signed out, and stays here', async () => {
      for (const params of [{}, { state: 'only' }] as Record<string, string>[]) {
        const { user: u, cookie: c } = await signedIn();
        const page = await logout(params, c);
        expectConfirmPage(page);
        expect(await isLive(u)).toBe(true);
        const res = await confirm(page, c);
        expect(res.status).toBe(200);
        expect(res.headers.get('location')).toBeNull();
        expect(res.text).toContain('You are signed out');
        expect(await isLive(u)).toBe(false);
      }
    });
  });
});

// The OpenID provider's browser endpoints (docs/api.md "OpenID Connect
// provider": authorize, consent, logout), named after the OpenID Foundation's
// certification modules they stand for, on both backends.
import { beforeAll, describe, expect, it } from 'vitest';
import { type Call, login as signIn, PASSWORD, registerAndLogin, type Session } from '../helpers/http.js';
import {
  authorizePath,
  browserCookieFor,
  idTokenFor,
  paramsOf,
  pkce,
  type RegisteredClient,
  registerClient,
  sidOf,
} from '../helpers/oauth.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const ISSUER = 'http://localhost:3000';
const ORIGIN = { origin: ISSUER };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe.each(BACKENDS)('OpenID provider: authorize, consent and logout (%s)', (backend) => {
  // The clock runs ahead on demand (max_age, expired hints).
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
    user = await registerAndLogin(call);
    cookie = await browserCookieFor(used.t, user);
  });

  const get = (path: string, c?: string) => call('GET', path, c ? { headers: { cookie: c } } : {});
  const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    call('POST', path, { raw: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } });

  /** A new user signed in with a browser session. */
  async function signedIn(): Promise<{ user: Session; cookie: string }> {
    const u = await registerAndLogin(call);
    return { user: u, cookie: await browserCookieFor(used.t, u) };
  }

  function expectErrorPage(res: Awaited<ReturnType<Call>>, error: string) {
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.text).toContain(error);
  }

  function expectClientRedirect(res: Awaited<ReturnType<Call>>, redirectUri: string) {
    expect(res.status).toBe(302);
    const location = res.headers.get('location')!;
    expect(location.startsWith(`${redirectUri}?`)).toBe(true);
    return paramsOf(location);
  }

  describe('where errors go', () => {
    it('oidcc-ensure-registered-redirect-uri: an unregistered redirect_uri gets an error page, never a redirect', async () => {
      const res = await get(authorizePath(rp, { redirect_uri: 'https://evil.example/cb' }), cookie);
      expectErrorPage(res, 'invalid_request');
      expect(res.text).not.toContain('evil.example');
    });

    it('an unknown client gets an error page', async () => {
      expectErrorPage(await get(authorizePath({ ...rp, id: 'no-such-client' }), cookie), 'invalid_client');
      expectErrorPage(await get(authorizePath(rp, { client_id: undefined }), cookie), 'invalid_request');
    });

    it('oidcc-redirect-uri-query-mismatch: a registered query with another value is not a match', async () => {
      const withQuery = await registerClient(used.t, { redirectUris: ['https://rp.example/cb?tenant=a'] });
      expectErrorPage(await get(authorizePath(withQuery, { redirect_uri: 'https://rp.example/cb?tenant=b' }), cookie), 'invalid_request');
    });

    it('oidcc-redirect-uri-query-added: a query the registered URI has not is not a match', async () => {
      expectErrorPage(await get(authorizePath(rp, { redirect_uri: `${rp.redirectUri}?extra=1` }), cookie), 'invalid_request');
    });

    it('oidcc-redirect-uri-query-OK: a registered query is kept, and the code is added to it', async () => {
      const withQuery = await registerClient(used.t, { firstParty: true, redirectUris: ['https://rp.example/cb?tenant=a&x=%2F'] });
      const res = await get(authorizePath(withQuery, { state: 's1' }), cookie);
      expect(res.status).toBe(302);
      const location = res.headers.get('location')!;
      expect(location.startsWith('https://rp.example/cb?tenant=a&x=%2F&code=')).toBe(true);
      expect(paramsOf(location).get('state')).toBe('s1');
    });

    it('a loopback redirect URI matches on any port (RFC 8252 7.3), and on nothing else', async () => {
      const native = await registerClient(used.t, {
        type: 'public',
        firstParty: true,
        redirectUris: ['http://127.0.0.1/callback'],
      });
      const { challenge } = await pkce();
      const pkceParams = { code_challenge: challenge, code_challenge_method: 'S256' };
      const ok = await get(authorizePath(native, { redirect_uri: 'http://127.0.0.1:51789/callback', ...pkceParams }), cookie);
      expect(expectClientRedirect(ok, 'http://127.0.0.1:51789/callback').get('code')).toBeTruthy();
      for (const other of ['http://127.0.0.1:51789/other', 'http://localhost:51789/callback', 'https://127.0.0.1:51789/callback']) {
        expectErrorPage(await get(authorizePath(native, { redirect_uri: other, ...pkceParams }), cookie), 'invalid_request');
      }
    });

    it('other errors go back to the client with error, error_description, state and iss (RFC 9207)', async () => {
      const cases: [Record<string, string | undefined>, string][] = [
        [{ response_type: 'token' }, 'unsupported_response_type'],
        [{ response_type: undefined }, 'invalid_request'],
        [{ response_mode: 'form_post' }, 'invalid_request'],
        [{ nonce: 'n\u0000' }, 'invalid_request'],
        [{ request: 'eyJhbGciOiJub25lIn0.e30.' }, 'request_not_supported'],
        [{ request_uri: 'https://rp.example/request.jwt' }, 'request_uri_not_supported'],
        [{ scope: 'openid roles' }, 'invalid_scope'],
        [{ prompt: 'sometimes' }, 'invalid_request'],
        [{ prompt: 'none login' }, 'invalid_request'],
        [{ max_age: '-1' }, 'invalid_request'],
        [{ id_token_hint: 'not.a.token' }, 'invalid_request'],
      ];
      for (const [params, error] of cases) {
        const q = expectClientRedirect(await get(authorizePath(rp, { state: 'xyz', ...params }), cookie), rp.redirectUri);
        expect(q.get('error'), JSON.stringify(params)).toBe(error);
        expect(q.get('error_description')).toBeTruthy();
        expect(q.get('state')).toBe('xyz');
        expect(q.get('iss')).toBe(ISSUER);
      }
    });

    it('a repeated parameter is invalid_request: a redirect once the client and redirect_uri are known, else a page', async () => {
      const q = expectClientRedirect(await get(`${authorizePath(rp)}&scope=openid+email`, cookie), rp.redirectUri);
      expect(q.get('error')).toBe('invalid_request');
      expectErrorPage(await get(`${authorizePath(rp)}&client_id=${rp.id}`, cookie), 'invalid_request');
    });

    it('PKCE: plain is refused, S256 only', async () => {
      const { challenge } = await pkce();
      for (const params of [
        { code_challenge: challenge, code_challenge_method: 'plain' },
        { code_challenge: challenge },
        { code_challenge: 'short', code_challenge_method: 'S256' },
        { code_challenge_method: 'S256' },
      ]) {
        const q = expectClientRedirect(await get(authorizePath(rp, params), cookie), rp.redirectUri);
        expect(q.get('error'), JSON.stringify(params)).toBe('invalid_request');
      }
    });

    it('a public client without a code_challenge is refused', async () => {
      const spa = await registerClient(used.t, { type: 'public', firstParty: true, redirectUris: ['https://spa.example/cb'] });
      const q = expectClientRedirect(await get(authorizePath(spa), cookie), spa.redirectUri);
      expect(q.get('error')).toBe('invalid_request');
      const { challenge } = await pkce();
      const ok = expectClientRedirect(
        await get(authorizePath(spa, { code_challenge: challenge, code_challenge_method: 'S256' }), cookie),
        spa.redirectUri,
      );
      expect(ok.get('code')).toBeTruthy();
    });
  });

  describe('signing in', () => {
    it('oidcc-prompt-none-not-logged-in: login_required, with state and iss', async () => {
      const q = expectClientRedirect(await get(authorizePath(rp, { prompt: 'none', state: 'abc' })), rp.redirectUri);
      expect(q.get('error')).toBe('login_required');
      expect(q.get('state')).toBe('abc');
      expect(q.get('iss')).toBe(ISSUER);
    });

    it('without a browser session the user is sent to /login, and comes back to the authorization', async () => {
      const res = await get(authorizePath(firstParty, { state: 'back' }));
      expect(res.status).toBe(302);
      const login = new URL(res.headers.get('location')!, ISSUER);
      expect(login.pathname).toBe('/login');
      const next = login.searchParams.get('next')!;
      expect(next).toMatch(/^\/oauth2\/authorize\?interaction=[A-Za-z0-9_-]{32}$/);
      // Still no session: back to the login page.
      expect(new URL((await get(next)).headers.get('location')!, ISSUER).pathname).toBe('/login');
      const { cookie: c } = await signedIn();
      const q = expectClientRedirect(await get(next, c), firstParty.redirectUri);
      expect(q.get('code')).toBeTruthy();
      expect(q.get('state')).toBe('back');
      expect(q.get('iss')).toBe(ISSUER);
      // Used up.
      expectErrorPage(await get(next, c), 'invalid_request');
    });

    it('an unknown interaction is an error page', async () => {
      expectErrorPage(await get('/oauth2/authorize?interaction=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', cookie), 'invalid_request');
    });

    it('oidcc-prompt-login: sent to /login even with a session, and only a new sign-in continues', async () => {
      const res = await get(authorizePath(firstParty, { prompt: 'login' }), cookie);
      expect(res.status).toBe(302);
      const login = new URL(res.headers.get('location')!, ISSUER);
      expect(login.pathname).toBe('/login');
      const next = login.searchParams.get('next')!;
      // The old sign-in does not do.
      expect(new URL((await get(next, cookie)).headers.get('location')!, ISSUER).pathname).toBe('/login');
      const fresh = await signIn(call, user.email, PASSWORD);
      const q = expectClientRedirect(await get(next, await browserCookieFor(used.t, fresh)), firstParty.redirectUri);
      expect(q.get('code')).toBeTruthy();
    });

    it('oidcc-max-age-1: a sign-in older than max_age sends the user to /login', async () => {
      const { cookie: c } = await signedIn();
      ahead += 2000;
      const res = await get(authorizePath(firstParty, { max_age: '1' }), c);
      expect(new URL(res.headers.get('location')!, ISSUER).pathname).toBe('/login');
      const recent = await get(authorizePath(firstParty, { max_age: '3600' }), c);
      expect(expectClientRedirect(recent, firstParty.redirectUri).get('code')).toBeTruthy();
      const none = expectClientRedirect(await get(authorizePath(firstParty, { max_age: '1', prompt: 'none' }), c), firstParty.redirectUri);
      expect(none.get('error')).toBe('login_required');
    });

    it('oidcc-ensure-request-with-unknown-parameter-succeeds', async () => {
      const q = expectClientRedirect(
        await get(authorizePath(firstParty, { extra: 'foobar', ui_locales: 'fr', display: 'page' }), cookie),
        firstParty.redirectUri,
      );
      expect(q.get('code')).toBeTruthy();
    });

    it('oidcc-ensure-request-without-nonce-succeeds-for-code-flow', async () => {
      const q = expectClientRedirect(await get(authorizePath(firstParty, { nonce: undefined }), cookie), firstParty.redirectUri);
      expect(q.get('code')).toBeTruthy();
    });

    it('an id_token_hint of another user: prompt=none is login_required, otherwise sign in again', async () => {
      const other = await registerAndLogin(call);
      const hint = await idTokenFor(used.t, { sub: other.userId, aud: firstParty.id });
      const none = expectClientRedirect(
        await get(authorizePath(firstParty, { prompt: 'none', id_token_hint: hint }), cookie),
        firstParty.redirectUri,
      );
      expect(none.get('error')).toBe('login_required');
      const res = await get(authorizePath(firstParty, { id_token_hint: hint }), cookie);
      expect(new URL(res.headers.get('location')!, ISSUER).pathname).toBe('/login');
      const own = await idTokenFor(used.t, { sub: user.userId, aud: firstParty.id });
      const ok = expectClientRedirect(
        await get(authorizePath(firstParty, { prompt: 'none', id_token_hint: own }), cookie),
        firstParty.redirectUri,
      );
      expect(ok.get('code')).toBeTruthy();
    });

    it('a POST is answered with a 303 to the same request as a GET', async () => {
      const res = await post('/oauth2/authorize', {
        client_id: rp.id,
        redirect_uri: rp.redirectUri,
        response_type: 'code',
        scope: 'openid',
      });
      expect(res.status).toBe(303);
      const location = new URL(res.headers.get('location')!);
      expect(location.origin + location.pathname).toBe(`${ISSUER}/oauth2/authorize`);
      expect(Object.fromEntries(location.searchParams)).toEqual({
        client_id: rp.id,
        redirect_uri: rp.redirectUri,
        response_type: 'code',
        scope: 'openid',
      });
    });
  });

  describe('consent', () => {
    async function toConsent(client: RegisteredClient, c: string, params: Record<string, string> = {}) {
      const res = await get(authorizePath(client, { scope: 'openid profile email', state: 'cs', ...params }), c);
      expect(res.status).toBe(302);
      const location = res.headers.get('location')!;
      expect(location).toMatch(/^\/oauth2\/consent\?interaction=[A-Za-z0-9_-]{32}$/);
      const page = await get(location, c);
      expect(page.status).toBe(200);
      const interaction = new URL(location, ISSUER).searchParams.get('interaction')!;
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
      return { page, interaction, csrf: csrf! };
    }

    it('the consent page names the client and each scope, with Allow and Deny; Allow redirects with a code and iss', async () => {
      const { cookie: c } = await signedIn();
      const client = await registerClient(used.t, { name: 'Photo <Printer>' });
      const { page, interaction, csrf } = await toConsent(client, c);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('content-security-policy')).toContain("form-action 'self' https://rp.example");
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(page.text).toContain('Photo &#60;Printer&#62;');
      expect(page.text).toContain('See your email address');
      expect(page.text).toContain('See your name');
      expect(page.text).toContain('>Allow<');
      expect(page.text).toContain('>Deny<');
      const res = await post('/oauth2/consent', { interaction, csrf_token: csrf, decision: 'allow' }, { ...ORIGIN, cookie: c });
      expect(res.status).toBe(303);
      const q = paramsOf(res.headers.get('location'));
      expect(res.headers.get('location')!.startsWith(`${client.redirectUri}?`)).toBe(true);
      expect(q.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(q.get('state')).toBe('cs');
      expect(q.get('iss')).toBe(ISSUER);
      // Answered once only.
      const twice = await post('/oauth2/consent', { interaction, csrf_token: csrf, decision: 'allow' }, { ...ORIGIN, cookie: c });
      expectErrorPage(twice, 'invalid_request');

      // The grant is remembered: prompt=none now gives a code; a new scope or prompt=consent asks again.
      const none = expectClientRedirect(await get(authorizePath(client, { scope: 'openid email', prompt: 'none' }), c), client.redirectUri);
      expect(none.get('code')).toBeTruthy();
      const more = await get(authorizePath(client, { scope: 'openid offline_access' }), c);
      expect(more.headers.get('location')).toMatch(/^\/oauth2\/consent\?/);
      const again = await get(authorizePath(client, { scope: 'openid', prompt: 'consent' }), c);
      expect(again.headers.get('location')).toMatch(/^\/oauth2\/consent\?/);
    });

    it('Deny redirects access_denied', async () => {
      const { cookie: c } = await signedIn();
      const { interaction, csrf } = await toConsent(rp, c);
      const res = await post('/oauth2/consent', { interaction, csrf_token: csrf, decision: 'deny' }, { ...ORIGIN, cookie: c });
      expect(res.status).toBe(303);
      const q = paramsOf(res.headers.get('location'));
      expect(q.get('error')).toBe('access_denied');
      expect(q.get('state')).toBe('cs');
      expect(q.get('iss')).toBe(ISSUER);
      expect(q.get('code')).toBeNull();
    });

    it('the answer needs this origin and the session CSRF token', async () => {
      const { cookie: c } = await signedIn();
      const { interaction, csrf } = await toConsent(rp, c);
      const fields = { interaction, csrf_token: csrf, decision: 'allow' };
      for (const [f, h] of [
        [fields, { cookie: c }],
        [fields, { origin: 'https://evil.example', cookie: c }],
        [
          { ...fields, csrf_token: 'x'.repeat(43) },
          { ...ORIGIN, cookie: c },
        ],
        [fields, ORIGIN],
      ] as [Record<string, string>, Record<string, string>][]) {
        const res = await post('/oauth2/consent', f, h);
        expect(res.status).toBe(403);
        expect(res.headers.get('location')).toBeNull();
      }
      // Still answerable by the right form.
      const ok = await post('/oauth2/consent', fields, { ...ORIGIN, cookie: c });
      expect(paramsOf(ok.headers.get('location')).get('code')).toBeTruthy();
    });

    it('offline_access asks every time, even once allowed', async () => {
      const { cookie: c } = await signedIn();
      const { interaction, csrf } = await toConsent(rp, c, { scope: 'openid offline_access' });
      const ok = await post('/oauth2/consent', { interaction, csrf_token: csrf, decision: 'allow' }, { ...ORIGIN, cookie: c });
      expect(paramsOf(ok.headers.get('location')).get('code')).toBeTruthy();
      const again = await get(authorizePath(rp, { scope: 'openid offline_access' }), c);
      expect(again.headers.get('location')).toMatch(/^\/oauth2\/consent\?/);
      const none = expectClientRedirect(
        await get(authorizePath(rp, { scope: 'openid offline_access', prompt: 'none' }), c),
        rp.redirectUri,
      );
      expect(none.get('error')).toBe('consent_required');
      // Without it, the grant answers.
      const plain = expectClientRedirect(await get(authorizePath(rp, { scope: 'openid', prompt: 'none' }), c), rp.redirectUri);
      expect(plain.get('code')).toBeTruthy();
    });

    it('offline_access is dropped, not refused, for a client without the refresh_token grant', async () => {
      const { cookie: c } = await signedIn();
      const noRefresh = await registerClient(used.t, { grantTypes: ['authorization_code'] });
      const { page } = await toConsent(noRefresh, c, { scope: 'openid offline_access' });
      expect(page.text).not.toContain('offline_access');
    });

    it('prompt=none without a grant is consent_required', async () => {
      const { cookie: c } = await signedIn();
      const q = expectClientRedirect(await get(authorizePath(rp, { prompt: 'none', state: 'n' }), c), rp.redirectUri);
      expect(q.get('error')).toBe('consent_required');
      expect(q.get('state')).toBe('n');
    });

    it('a first-party client skips consent, offline_access included', async () => {
      const { cookie: c } = await signedIn();
      const q = expectClientRedirect(
        await get(authorizePath(firstParty, { scope: 'openid profile offline_access' }), c),
        firstParty.redirectUri,
      );
      expect(q.get('code')).toBeTruthy();
    });
  });

  describe('RP-initiated logout', () => {
    const isLive = async (s: Session) => (await call('GET', '/users/me', { token: s.accessToken })).status === 200;

    it('an expired id_token_hint is accepted: the session ends and the user goes back to the registered URI with state', async () => {
      const { user: u, cookie: c } = await signedIn();
      const now = Math.floor(used.t.services.clock() / 1000);
      const hint = await idTokenFor(used.t, { sub: u.userId, aud: rp.id, sid: sidOf(u), expiresAtSeconds: now - 3600 });
      const q = new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: rp.postLogoutRedirectUri, state: 'bye' });
      const res = await get(`/oauth2/logout?${q}`, c);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe(`${rp.postLogoutRedirectUri}?state=bye`);
      expect(res.headers.get('set-cookie')).toMatch(/^auth_session=; .*Max-Age=0/);
      expect(await isLive(u)).toBe(false);
      // oidcc-rp-initiated-logout: prompt=none fails after logout.
      const none = expectClientRedirect(await get(authorizePath(firstParty, { prompt: 'none' }), c), firstParty.redirectUri);
      expect(none.get('error')).toBe('login_required');
    });

    it('an unregistered post_logout_redirect_uri is never redirected to', async () => {
      const { user: u, cookie: c } = await signedIn();
      const hint = await idTokenFor(used.t, { sub: u.userId, aud: rp.id, sid: sidOf(u) });
      const q = new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: 'https://evil.example/bye', state: 'x' });
      const res = await get(`/oauth2/logout?${q}`, c);
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
      expect(res.text).toContain('You are signed out');
      expect(res.text).not.toContain('evil.example');
      expect(await isLive(u)).toBe(false);
    });

    it('a client may POST the logout request (form), and without a session nothing is asked', async () => {
      const { user: u, cookie: c } = await signedIn();
      const hint = await idTokenFor(used.t, { sub: u.userId, aud: rp.id, sid: sidOf(u) });
      const fields = { id_token_hint: hint, post_logout_redirect_uri: rp.postLogoutRedirectUri };
      const res = await post('/oauth2/logout', fields, { cookie: c });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(rp.postLogoutRedirectUri);
      expect(await isLive(u)).toBe(false);
      const again = await post('/oauth2/logout', fields);
      expect(again.headers.get('location')).toBe(rp.postLogoutRedirectUri);
    });

    it('client_id must agree with the hint', async () => {
      const { user: u, cookie: c } = await signedIn();
      const hint = await idTokenFor(used.t, { sub: u.userId, aud: rp.id, sid: sidOf(u) });
      const res = await get(`/oauth2/logout?${new URLSearchParams({ id_token_hint: hint, client_id: firstParty.id })}`, c);
      expectErrorPage(res, 'invalid_request');
      expect(await isLive(u)).toBe(true);
    });

    it('without a hint the user confirms on a page; Sign out (same origin, CSRF) ends the session and redirects', async () => {
      const { user: u, cookie: c } = await signedIn();
      const q = new URLSearchParams({ client_id: rp.id, post_logout_redirect_uri: rp.postLogoutRedirectUri, state: 'k' });
      const page = await get(`/oauth2/logout?${q}`, c);
      expect(page.status).toBe(200);
      expect(page.text).toContain('Sign out');
      expect(page.headers.get('content-security-policy')).toContain("form-action 'self' https://rp.example");
      expect(await isLive(u)).toBe(true);
      const fields = Object.fromEntries(
        [...page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]),
      );
      expect(fields).toMatchObject({ client_id: rp.id, state: 'k' });
      const forged = await post('/oauth2/logout/confirm', fields, { origin: 'https://evil.example', cookie: c });
      expect(forged.status).toBe(403);
      expect(await isLive(u)).toBe(true);
      const res = await post('/oauth2/logout/confirm', fields, { ...ORIGIN, cookie: c });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(`${rp.postLogoutRedirectUri}?state=k`);
      expect(await isLive(u)).toBe(false);
    });

    it('a hint of another sign-in asks the user instead of ending this one', async () => {
      const { user: u, cookie: c } = await signedIn();
      const other = await registerAndLogin(call);
      const hint = await idTokenFor(used.t, { sub: other.userId, aud: rp.id, sid: sidOf(other) });
      const page = await get(`/oauth2/logout?${new URLSearchParams({ id_token_hint: hint })}`, c);
      expect(page.status).toBe(200);
      expect(page.text).toContain('action="/oauth2/logout/confirm"');
      expect(await isLive(u)).toBe(true);
    });
  });
});

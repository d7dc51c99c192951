// The provider's token side (docs/api.md "OpenID Connect provider"): POST
// /oauth2/token (authorization_code with PKCE, refresh_token rotation),
// the ID token's claims, GET|POST /oauth2/userinfo and per-client CORS, on both
// backends, by raw HTTP as a relying party sends it.
//
// Clients are registered through the admin API and codes come from
// /oauth2/authorize with the user's browser session (first-party clients: no
// consent page in the way).
import { createHash, randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from '../helpers/app.js';
import { loginAdmin, registerAndLogin, type Session } from '../helpers/http.js';
import { browserCookieFor } from '../helpers/oauth.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const FORM = 'application/x-www-form-urlencoded';
const RP = 'https://rp.example.test';
const REDIRECT = `${RP}/callback`;
const SPA_ORIGIN = 'https://spa.example.test';
const API_ORIGIN = 'https://api-user.example.test';

type Res = { status: number; body: any; headers: Headers };

const sidOf = (s: Session): string => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

describe.each(BACKENDS)('the OAuth token side (%s)', (backend) => {
  let skewMs = 0;
  const app = useTestApp(backend, () => ({
    clock: () => Date.now() + skewMs,
    overrides: { CORS_ORIGINS: API_ORIGIN },
    ...(backend === 'postgres' ? { store: redisStore() } : {}),
  }));

  const send = async (
    method: string,
    path: string,
    opts: { form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Res> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.form) headers['content-type'] = FORM;
    const res = await app.t.request(path, { method, headers, ...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const token = (form: Record<string, string>, headers: Record<string, string> = { authorization: basic('web-app', SECRET) }) =>
    send('POST', '/oauth2/token', { form, headers });
  const userinfoWith = (accessToken: string) => send('GET', '/oauth2/userinfo', { headers: { authorization: `Bearer ${accessToken}` } });

  let user: Session;
  let SECRET: string;
  let OTHER_SECRET: string;
  let NO_REFRESH_SECRET: string;
  /** Each sign-in's browser-session cookie, made once. */
  const cookies = new Map<string, string>();

  beforeAll(async () => {
    const admin = await loginAdmin(app.call);
    const register = async (fields: Record<string, unknown>): Promise<string> => {
      const res = await app.call('POST', '/admin/clients', {
        token: admin.accessToken,
        body: { redirectUris: [REDIRECT], scopes: ['openid', 'profile', 'email', 'roles', 'offline_access'], firstParty: true, ...fields },
      });
      if (res.status !== 201) throw new Error(`POST /admin/clients: ${res.status} ${res.text}`);
      return res.body.clientSecret;
    };
    SECRET = await register({ id: 'web-app', name: 'Web app', type: 'confidential', allowedOrigins: [RP] });
    OTHER_SECRET = await register({ id: 'other-app', name: 'Other app', type: 'confidential' });
    await register({ id: 'spa', name: 'SPA', type: 'public', allowedOrigins: [SPA_ORIGIN], idTokenSignedResponseAlg: 'EdDSA' });
    NO_REFRESH_SECRET = await register({ id: 'no-refresh', name: 'Codes only', type: 'confidential', grantTypes: ['authorization_code'] });
    user = await registerAndLogin(app.call, { name: 'Ada Lovelace' });
  });

  /** A code from /oauth2/authorize, as the signed-in user's browser gets it. */
  const codeFor = async (
    opts: { clientId?: string; scopes?: string; nonce?: string | null; challenge?: string | null; of?: Session } = {},
  ) => {
    const of = opts.of ?? user;
    let cookie = cookies.get(of.accessToken);
    if (cookie === undefined) {
      cookie = await browserCookieFor(app.t, of);
      cookies.set(of.accessToken, cookie);
    }
    const nonce = opts.nonce === undefined ? 'n-0S6_WzA2Mj' : opts.nonce;
    const q = new URLSearchParams({
      client_id: opts.clientId ?? 'web-app',
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: opts.scopes ?? 'openid profile email roles offline_access',
      state: 'st',
      ...(nonce !== null ? { nonce } : {}),
      ...(opts.challenge ? { code_challenge: opts.challenge, code_challenge_method: 'S256' } : {}),
    });
    const res = await app.t.request(`/oauth2/authorize?${q}`, { headers: { cookie } });
    const location = res.headers.get('location') ?? '';
    const code = new URL(location, 'http://x').searchParams.get('code');
    if (res.status !== 302 || !location.startsWith(REDIRECT) || code === null) throw new Error(`authorize: ${res.status} ${location}`);
    return code;
  };
  const exchange = async (code: string, extra: Record<string, string> = {}, headers?: Record<string, string>) =>
    token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, ...extra }, headers);

  const verifyIdToken = async (idToken: string, audience: string): Promise<JWTPayload> => {
    const jwks = createLocalJWKSet((await send('GET', '/.well-known/jwks.json')).body);
    const { payload } = await jwtVerify(idToken, jwks, { issuer: app.t.deps.config.publicUrl, audience });
    return payload;
  };

  describe('authorization_code', () => {
    it('exchanges a code for an access token, an ID token with every claim, and a refresh token (no-store)', async () => {
      const res = await exchange(await codeFor());
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('pragma')).toBe('no-cache');
      expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 900, scope: 'openid profile email roles offline_access' });
      expect(typeof res.body.refresh_token).toBe('string');

      const [sessions, me] = await Promise.all([
        app.call('GET', '/users/me/sessions', { token: user.accessToken }),
        app.call('GET', '/users/me', { token: user.accessToken }),
      ]);
      const session = sessions.body.items.find((s: { id: string }) => s.id === sidOf(user));
      const claims = await verifyIdToken(res.body.id_token, 'web-app');
      expect(decodeProtectedHeader(res.body.id_token).alg).toBe('RS256');
      const half = createHash('sha256').update(res.body.access_token).digest().subarray(0, 16).toString('base64url');
      expect(claims).toMatchObject({
        sub: user.userId,
        azp: 'web-app',
        nonce: 'n-0S6_WzA2Mj',
        sid: sidOf(user),
        amr: ['pwd'],
        auth_time: Math.floor(Date.parse(session.createdAt) / 1000),
        at_hash: half,
        name: 'Ada Lovelace',
        email: user.email,
        email_verified: false,
        roles: me.body.roles,
        updated_at: expect.any(Number),
      });
      expect(claims.exp! - claims.iat!).toBe(900);

      const at = decodeProtectedHeader(res.body.access_token);
      expect(at.typ).toBe('at+jwt');
      const access = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString());
      expect(access).toMatchObject({ sub: user.userId, client_id: 'web-app', sid: sidOf(user), aud: [app.t.deps.config.publicUrl] });
    });

    it('oidcc-codereuse: a second use is invalid_grant and the first access token is refused from then on', async () => {
      const code = await codeFor();
      const first = await exchange(code);
      expect(first.status).toBe(200);
      expect((await userinfoWith(first.body.access_token)).status).toBe(200);
      const second = await exchange(code);
      expect(second.status).toBe(400);
      expect(second.body.error).toBe('invalid_grant');
      const after = await userinfoWith(first.body.access_token);
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
      expect(refreshed.body.error).toBe('invalid_grant');
      // A later sign-in of the same session to the same client is not caught by it
      // (token times are in seconds: one second later).
      skewMs += 1_000;
      const again = await exchange(await codeFor());
      expect((await userinfoWith(again.body.access_token)).status).toBe(200);
    });

    it("refuses a code of another client, and a redirect_uri other than the request's", async () => {
      const code = await codeFor();
      expect((await exchange(code, {}, { authorization: basic('other-app', OTHER_SECRET) })).body.error).toBe('invalid_grant');
      expect((await exchange(code, { redirect_uri: `${REDIRECT}/other` })).body.error).toBe('invalid_grant');
      // Neither attempt spent it.
      expect((await exchange(code)).status).toBe(200);
    });

    it('oidcc-ensure-request-with-valid-pkce-succeeds; a wrong or missing verifier and a downgrade are invalid_grant', async () => {
      const { verifier, challenge } = pkce();
      expect((await exchange(await codeFor({ challenge }), { code_verifier: verifier })).status).toBe(200);
      expect((await exchange(await codeFor({ challenge }), { code_verifier: pkce().verifier })).body.error).toBe('invalid_grant');
      expect((await exchange(await codeFor({ challenge }))).body.error).toBe('invalid_grant');
      expect((await exchange(await codeFor(), { code_verifier: verifier })).body.error).toBe('invalid_grant');
      expect((await exchange(await codeFor({ challenge }), { code_verifier: 'short' })).body.error).toBe('invalid_request');
    });

    it('a public client sends only client_id; a confidential one without its secret is 401 invalid_client', async () => {
      const { verifier, challenge } = pkce();
      const code = await codeFor({ clientId: 'spa', challenge });
      const res = await exchange(code, { client_id: 'spa', code_verifier: verifier }, {});
      expect(res.status).toBe(200);
      expect(decodeProtectedHeader(res.body.id_token).alg).toBe('EdDSA');
      const claims = await verifyIdToken(res.body.id_token, 'spa');
      expect(claims.at_hash).toBe(createHash('sha512').update(res.body.access_token).digest().subarray(0, 32).toString('base64url'));

      const bare = await exchange(await codeFor(), { client_id: 'web-app' }, {});
      expect(bare.status).toBe(401);
      expect(bare.body.error).toBe('invalid_client');
      expect(bare.headers.get('www-authenticate')).toMatch(/^Basic/);
      expect(bare.headers.get('cache-control')).toBe('no-store');
      const wrong = await exchange(await codeFor(), {}, { authorization: basic('web-app', OTHER_SECRET) });
      expect(wrong.status).toBe(401);
      const post = await exchange(await codeFor(), { client_id: 'web-app', client_secret: SECRET }, {});
      expect(post.status).toBe(200);
    });

    it('refuses a code whose session has ended', async () => {
      const other = await registerAndLogin(app.call);
      const code = await codeFor({ of: other });
      expect((await app.call('POST', '/auth/logout', { body: { refreshToken: other.refreshToken } })).status).toBe(204);
      expect((await exchange(code)).body.error).toBe('invalid_grant');
    });

    it('issues no refresh token without offline_access, nor to a client without the grant', async () => {
      const plain = await exchange(await codeFor({ scopes: 'openid profile' }));
      expect(plain.status).toBe(200);
      expect(plain.body.refresh_token).toBeUndefined();
      const codesOnly = await exchange(
        await codeFor({ clientId: 'no-refresh' }),
        {},
        { authorization: basic('no-refresh', NO_REFRESH_SECRET) },
      );
      expect(codesOnly.status).toBe(200);
      expect(codesOnly.body.refresh_token).toBeUndefined();
    });

    it('counts each exchange as a sign-in of the client (its /admin/clients stats)', async () => {
      const admin = await loginAdmin(app.call);
      // Two hours summed: the test may run across the turn of an hour.
      const signIns = async () => {
        const res = await app.call('GET', '/admin/clients/web-app/stats?hours=2', { token: admin.accessToken });
        return (res.body.buckets as { signIns: number }[]).reduce((sum, b) => sum + b.signIns, 0);
      };
      const before = await signIns();
      expect((await exchange(await codeFor())).status).toBe(200);
      expect((await exchange(await codeFor({ challenge: pkce().challenge }))).status).toBe(400);
      expect(await signIns()).toBe(before + 1);
    });

    it('refuses a code after its 60 seconds', async () => {
      const code = await codeFor();
      skewMs += 61_000;
      expect((await exchange(code)).body.error).toBe('invalid_grant');
    });

    it('answers malformed requests with OAuth errors, never a 500', async () => {
      const long = 'x'.repeat(5000);
      const cases: Record<string, string>[] = [
        { grant_type: 'authorization_code', code: long, redirect_uri: REDIRECT },
        { grant_type: 'authorization_code', code: '\u0000%', redirect_uri: 'javascript:alert(1)' },
        { grant_type: 'authorization_code', redirect_uri: REDIRECT },
        { grant_type: 'refresh_token' },
        { grant_type: 'refresh_token', refresh_token: long, scope: long },
        { grant_type: long },
      ];
      for (const form of cases) {
        const res = await token(form);
        expect(res.status, JSON.stringify(form).slice(0, 80)).toBe(400);
        expect(['invalid_request', 'invalid_grant', 'unsupported_grant_type']).toContain(res.body.error);
      }
      const empty = await send('POST', '/oauth2/token', {
        headers: { 'content-type': FORM, authorization: basic('web-app', SECRET) },
      });
      expect(empty.status).toBe(400);
      const json = await app.t.request('/oauth2/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('web-app', SECRET) },
        body: '{"grant_type":"refresh_token"}',
      });
      expect(json.status).toBe(400);
      for (const authorization of ['Bearer', 'Bearer a b', `Bearer ${long}`, 'Bearer eyJhbGciOiJub25lIn0.e30.']) {
        const res = await send('GET', '/oauth2/userinfo', { headers: { authorization } });
        expect(res.status).toBe(401);
      }
    });

    it('answers grant_type errors by the RFC', async () => {
      expect((await token({ code: 'x' })).body.error).toBe('invalid_request');
      expect((await token({ grant_type: 'password' })).body.error).toBe('unsupported_grant_type');
      const res = await token(
        { grant_type: 'refresh_token', refresh_token: 'x' },
        { authorization: basic('no-refresh', NO_REFRESH_SECRET) },
      );
      expect(res.body.error).toBe('unauthorized_client');
      expect(res.headers.get('cache-control')).toBe('no-store');
    });
  });

  describe('refresh_token', () => {
    const start = async (of?: Session) =>
      (await exchange(await codeFor(of ? { of } : {}))).body as { access_token: string; refresh_token: string; id_token: string };
    const refresh = (refreshToken: string, extra: Record<string, string> = {}, headers?: Record<string, string>) =>
      token({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, headers);

    it('oidcc-refresh-token: rotates, and the refreshed ID token keeps sub, auth_time, amr and sid', async () => {
      const first = await start();
      const res = await refresh(first.refresh_token);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body.refresh_token).not.toBe(first.refresh_token);
      const before = await verifyIdToken(first.id_token, 'web-app');
      const after = await verifyIdToken(res.body.id_token, 'web-app');
      for (const claim of ['sub', 'auth_time', 'amr', 'sid'] as const) expect(after[claim]).toEqual(before[claim]);
      expect(after.nonce).toBeUndefined();
      expect((await userinfoWith(res.body.access_token)).status).toBe(200);
      expect((await refresh(res.body.refresh_token)).status).toBe(200);
    });

    it('is bound to its client', async () => {
      const first = await start();
      expect((await refresh(first.refresh_token, {}, { authorization: basic('other-app', OTHER_SECRET) })).body.error).toBe(
        'invalid_grant',
      );
      expect((await refresh(first.refresh_token)).status).toBe(200);
    });

    it('narrows scope, never widens it', async () => {
      const first = await start();
      const narrow = await refresh(first.refresh_token, { scope: 'openid email' });
      expect(narrow.status).toBe(200);
      expect(narrow.body.scope).toBe('openid email');
      expect((await userinfoWith(narrow.body.access_token)).body).toEqual({ sub: user.userId, email: user.email, email_verified: false });
      const wide = await refresh(narrow.body.refresh_token, { scope: 'openid admin' });
      expect(wide.body.error).toBe('invalid_scope');
      // The refused request spent nothing.
      expect((await refresh(narrow.body.refresh_token)).body.scope).toBe('openid profile email roles offline_access');
    });

    it('answers a retry within the grace period again; a reuse after it is invalid_grant and revokes every token of the sign-in', async () => {
      const first = await start(await registerAndLogin(app.call));
      const rotated = await refresh(first.refresh_token);
      const retried = await refresh(first.refresh_token);
      expect(retried.status).toBe(200);
      expect(retried.body.refresh_token).not.toBe(rotated.body.refresh_token);
      // The lost answer's token is spent, not revoked: within the grace period it answers too.
      expect((await refresh(retried.body.refresh_token)).status).toBe(200);

      skewMs += 11_000;
      const reused = await refresh(first.refresh_token);
      expect(reused.status).toBe(400);
      expect(reused.body.error).toBe('invalid_grant');
      expect((await userinfoWith(retried.body.access_token)).status).toBe(401);
      const latest = await refresh(retried.body.refresh_token);
      expect(latest.body.error).toBe('invalid_grant');
    });

    it('rotates 16 chains of one session at once: every refresh succeeds, none is a 500', async () => {
      const of = await registerAndLogin(app.call);
      const chains: string[] = [];
      for (let i = 0; i < 16; i++) chains.push((await start(of)).refresh_token);
      for (let round = 0; round < 2; round++) {
        const answers = await Promise.all(chains.map((t) => refresh(t)));
        expect(answers.map((a) => a.status)).toEqual(chains.map(() => 200));
        answers.forEach((a, i) => {
          chains[i] = a.body.refresh_token;
        });
      }
    });

    it('stops when the session ends', async () => {
      const other = await registerAndLogin(app.call);
      const first = (await exchange(await codeFor({ of: other }))).body;
      expect((await app.call('POST', '/auth/logout', { body: { refreshToken: other.refreshToken } })).status).toBe(204);
      expect((await refresh(first.refresh_token)).body.error).toBe('invalid_grant');
    });
  });

  describe('userinfo', () => {
    it('oidcc-userinfo-get, -post-header, -post-body: sub and the claims of the scopes, no-store', async () => {
      const { access_token } = (await exchange(await codeFor({ scopes: 'openid profile' }))).body;
      const expected = { sub: user.userId, name: 'Ada Lovelace', updated_at: expect.any(Number) };
      const get = await userinfoWith(access_token);
      expect(get.status).toBe(200);
      expect(get.body).toEqual(expected);
      expect(get.headers.get('cache-control')).toBe('no-store');
      const postHeader = await send('POST', '/oauth2/userinfo', { headers: { authorization: `Bearer ${access_token}` } });
      expect(postHeader.body).toEqual(expected);
      const postBody = await send('POST', '/oauth2/userinfo', { form: { access_token } });
      expect(postBody.body).toEqual(expected);
      const both = await send('POST', '/oauth2/userinfo', { form: { access_token }, headers: { authorization: `Bearer ${access_token}` } });
      expect(both.status).toBe(400);
      expect(both.body.error).toBe('invalid_request');
    });

    it('asks for a token with a bare Bearer challenge, and refuses a bad one as invalid_token', async () => {
      const none = await send('GET', '/oauth2/userinfo');
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      const bad = await userinfoWith('not.a.token');
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      // The API's own access token is not one of the provider's.
      expect((await userinfoWith(user.accessToken)).status).toBe(401);
    });

    it('refuses a token without openid, and every token of a session that ended (API logout)', async () => {
      const other = await registerAndLogin(app.call);
      const noOpenid = (await exchange(await codeFor({ of: other, scopes: 'profile' }))).body;
      expect(noOpenid.id_token).toBeUndefined();
      expect((await userinfoWith(noOpenid.access_token)).status).toBe(401);
      const { access_token } = (await exchange(await codeFor({ of: other }))).body;
      expect((await userinfoWith(access_token)).status).toBe(200);
      expect((await app.call('POST', '/auth/logout', { body: { refreshToken: other.refreshToken } })).status).toBe(204);
      const after = await userinfoWith(access_token);
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    });
  });

  describe('revocation and introspection', () => {
    const revoke = (tokenValue: string, headers: Record<string, string> = { authorization: basic('web-app', SECRET) }) =>
      send('POST', '/oauth2/revoke', { form: { token: tokenValue }, headers });
    const introspect = (tokenValue: string, headers: Record<string, string> = { authorization: basic('web-app', SECRET) }) =>
      send('POST', '/oauth2/introspect', { form: { token: tokenValue }, headers });
    const signIn = async () => {
      const of = await registerAndLogin(app.call);
      return { of, tokens: (await exchange(await codeFor({ of }))).body as { access_token: string; refresh_token: string } };
    };

    it('revoking a refresh token ends every token of that sign-in', async () => {
      const { tokens } = await signIn();
      const res = await revoke(tokens.refresh_token);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect((await userinfoWith(tokens.access_token)).status).toBe(401);
      expect((await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).body.error).toBe('invalid_grant');
    });

    it("revoking an access token does too; another client's or an unknown token is answered alike and changes nothing", async () => {
      const { tokens } = await signIn();
      expect((await revoke(tokens.access_token, { authorization: basic('other-app', OTHER_SECRET) })).status).toBe(200);
      expect((await revoke(tokens.refresh_token, { authorization: basic('other-app', OTHER_SECRET) })).status).toBe(200);
      expect((await revoke('unknown-token')).status).toBe(200);
      expect((await userinfoWith(tokens.access_token)).status).toBe(200);
      expect((await revoke(tokens.access_token)).status).toBe(200);
      expect((await userinfoWith(tokens.access_token)).status).toBe(401);
      expect((await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).body.error).toBe('invalid_grant');
      expect((await send('POST', '/oauth2/revoke', { form: {}, headers: { authorization: basic('web-app', SECRET) } })).body.error).toBe(
        'invalid_request',
      );
      expect((await send('POST', '/oauth2/revoke', { form: { token: tokens.access_token } })).status).toBe(401);
    });

    it('introspection: active with its claims while live, inactive after the session ends, to its client only', async () => {
      const { of, tokens } = await signIn();
      const access = await introspect(tokens.access_token);
      expect(access.status).toBe(200);
      expect(access.headers.get('cache-control')).toBe('no-store');
      expect(access.body).toMatchObject({ active: true, client_id: 'web-app', sub: of.userId, sid: sidOf(of), token_type: 'Bearer' });
      expect((await introspect(tokens.refresh_token)).body).toMatchObject({ active: true, token_type: 'refresh_token', sub: of.userId });
      expect((await introspect(tokens.access_token, { authorization: basic('other-app', OTHER_SECRET) })).body).toEqual({ active: false });
      expect(await introspect(tokens.access_token, {}).then((r) => r.status)).toBe(401);
      expect((await send('POST', '/oauth2/introspect', { form: { token: tokens.access_token, client_id: 'spa' } })).status).toBe(401);
      expect((await introspect('unknown-token')).body).toEqual({ active: false });

      expect((await app.call('POST', '/auth/logout', { body: { refreshToken: of.refreshToken } })).status).toBe(204);
      expect((await introspect(tokens.access_token)).body).toEqual({ active: false });
      expect((await introspect(tokens.refresh_token)).body).toEqual({ active: false });
    });
  });

  describe('CORS', () => {
    it('answers only an origin the client allows, at the token and userinfo endpoints', async () => {
      const { verifier, challenge } = pkce();
      const code = await codeFor({ clientId: 'spa', challenge });
      const res = await exchange(code, { client_id: 'spa', code_verifier: verifier }, { origin: SPA_ORIGIN });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN);
      const info = await send('GET', '/oauth2/userinfo', {
        headers: { authorization: `Bearer ${res.body.access_token}`, origin: SPA_ORIGIN },
      });
      expect(info.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN);
      // The origin of another client, and the API's CORS_ORIGINS, get nothing here.
      for (const origin of [RP, API_ORIGIN]) {
        const other = await send('GET', '/oauth2/userinfo', { headers: { authorization: `Bearer ${res.body.access_token}`, origin } });
        expect(other.status).toBe(200);
        expect(other.headers.get('access-control-allow-origin')).toBeNull();
      }
      // Its errors too, once the client is known: the app can read why.
      const replay = await exchange(code, { client_id: 'spa', code_verifier: verifier }, { origin: SPA_ORIGIN });
      expect(replay.body.error).toBe('invalid_grant');
      expect(replay.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN);
    });

    it('answers a preflight for an origin some client allows, and none other', async () => {
      const preflight = (origin: string, path = '/oauth2/token') =>
        send('OPTIONS', path, {
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        });
      const allowed = await preflight(RP);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(RP);
      expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
      expect((await preflight(SPA_ORIGIN, '/oauth2/userinfo')).headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN);
      expect((await preflight('https://evil.example.test')).headers.get('access-control-allow-origin')).toBeNull();
      expect((await preflight(API_ORIGIN)).headers.get('access-control-allow-origin')).toBeNull();
      expect((await preflight(RP, '/oauth2/authorize')).headers.get('access-control-allow-origin')).toBeNull();
      // The API keeps its own CORS.
      expect((await preflight(API_ORIGIN, '/users/me')).headers.get('access-control-allow-origin')).toBe(API_ORIGIN);
    });
  });
});

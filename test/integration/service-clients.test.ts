// Service clients (docs/openid-provider.md "Service clients"): a confidential
// client's client_credentials token, taken with openid-client, judged by the
// API through the client's current roles; a role taken away, a secret rotated
// or the client deleted refuses the next request (also on a second instance);
// its requests audited and rate-limited as the client's. Then RFC 7009
// revocation and RFC 7662 introspection of service and user tokens.
import { createHash, randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { redisStore, type TestApp } from '../helpers/app.js';
import { type Call, loginAdmin, registerAndLogin, type Session } from '../helpers/http.js';
import { browserCookieFor } from '../helpers/oauth.js';
import { BACKENDS } from '../helpers/services.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { useTestApp } from '../helpers/use-app.js';

const FORM = 'application/x-www-form-urlencoded';
const RP = 'https://rp.example.test';
const REDIRECT = `${RP}/callback`;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

type Res = { status: number; body: any; headers: Headers };

async function form(t: TestApp, path: string, body: Record<string, string>, headers: Record<string, string>): Promise<Res> {
  const res = await t.request(path, {
    method: 'POST',
    headers: { 'content-type': FORM, ...headers },
    body: new URLSearchParams(body).toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** openid-client over the app's fetch (no socket): discovery, then client_credentials. */
async function clientCredentials(t: TestApp, id: string, secret: string): Promise<string> {
  const config = await oidc.discovery(new URL(t.deps.config.publicUrl), id, secret, oidc.ClientSecretBasic(secret), {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: async (url, init) => t.request(url, init as RequestInit),
  });
  const tokens = await oidc.clientCredentialsGrant(config);
  expect(tokens.refresh_token).toBeUndefined();
  expect(tokens.id_token).toBeUndefined();
  return tokens.access_token;
}

async function registerService(call: Call, admin: Session, t: TestApp, id: string, roles: string[]): Promise<string> {
  const res = await call('POST', '/admin/clients', {
    token: admin.accessToken,
    body: {
      id,
      name: `Service ${id}`,
      type: 'confidential',
      redirectUris: [],
      grantTypes: ['client_credentials'],
      scopes: [],
      audiences: [t.deps.config.jwt.audience],
      roles,
    },
  });
  if (res.status !== 201) throw new Error(`POST /admin/clients: ${res.status} ${res.text}`);
  return res.body.clientSecret;
}

async function putRoles(call: Call, admin: Session, id: string, roles: string[]): Promise<void> {
  const current = await call('GET', `/admin/clients/${id}`, { token: admin.accessToken });
  const { id: _id, createdAt: _c, updatedAt: _u, source: _s, ...writable } = current.body;
  const res = await call('PUT', `/admin/clients/${id}`, { token: admin.accessToken, body: { ...writable, roles } });
  if (res.status !== 200) throw new Error(`PUT /admin/clients/${id}: ${res.status} ${res.text}`);
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

describe.each(BACKENDS)('service clients (%s)', (backend) => {
  const app = useTestApp(backend, () => (backend === 'postgres' ? { store: redisStore() } : {}));
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(app.call);
  });

  it('client_credentials gives a token judged by the client’s current roles: a role taken away is 403 on the next request', async () => {
    const secret = await registerService(app.call, admin, app.t, 'svc-reader', ['moderator']);
    const token = await clientCredentials(app.t, 'svc-reader', secret);
    const claims = claimsOf(token);
    expect(claims).toMatchObject({
      sub: 'svc-reader',
      client_id: 'svc-reader',
      roles: ['moderator'],
      aud: [app.t.deps.config.jwt.audience],
    });
    expect(claims.sid).toBeUndefined();

    const ok = await app.call('GET', '/users', { token });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit-limit')).toBe(String(app.t.deps.config.rateLimit.requests));
    // Its own bucket: a second request counts against the client, not an address or a user.
    const again = await app.call('GET', '/users', { token });
    expect(Number(again.headers.get('ratelimit-remaining'))).toBe(Number(ok.headers.get('ratelimit-remaining')) - 1);
    // A provider token never makes a browser session on the hosted pages.
    const session = await app.t.request('/session', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, origin: app.t.services.config.publicUrl },
    });
    expect(session.status).toBe(401);
    expect(session.headers.get('set-cookie')).toBeNull();
    // A user permission is never a client's, whatever its roles hold.
    expect((await app.call('GET', '/users/me', { token })).status).toBe(403);
    expect((await app.call('POST', '/posts', { token, body: { title: 't', body: 'b' } })).status).toBe(403);

    const introspect = async () =>
      (await form(app.t, '/oauth2/introspect', { token }, { authorization: basic('svc-reader', secret) })).body;
    expect(await introspect()).toMatchObject({ active: true, roles: ['moderator'], token_type: 'Bearer' });

    await putRoles(app.call, admin, 'svc-reader', []);
    const refused = await app.call('GET', '/users', { token });
    expect(refused.status).toBe(403);
    expect(await introspect()).toEqual({ active: false });
    // Guest rights remain.
    expect((await app.call('GET', '/posts', { token })).status).toBe(200);
    // Given back: the same token works again.
    await putRoles(app.call, admin, 'svc-reader', ['moderator']);
    expect((await app.call('GET', '/users', { token })).status).toBe(200);
  });

  it('refuses user scopes, and the grant to a client not registered for it', async () => {
    const secret = await registerService(app.call, admin, app.t, 'svc-scopes', []);
    const auth = { authorization: basic('svc-scopes', secret) };
    const openid = await form(app.t, '/oauth2/token', { grant_type: 'client_credentials', scope: 'openid' }, auth);
    expect(openid.status).toBe(400);
    expect(openid.body.error).toBe('invalid_scope');
    const web = await app.call('POST', '/admin/clients', {
      token: admin.accessToken,
      body: { id: 'web-only', name: 'Web', type: 'confidential', redirectUris: [REDIRECT], scopes: ['openid'] },
    });
    const refused = await form(
      app.t,
      '/oauth2/token',
      { grant_type: 'client_credentials' },
      { authorization: basic('web-only', web.body.clientSecret) },
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('unauthorized_client');
    const badSecret = await form(
      app.t,
      '/oauth2/token',
      { grant_type: 'client_credentials' },
      { authorization: basic('svc-scopes', 'wrong') },
    );
    expect(badSecret.status).toBe(401);
    expect(badSecret.body.error).toBe('invalid_client');
  });

  it('audits the client as the actor (actorType client), and the log filters by its id', async () => {
    const secret = await registerService(app.call, admin, app.t, 'svc-audited', ['admin']);
    const token = await clientCredentials(app.t, 'svc-audited', secret);
    expect((await app.call('GET', '/roles', { token })).status).toBe(200);
    await app.t.services.audit.flush();
    const logs = await app.call('GET', '/admin/logs?actorId=svc-audited', { token: admin.accessToken });
    expect(logs.status).toBe(200);
    const entry = logs.body.items.find((e: { route: string }) => e.route === '/roles');
    expect(entry).toMatchObject({ actorId: 'svc-audited', actorType: 'client', status: 200 });
    const mine = await app.call('GET', `/admin/logs?actorId=${admin.userId}&limit=5`, { token: admin.accessToken });
    expect(mine.body.items[0]).toMatchObject({ actorId: admin.userId, actorType: 'user' });
  });

  it('a rotated secret or a deleted client refuses its earlier tokens; introspection agrees', async () => {
    const secret = await registerService(app.call, admin, app.t, 'svc-rotated', ['moderator']);
    const token = await clientCredentials(app.t, 'svc-rotated', secret);
    const introspect = (tok: string, s: string) =>
      form(app.t, '/oauth2/introspect', { token: tok }, { authorization: basic('svc-rotated', s) });
    expect((await introspect(token, secret)).body).toMatchObject({
      active: true,
      client_id: 'svc-rotated',
      sub: 'svc-rotated',
      token_type: 'Bearer',
    });

    const rotated = await app.call('POST', '/admin/clients/svc-rotated/secret', { token: admin.accessToken });
    const newSecret = rotated.body.clientSecret as string;
    expect((await app.call('GET', '/users', { token })).status).toBe(401);
    expect((await introspect(token, newSecret)).body).toEqual({ active: false });
    // Right after the rotation: the new secret's token works at once.
    const fresh = await clientCredentials(app.t, 'svc-rotated', newSecret);
    expect((await app.call('GET', '/users', { token: fresh })).status).toBe(200);

    // Revocation (RFC 7009) of its own token: 200, then refused and inactive.
    const other = await registerService(app.call, admin, app.t, 'svc-other', []);
    expect((await form(app.t, '/oauth2/revoke', { token: fresh }, { authorization: basic('svc-other', other) })).status).toBe(200);
    expect((await app.call('GET', '/users', { token: fresh })).status).toBe(200); // another client's revocation: no effect
    const later = await clientCredentials(app.t, 'svc-rotated', newSecret);
    const revoke = await form(
      app.t,
      '/oauth2/revoke',
      { token: later, token_type_hint: 'access_token' },
      { authorization: basic('svc-rotated', newSecret) },
    );
    expect(revoke.status).toBe(200);
    expect((await app.call('GET', '/users', { token: later })).status).toBe(401);
    expect((await introspect(later, newSecret)).body).toEqual({ active: false });

    const last = await clientCredentials(app.t, 'svc-rotated', newSecret);
    expect((await app.call('GET', '/users', { token: last })).status).toBe(200);
    expect((await app.call('DELETE', '/admin/clients/svc-rotated', { token: admin.accessToken })).status).toBe(204);
    expect((await app.call('GET', '/users', { token: last })).status).toBe(401);
  });

  describe('introspection of a user’s tokens', () => {
    let secret: string;
    beforeAll(async () => {
      const res = await app.call('POST', '/admin/clients', {
        token: admin.accessToken,
        body: {
          id: 'web-rp',
          name: 'Web RP',
          type: 'confidential',
          redirectUris: [REDIRECT],
          scopes: ['openid', 'profile', 'offline_access'],
          firstParty: true,
        },
      });
      secret = res.body.clientSecret;
    });
    const tokensOf = async (user: Session) => {
      const cookie = await browserCookieFor(app.t, user);
      const verifier = randomBytes(32).toString('base64url');
      const q = new URLSearchParams({
        client_id: 'web-rp',
        redirect_uri: REDIRECT,
        response_type: 'code',
        scope: 'openid profile offline_access',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      });
      const res = await app.t.request(`/oauth2/authorize?${q}`, { headers: { cookie } });
      const code = new URL(res.headers.get('location') ?? '', 'http://x').searchParams.get('code');
      if (code === null) throw new Error(`authorize: ${res.status} ${res.headers.get('location')}`);
      const tok = await form(
        app.t,
        '/oauth2/token',
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        { authorization: basic('web-rp', secret) },
      );
      expect(tok.status).toBe(200);
      return tok.body as { access_token: string; refresh_token: string };
    };
    const active = async (token: string) =>
      (await form(app.t, '/oauth2/introspect', { token }, { authorization: basic('web-rp', secret) })).body.active as boolean;

    it('revoking the refresh token makes both tokens inactive', async () => {
      const user = await registerAndLogin(app.call);
      const t = await tokensOf(user);
      expect(await active(t.access_token)).toBe(true);
      expect(await active(t.refresh_token)).toBe(true);
      const revoke = await form(
        app.t,
        '/oauth2/revoke',
        { token: t.refresh_token, token_type_hint: 'refresh_token' },
        { authorization: basic('web-rp', secret) },
      );
      expect(revoke.status).toBe(200);
      expect(await active(t.refresh_token)).toBe(false);
      expect(await active(t.access_token)).toBe(false);
      // Unknown tokens: 200, inactive.
      expect((await form(app.t, '/oauth2/revoke', { token: 'nope' }, { authorization: basic('web-rp', secret) })).status).toBe(200);
      expect(await active('nope')).toBe(false);
    });

    it('turns inactive after POST /auth/logout, after an admin ends the sessions, and after the account is deleted', async () => {
      const a = await registerAndLogin(app.call);
      const ta = await tokensOf(a);
      expect(await active(ta.access_token)).toBe(true);
      expect((await app.call('POST', '/auth/logout', { token: a.accessToken, body: { refreshToken: a.refreshToken } })).status).toBe(204);
      expect(await active(ta.access_token)).toBe(false);
      expect(await active(ta.refresh_token)).toBe(false);

      const b = await registerAndLogin(app.call);
      const tb = await tokensOf(b);
      expect(await active(tb.access_token)).toBe(true);
      expect((await app.call('DELETE', `/users/${b.userId}/sessions`, { token: admin.accessToken })).status).toBe(204);
      expect(await active(tb.access_token)).toBe(false);
      expect(await active(tb.refresh_token)).toBe(false);

      const c = await registerAndLogin(app.call);
      const tc = await tokensOf(c);
      expect(await active(tc.access_token)).toBe(true);
      expect((await app.call('DELETE', `/users/${c.userId}`, { token: admin.accessToken })).status).toBe(204);
      expect(await active(tc.access_token)).toBe(false);
      expect(await active(tc.refresh_token)).toBe(false);
    });
  });
});

describe('service clients on two instances (postgres + Redis)', () => {
  const two = useTwoInstances();

  it('a role taken away on instance A refuses the next request on instance B (403)', async () => {
    const admin = await loginAdmin(two.callA);
    const secret = await registerService(two.callA, admin, two.a, 'svc-two', ['moderator']);
    const token = await clientCredentials(two.a, 'svc-two', secret);
    expect((await two.callB('GET', '/users', { token })).status).toBe(200);
    expect((await two.callA('GET', '/users', { token })).status).toBe(200);
    await putRoles(two.callA, admin, 'svc-two', []);
    expect((await two.callB('GET', '/users', { token })).status).toBe(403);
    expect((await two.callA('GET', '/users', { token })).status).toBe(403);
    expect((await two.callB('DELETE', '/admin/clients/svc-two', { token: admin.accessToken })).status).toBe(204);
    expect((await two.callA('GET', '/posts', { token })).status).toBe(401);
  });
});

// The browser session of the hosted pages (docs/api.md "The browser session"):
// POST /session trades the pages' access token for the HttpOnly cookie that
// the provider's browser endpoints trust; it names the sessions row, so every
// way a session ends ends it on the next request. POST /session/end signs out.
// And the connected apps (GET/DELETE /users/me/grants), on both backends.
import { createHash, randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { browserCookieName, csrfTokenOf, loadBrowserSession } from '../../src/access/browser-session.js';
import { eventOutbox, oauthAuthorizations, oauthClients, oauthGrants, oauthRefreshTokens } from '../../src/db/schema.js';
import { loginAdmin, login, PASSWORD, registerAndLogin, type Res, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const sidOf = (s: Session): string => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;

describe.each(BACKENDS)('browser session (%s)', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;
  const origin = () => new URL(app.t.deps.config.publicUrl).origin;
  const cookieName = () => browserCookieName(app.t.deps.config.publicUrl);

  /** POST /session as the signed-in page would send it. */
  const startSession = (s: Session, headers: Record<string, string> = { origin: origin() }) =>
    call('POST', '/session', { token: s.accessToken, headers });

  /** The cookie's value from a response's Set-Cookie. */
  const cookieOf = (res: Res): string => {
    const set = res.headers.get('set-cookie') ?? '';
    const m = new RegExp(`^${cookieName()}=([^;]*)`).exec(set);
    if (!m) throw new Error(`no browser-session cookie in ${set}`);
    return m[1]!;
  };

  const load = (value: string) => loadBrowserSession(app.database.db, value, Date.now());

  async function browserSession(s: Session): Promise<string> {
    const res = await startSession(s);
    expect(res.status).toBe(204);
    return cookieOf(res);
  }

  it('POST /session sets an HttpOnly, SameSite=Lax cookie naming the sign-in, living as long as its session', async () => {
    const s = await registerAndLogin(call);
    const res = await startSession(s);
    expect(res.status).toBe(204);
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/; HttpOnly/);
    expect(set).toMatch(/; SameSite=Lax/);
    expect(set).toMatch(/; Path=\//);
    // http:// in the tests: no Secure, no __Host- prefix.
    expect(set).not.toMatch(/Secure/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(set)![1]);
    expect(maxAge).toBeGreaterThan(60);
    expect(maxAge).toBeLessThanOrEqual(app.t.deps.config.jwt.refreshTtlSeconds);
    const value = cookieOf(res);
    expect(value.startsWith(`${sidOf(s)}.`)).toBe(true);
    expect(res.headers.get('cache-control')).toBe('no-store');

    const session = await load(value);
    expect(session).toMatchObject({ sessionId: sidOf(s), userId: s.userId, amr: ['pwd'] });
  });

  it('a second POST /session gives a new cookie and voids the previous one', async () => {
    const s = await registerAndLogin(call);
    const first = await browserSession(s);
    const second = await browserSession(s);
    expect(second).not.toBe(first);
    expect(await load(first)).toBeNull();
    expect(await load(second)).not.toBeNull();
  });

  it('refuses another origin, a missing Origin, and a missing, bad or ended token', async () => {
    const s = await registerAndLogin(call);
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, {}] as Record<string, string>[]) {
      const res = await startSession(s, headers);
      expect(res.status).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(res.headers.get('content-type')).toContain('text/html');
    }
    const none = await call('POST', '/session', { headers: { origin: origin() } });
    expect(none.status).toBe(401);
    const bad = await call('POST', '/session', { token: 'not.a.token', headers: { origin: origin() } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();

    expect((await call('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } })).status).toBe(204);
    const ended = await startSession(s);
    expect(ended.status).toBe(401);
    expect(ended.headers.get('set-cookie')).toBeNull();
  });

  it('the cookie stops working after an API logout', async () => {
    const s = await registerAndLogin(call);
    const value = await browserSession(s);
    expect((await call('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } })).status).toBe(204);
    expect(await load(value)).toBeNull();
  });

  it('the cookie stops working when an admin ends the user’s sessions', async () => {
    const s = await registerAndLogin(call);
    const value = await browserSession(s);
    const admin = await loginAdmin(call);
    expect((await call('DELETE', `/users/${s.userId}/sessions`, { token: admin.accessToken })).status).toBe(204);
    expect(await load(value)).toBeNull();
  });

  it('the cookie stops working when the password changes in another session', async () => {
    const s = await registerAndLogin(call);
    const value = await browserSession(s);
    const other = await login(call, s.email, PASSWORD);
    const changed = await call('PUT', '/users/me', {
      token: other.accessToken,
      body: { currentPassword: PASSWORD, password: 'another-Long-passphrase-43' },
    });
    expect(changed.status).toBe(200);
    expect(await load(value)).toBeNull();
  });

  describe('POST /session/end', () => {
    const end = (cookie: string | null, headers: Record<string, string> = {}, raw?: string) =>
      call('POST', '/session/end', {
        headers: { origin: origin(), ...(cookie ? { cookie: `${cookieName()}=${cookie}` } : {}), ...headers },
        ...(raw !== undefined ? { raw } : {}),
      });

    it('without the CSRF token (or from another origin) is refused and the session lives on', async () => {
      const s = await registerAndLogin(call);
      const value = await browserSession(s);
      const session = (await load(value))!;
      expect((await end(value)).status).toBe(403);
      expect((await end(value, { 'x-csrf-token': 'x'.repeat(43) })).status).toBe(403);
      expect((await end(value, { origin: 'https://evil.example', 'x-csrf-token': csrfTokenOf(session) })).status).toBe(403);
      // Another user's token proves nothing about this session.
      const other = await registerAndLogin(call);
      expect((await end(value, { authorization: `Bearer ${other.accessToken}` })).status).toBe(403);
      expect(await load(value)).not.toBeNull();
      expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
    });

    it('with the CSRF token in the header ends the session and clears the cookie', async () => {
      const s = await registerAndLogin(call);
      const value = await browserSession(s);
      const res = await end(value, { 'x-csrf-token': csrfTokenOf((await load(value))!) });
      expect(res.status).toBe(204);
      expect(res.headers.get('set-cookie')).toMatch(new RegExp(`^${cookieName()}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax`));
      expect(await load(value)).toBeNull();
      // The session ended like a logout: its tokens are refused on the next request.
      expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(401);
    });

    it('with the CSRF token as a form field, or a token of the same session, ends it too', async () => {
      const a = await registerAndLogin(call);
      const aValue = await browserSession(a);
      const form = `csrf_token=${encodeURIComponent(csrfTokenOf((await load(aValue))!))}`;
      expect((await end(aValue, { 'content-type': 'application/x-www-form-urlencoded' }, form)).status).toBe(204);
      expect(await load(aValue)).toBeNull();

      const b = await registerAndLogin(call);
      const bValue = await browserSession(b);
      expect((await end(bValue, { authorization: `Bearer ${b.accessToken}` })).status).toBe(204);
      expect(await load(bValue)).toBeNull();
    });

    it('without a live browser session only clears the cookie; malformed bodies are no 500', async () => {
      const res = await end(null);
      expect(res.status).toBe(204);
      expect(res.headers.get('set-cookie')).toMatch(/Max-Age=0/);
      expect((await end('garbage')).status).toBe(204);
      const s = await registerAndLogin(call);
      const value = await browserSession(s);
      const bad = await end(value, { 'content-type': 'multipart/form-data; boundary=x' }, '--x\r\nbroken');
      expect(bad.status).toBe(403);
      expect(await load(value)).not.toBeNull();
    });
  });
});

describe.each(BACKENDS)('connected apps (%s)', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;

  // Test setup only: the authorize and token endpoints are built elsewhere, so
  // the rows they would write (client, grant, authorization, refresh token) are inserted here.
  async function connect(s: Session, clientId: string, scopes: string) {
    const db = app.database.db;
    await db
      .insert(oauthClients)
      .values({ id: clientId, name: `App ${clientId}`, type: 'public' })
      .onConflictDoNothing();
    await db.insert(oauthGrants).values({ userId: s.userId, clientId, scopes });
    const [authz] = await db
      .insert(oauthAuthorizations)
      .values({ sessionId: sidOf(s), userId: s.userId, clientId, scopes })
      .returning({ id: oauthAuthorizations.id });
    const refresh = createHash('sha256').update(randomBytes(32)).digest('hex');
    await db
      .insert(oauthRefreshTokens)
      .values({ tokenHash: refresh, authorizationId: authz!.id, expiresAt: new Date(Date.now() + 86_400_000) });
    return authz!.id;
  }

  const clientId = (tag: string) => `${tag}-${randomBytes(4).toString('hex')}`;

  it('lists the apps the user allowed, with their names and scopes, and only the user’s own', async () => {
    const s = await registerAndLogin(call);
    const other = await registerAndLogin(call);
    const [one, two] = [clientId('notes'), clientId('photos')];
    await connect(s, one, 'openid profile');
    await connect(s, two, 'openid email offline_access');
    await connect(other, one, 'openid');

    const res = await call('GET', '/users/me/grants', { token: s.accessToken });
    expect(res.status).toBe(200);
    const items = res.body.items as { clientId: string }[];
    expect(items.map((g) => g.clientId).sort()).toEqual([one, two].sort());
    expect(items.find((g) => g.clientId === two)).toEqual({
      clientId: two,
      clientName: `App ${two}`,
      scopes: ['openid', 'email', 'offline_access'],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect((await call('GET', '/users/me/grants', {})).status).toBe(401);
  });

  it('revoking one forgets the grant, revokes its authorizations and refresh tokens, and announces the revoked pairs', async () => {
    const s = await registerAndLogin(call);
    const other = await registerAndLogin(call);
    const id = clientId('mail');
    const authz = await connect(s, id, 'openid offline_access');
    const othersAuthz = await connect(other, id, 'openid');

    const res = await call('DELETE', `/users/me/grants/${id}`, { token: s.accessToken });
    expect(res.status).toBe(204);
    expect((await call('GET', '/users/me/grants', { token: s.accessToken })).body.items).toEqual([]);

    const db = app.database.db;
    const [row] = await db.select().from(oauthAuthorizations).where(eq(oauthAuthorizations.id, authz));
    expect(row!.revokedAt).not.toBeNull();
    expect(await db.select().from(oauthRefreshTokens).where(eq(oauthRefreshTokens.authorizationId, authz))).toEqual([]);
    const events = await db.select().from(eventOutbox).where(eq(eventOutbox.type, 'oauth.access_revoked'));
    expect(events.map((e) => JSON.parse(e.payload))).toContainEqual({
      type: 'oauth.access_revoked',
      pairs: [{ sessionId: sidOf(s), clientId: id }],
      at: expect.any(Number),
    });

    // The other user's grant is untouched.
    const [theirs] = await db.select().from(oauthAuthorizations).where(eq(oauthAuthorizations.id, othersAuthz));
    expect(theirs!.revokedAt).toBeNull();
    expect(
      await db
        .select()
        .from(oauthGrants)
        .where(and(eq(oauthGrants.userId, other.userId), eq(oauthGrants.clientId, id))),
    ).toHaveLength(1);
    // The user's own session lives on.
    expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
  });

  it('an app the user never connected is 404 client_not_found; a malformed id is 400', async () => {
    const s = await registerAndLogin(call);
    const res = await call('DELETE', `/users/me/grants/${clientId('never')}`, { token: s.accessToken });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('client_not_found');
    expect((await call('DELETE', '/users/me/grants/a%20b', { token: s.accessToken })).status).toBe(400);
  });
});

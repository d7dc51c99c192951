// A user's sessions (docs/api.md "Users", /users/me/sessions and /users/:id/sessions):
// listing them, ending one, all others, or (as an admin) all of a user's, on both
// backends; and an end on one instance refused on another within 100 ms.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import { sessions } from '../../src/db/schema.js';
import type { RedisStore } from '../../src/store/redis.js';
import { within } from '../helpers/eventually.js';
import { createTestApp, redisStore, testConfig, type TestApp } from '../helpers/app.js';
import { client, loginAdmin, PASSWORD, registerAndLogin, type Call, type Session } from '../helpers/http.js';
import { BACKENDS, openDatabase } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const NIL = '00000000-0000-4000-8000-000000000000';
const BROWSER = 'TestBrowser/1.0';
const CLIENT_IP = '203.0.113.7';
const SESSION_KEYS = ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastRefreshedAt', 'userAgent'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sidOf = (s: Session): string => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;

type Listed = {
  id: string;
  createdAt: string;
  lastRefreshedAt: string | null;
  expiresAt: string;
  ip: string;
  userAgent: string;
  current: boolean;
};

/** Another sign-in of an existing user, from the test browser behind one trusted proxy. */
async function signIn(call: Call, email: string, password = PASSWORD, headers: Record<string, string> = {}): Promise<Session> {
  // Sign-ins of one user a few milliseconds apart have distinct creation times (the list is newest first).
  await sleep(5);
  const res = await call('POST', '/auth/login', {
    body: { email, password },
    headers: { 'user-agent': BROWSER, 'x-forwarded-for': CLIENT_IP, ...headers },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  const claims = JSON.parse(Buffer.from(res.body.accessToken.split('.')[1], 'base64url').toString());
  return { email, userId: claims.sub, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

async function listed(call: Call, s: Session): Promise<Listed[]> {
  const res = await call('GET', '/users/me/sessions', { token: s.accessToken });
  expect(res.status, res.text).toBe(200);
  return res.body.items;
}

/** The session is over: its access token is refused, and so is its refresh token. */
async function expectEnded(call: Call, s: Session, label = 'ended session') {
  const me = await call('GET', '/users/me', { token: s.accessToken });
  expect(me.status, label).toBe(401);
  expect(me.body.code, label).toBe('invalid_token');
  const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
  expect(refreshed.status, label).toBe(401);
  expect(refreshed.body.code, label).toBe('invalid_refresh_token');
}

/** On another instance: refused once Redis's invalidation message has arrived (milliseconds), then as expectEnded. */
async function expectEndedWithin100ms(call: Call, s: Session, label: string) {
  const refused = await within(100, async () => (await call('GET', '/users/me', { token: s.accessToken })).status === 401);
  expect(refused, `${label}: refused within 100 ms`).toBe(true);
  await expectEnded(call, s, label);
}

async function expectAlive(call: Call, s: Session, label = 'live session') {
  expect((await call('GET', '/users/me', { token: s.accessToken })).status, label).toBe(200);
}

describe.each(BACKENDS)('sessions on %s', (backend) => {
  // One trusted proxy: the address a session lists is the X-Forwarded-For one.
  const app = useTestApp(backend, { overrides: { TRUST_PROXY: '1' } });
  const { call } = app;
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(call);
  });

  it('lists each sign-in with its browser and address, newest first, and marks only the one in use as current', async () => {
    const first = await registerAndLogin(call); // no user agent, no forwarded address
    const second = await signIn(call, first.email);
    const fromSecond = await listed(call, second);
    expect(fromSecond.map((s) => s.id)).toEqual([sidOf(second), sidOf(first)]);
    for (const s of fromSecond) expect(Object.keys(s).sort()).toEqual(SESSION_KEYS);
    expect(fromSecond[0]).toMatchObject({ userAgent: BROWSER, ip: CLIENT_IP, current: true, lastRefreshedAt: null });
    expect(fromSecond[1]).toMatchObject({ userAgent: '', current: false, lastRefreshedAt: null });
    expect(Date.parse(fromSecond[0]!.createdAt)).toBeGreaterThan(Date.parse(fromSecond[1]!.createdAt));
    for (const s of fromSecond) {
      expect(new Date(s.createdAt).toISOString()).toBe(s.createdAt);
      expect(Date.parse(s.expiresAt)).toBeGreaterThan(Date.parse(s.createdAt));
    }
    // Seen from the other session, the other one is current.
    const fromFirst = await listed(call, first);
    expect(fromFirst.map((s) => [s.id, s.current])).toEqual([
      [sidOf(second), false],
      [sidOf(first), true],
    ]);
  });

  it('never lists another user’s sessions', async () => {
    const mine = await registerAndLogin(call);
    const theirs = await signIn(call, (await registerAndLogin(call)).email);
    const ids = (await listed(call, mine)).map((s) => s.id);
    expect(ids).toEqual([sidOf(mine)]);
    expect(ids).not.toContain(sidOf(theirs));
  });

  it('shows when a session was last refreshed: never at first, then the time of the refresh, under the same id', async () => {
    const s = await signIn(call, (await registerAndLogin(call)).email);
    expect((await listed(call, s)).find((x) => x.id === sidOf(s))!.lastRefreshedAt).toBeNull();
    const before = Date.now();
    await sleep(5);
    const res = await call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
    expect(res.status, res.text).toBe(200);
    const fresh = { ...s, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
    expect(sidOf(fresh)).toBe(sidOf(s));
    const row = (await listed(call, fresh)).find((x) => x.id === sidOf(s))!;
    expect(row.current).toBe(true);
    expect(row.lastRefreshedAt).not.toBeNull();
    expect(Date.parse(row.lastRefreshedAt!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(row.lastRefreshedAt!)).toBeGreaterThan(Date.parse(row.createdAt));
    expect(Date.parse(row.lastRefreshedAt!)).toBeLessThanOrEqual(Date.now());
  });

  it('leaves out sessions that were signed out of or have expired', async () => {
    const a = await registerAndLogin(call);
    const b = await signIn(call, a.email);
    const c = await signIn(call, a.email);
    expect((await listed(call, a)).map((s) => s.id)).toEqual([sidOf(c), sidOf(b), sidOf(a)]);
    expect((await call('POST', '/auth/logout', { body: { refreshToken: b.refreshToken } })).status).toBe(204);
    await app.database.db
      .update(sessions)
      .set({ expiresAt: sql`now() - interval '1 second'` })
      .where(eq(sessions.id, sidOf(c)));
    expect((await listed(call, a)).map((s) => s.id)).toEqual([sidOf(a)]);
  });

  it('ends one of your sessions: on the very next request its access and refresh tokens are refused, the others go on', async () => {
    const phone = await registerAndLogin(call);
    const laptop = await signIn(call, phone.email);
    await expectAlive(call, phone);
    const res = await call('DELETE', `/users/me/sessions/${sidOf(phone)}`, { token: laptop.accessToken });
    expect(res.status, res.text).toBe(204);
    await expectEnded(call, phone);
    await expectAlive(call, laptop);
    expect((await listed(call, laptop)).map((s) => s.id)).toEqual([sidOf(laptop)]);
    // The current session may be ended too: that is signing out.
    expect((await call('DELETE', `/users/me/sessions/${sidOf(laptop)}`, { token: laptop.accessToken })).status).toBe(204);
    await expectEnded(call, laptop);
  });

  it('answers 404 for another user’s session or an unknown one (which goes on), and 400 for a malformed id', async () => {
    const me = await registerAndLogin(call);
    const other = await registerAndLogin(call);
    const theirs = await call('DELETE', `/users/me/sessions/${sidOf(other)}`, { token: me.accessToken });
    expect(theirs.status).toBe(404);
    expect(theirs.body.code).toBe('not_found');
    await expectAlive(call, other, 'the other user’s session');
    const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: other.refreshToken } });
    expect(refreshed.status).toBe(200);
    const unknown = await call('DELETE', `/users/me/sessions/${NIL}`, { token: me.accessToken });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not_found');
    const malformed = await call('DELETE', '/users/me/sessions/not-a-session', { token: me.accessToken });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('validation_failed');
    await expectAlive(call, me);
  });

  it('signs you out everywhere else: every other session ends at once, the current one and other users’ go on', async () => {
    const a = await registerAndLogin(call);
    const b = await signIn(call, a.email);
    const c = await signIn(call, a.email);
    const bystander = await registerAndLogin(call);
    const res = await call('DELETE', '/users/me/sessions', { token: b.accessToken });
    expect(res.status, res.text).toBe(204);
    await expectEnded(call, a, 'first sign-in');
    await expectEnded(call, c, 'third sign-in');
    await expectAlive(call, b, 'current session');
    await expectAlive(call, bystander, 'another user');
    const left = await listed(call, b);
    expect(left.map((s) => [s.id, s.current])).toEqual([[sidOf(b), true]]);
    // Nothing else to end: still 204, and the current session lives on.
    expect((await call('DELETE', '/users/me/sessions', { token: b.accessToken })).status).toBe(204);
    await expectAlive(call, b, 'current session after a second call');
  });

  it('lets an admin end every session of a user, in force on the next request; the user can sign in again', async () => {
    const a = await registerAndLogin(call);
    const b = await signIn(call, a.email);
    const bystander = await registerAndLogin(call);
    const res = await call('DELETE', `/users/${a.userId}/sessions`, { token: admin.accessToken });
    expect(res.status, res.text).toBe(204);
    await expectEnded(call, a, 'first sign-in');
    await expectEnded(call, b, 'second sign-in');
    await expectAlive(call, bystander, 'another user');
    await expectAlive(call, admin, 'the admin');
    const again = await signIn(call, a.email);
    expect((await listed(call, again)).map((s) => s.id)).toEqual([sidOf(again)]);
  });

  it('refuses ending all of a user’s sessions to a non-admin (403), for an unknown user (404) and a malformed id (400)', async () => {
    const victim = await registerAndLogin(call);
    const user = await registerAndLogin(call);
    const moderator = await registerAndLogin(call);
    await call('PUT', `/users/${moderator.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', 'moderator'] } });
    for (const who of [user, moderator]) {
      const res = await call('DELETE', `/users/${victim.userId}/sessions`, { token: who.accessToken });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    }
    await expectAlive(call, victim);
    const unknown = await call('DELETE', `/users/${NIL}/sessions`, { token: admin.accessToken });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not_found');
    const malformed = await call('DELETE', '/users/someone/sessions', { token: admin.accessToken });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('validation_failed');
  });
});

describe('sessions across two instances over one PostgreSQL and one Redis', () => {
  let a: TestApp;
  let b: TestApp;
  let callA: Call;
  let callB: Call;
  let stores: RedisStore[];
  let dispose: () => Promise<void>;
  let admin: Session;

  beforeAll(async () => {
    const db = await openDatabase('postgres');
    dispose = db.dispose;
    const prefix = `test:${Math.random().toString(36).slice(2)}:`;
    stores = [redisStore(prefix), redisStore(prefix)];
    await Promise.all(stores.map((s) => s.ready()));
    const config = testConfig({ TRUST_PROXY: '1' });
    a = await createTestApp({ database: db.database, store: stores[0], config });
    b = await createTestApp({ database: db.database, store: stores[1], config, keyRing: a.deps.keyRing, prepare: false });
    await prepareDatabase(b.deps);
    callA = client(a);
    callB = client(b);
    admin = await loginAdmin(callA);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all((stores ?? []).map((s) => s.close()));
    await dispose?.();
  });

  it('lists on B a sign-in made on A, with its browser', async () => {
    const s = await signIn(callA, (await registerAndLogin(callA)).email);
    const items = await listed(callB, s);
    expect(items[0]).toMatchObject({ id: sidOf(s), userAgent: BROWSER, ip: CLIENT_IP, current: true });
  });

  it('refuses on B, within 100 ms, a session ended on A (B had just accepted it)', async () => {
    const phone = await registerAndLogin(callA);
    const laptop = await signIn(callA, phone.email);
    await expectAlive(callB, phone, 'before, on B');
    expect((await callA('DELETE', `/users/me/sessions/${sidOf(phone)}`, { token: laptop.accessToken })).status).toBe(204);
    await expectEndedWithin100ms(callB, phone, 'ended on A, seen on B');
    await expectAlive(callB, laptop, 'the other session, on B');
  });

  it('refuses on A, within 100 ms, the other sessions ended on B', async () => {
    const first = await registerAndLogin(callA);
    const second = await signIn(callA, first.email);
    const current = await signIn(callB, first.email);
    await expectAlive(callA, first, 'before, on A');
    await expectAlive(callA, second, 'before, on A');
    expect((await callB('DELETE', '/users/me/sessions', { token: current.accessToken })).status).toBe(204);
    await expectEndedWithin100ms(callA, first, 'first, ended on B, seen on A');
    await expectEndedWithin100ms(callA, second, 'second, ended on B, seen on A');
    await expectAlive(callA, current, 'the current one, on A');
  });

  it('refuses on B, within 100 ms, every session an admin ended on A', async () => {
    const first = await registerAndLogin(callB);
    const second = await signIn(callB, first.email);
    await expectAlive(callB, first, 'before, on B');
    await expectAlive(callB, second, 'before, on B');
    expect((await callA('DELETE', `/users/${first.userId}/sessions`, { token: admin.accessToken })).status).toBe(204);
    await expectEndedWithin100ms(callB, first, 'first, seen on B');
    await expectEndedWithin100ms(callB, second, 'second, seen on B');
  });
});

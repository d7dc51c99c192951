// A user's sessions (docs/api.md "Users", /users/me/sessions and /users/:id/sessions):
// listing them, ending one, all others, or (as an admin) all of a user's, on both
// backends; and an end on one instance refused on another within 100 ms.
import { eq, sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { sessions } from '../../src/db/schema.js';
import { sleep, within } from '../helpers/eventually.js';
import type { TestApp } from '../helpers/app.js';
import { client, loginAdmin, PASSWORD, read, registerAndLogin, type Session, typed } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { useTestApp } from '../helpers/use-app.js';

const NIL = '00000000-0000-4000-8000-000000000000';
const BROWSER = 'TestBrowser/1.0';
const CLIENT_IP = '203.0.113.7';
const SESSION_KEYS = ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastRefreshedAt', 'userAgent'];

const sidOf = (s: Session): string => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;

// Requests go through the typed client (over app.request()), so a change to these routes
// breaks this file at compile time; malformed ids stay raw requests.
type On = Pick<TestApp, 'request'>;

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
async function signIn(on: On, email: string, password = PASSWORD, headers: Record<string, string> = {}): Promise<Session> {
  // Sign-ins of one user a few milliseconds apart have distinct creation times (the list is newest first).
  await sleep(5);
  const res = await typed(on).api.auth.login.$post(
    { json: { email, password } },
    { headers: { 'user-agent': BROWSER, 'x-forwarded-for': CLIENT_IP, ...headers } },
  );
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const body = await res.json();
  const claims = JSON.parse(Buffer.from(body.accessToken.split('.')[1]!, 'base64url').toString());
  return { email, userId: claims.sub, accessToken: body.accessToken, refreshToken: body.refreshToken };
}

async function listed(on: On, s: Session): Promise<Listed[]> {
  const res = await typed(on, s).sessions();
  if (res.status !== 200) throw new Error(`GET /users/me/sessions: ${res.status} ${await res.text()}`);
  return (await res.json()).items;
}

const endSession = async (on: On, by: Session, id: string) => read(await typed(on, by).endSession(id));
const endOthers = async (on: On, by: Session) => read(await typed(on, by).endOtherSessions());
const endAllOf = async (on: On, by: Session, userId: string) =>
  read(await typed(on, by).api.users[':id'].sessions.$delete({ param: { id: userId } }));
const meStatus = async (on: On, s: Session) => (await typed(on, s).api.users.me.$get()).status as number;

/** The session is over: its access token is refused, and so is its refresh token. */
async function expectEnded(on: On, s: Session, label = 'ended session') {
  const me = await read(await typed(on, s).api.users.me.$get());
  expect(me.status, label).toBe(401);
  expect(me.body.code, label).toBe('invalid_token');
  const refreshed = await read(await typed(on).api.auth.refresh.$post({ json: { refreshToken: s.refreshToken } }));
  expect(refreshed.status, label).toBe(401);
  expect(refreshed.body.code, label).toBe('invalid_refresh_token');
}

/** On another instance: refused once Redis's invalidation message has arrived (milliseconds), then as expectEnded. */
async function expectEndedWithin100ms(on: On, s: Session, label: string) {
  const refused = await within(100, async () => (await meStatus(on, s)) === 401);
  expect(refused, `${label}: refused within 100 ms`).toBe(true);
  await expectEnded(on, s, label);
}

async function expectAlive(on: On, s: Session, label = 'live session') {
  expect(await meStatus(on, s), label).toBe(200);
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
    const second = await signIn(app.t, first.email);
    const fromSecond = await listed(app.t, second);
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
    const fromFirst = await listed(app.t, first);
    expect(fromFirst.map((s) => [s.id, s.current])).toEqual([
      [sidOf(second), false],
      [sidOf(first), true],
    ]);
  });

  it('never lists another user’s sessions', async () => {
    const mine = await registerAndLogin(call);
    const theirs = await signIn(app.t, (await registerAndLogin(call)).email);
    const ids = (await listed(app.t, mine)).map((s) => s.id);
    expect(ids).toEqual([sidOf(mine)]);
    expect(ids).not.toContain(sidOf(theirs));
  });

  it('shows when a session was last refreshed: never at first, then the time of the refresh, under the same id', async () => {
    const s = await signIn(app.t, (await registerAndLogin(call)).email);
    expect((await listed(app.t, s)).find((x) => x.id === sidOf(s))!.lastRefreshedAt).toBeNull();
    const before = Date.now();
    await sleep(5);
    const res = await typed(app.t).api.auth.refresh.$post({ json: { refreshToken: s.refreshToken } });
    if (res.status !== 200) throw new Error(`refresh: ${res.status} ${await res.text()}`);
    const fresh = { ...s, ...(await res.json()) };
    expect(sidOf(fresh)).toBe(sidOf(s));
    const row = (await listed(app.t, fresh)).find((x) => x.id === sidOf(s))!;
    expect(row.current).toBe(true);
    expect(row.lastRefreshedAt).not.toBeNull();
    expect(Date.parse(row.lastRefreshedAt!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(row.lastRefreshedAt!)).toBeGreaterThan(Date.parse(row.createdAt));
    expect(Date.parse(row.lastRefreshedAt!)).toBeLessThanOrEqual(Date.now());
  });

  it('leaves out sessions that were signed out of or have expired', async () => {
    const a = await registerAndLogin(call);
    const b = await signIn(app.t, a.email);
    const c = await signIn(app.t, a.email);
    expect((await listed(app.t, a)).map((s) => s.id)).toEqual([sidOf(c), sidOf(b), sidOf(a)]);
    expect((await typed(app.t).api.auth.logout.$post({ json: { refreshToken: b.refreshToken } })).status).toBe(204);
    await app.database.db
      .update(sessions)
      .set({ expiresAt: sql`now() - interval '1 second'` })
      .where(eq(sessions.id, sidOf(c)));
    expect((await listed(app.t, a)).map((s) => s.id)).toEqual([sidOf(a)]);
  });

  it('ends one of your sessions: on the very next request its access and refresh tokens are refused, the others go on', async () => {
    const phone = await registerAndLogin(call);
    const laptop = await signIn(app.t, phone.email);
    await expectAlive(app.t, phone);
    const res = await endSession(app.t, laptop, sidOf(phone));
    expect(res.status, res.text).toBe(204);
    await expectEnded(app.t, phone);
    await expectAlive(app.t, laptop);
    expect((await listed(app.t, laptop)).map((s) => s.id)).toEqual([sidOf(laptop)]);
    // The current session may be ended too: that is signing out.
    expect((await endSession(app.t, laptop, sidOf(laptop))).status).toBe(204);
    await expectEnded(app.t, laptop);
  });

  it('answers 404 for another user’s session or an unknown one (which goes on), and 400 for a malformed id', async () => {
    const me = await registerAndLogin(call);
    const other = await registerAndLogin(call);
    const theirs = await endSession(app.t, me, sidOf(other));
    expect(theirs.status).toBe(404);
    expect(theirs.body.code).toBe('not_found');
    await expectAlive(app.t, other, 'the other user’s session');
    const refreshed = await typed(app.t).api.auth.refresh.$post({ json: { refreshToken: other.refreshToken } });
    expect(refreshed.status).toBe(200);
    const unknown = await endSession(app.t, me, NIL);
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not_found');
    const malformed = await call('DELETE', '/users/me/sessions/not-a-session', { token: me.accessToken });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('validation_failed');
    await expectAlive(app.t, me);
  });

  it('signs you out everywhere else: every other session ends at once, the current one and other users’ go on', async () => {
    const a = await registerAndLogin(call);
    const b = await signIn(app.t, a.email);
    const c = await signIn(app.t, a.email);
    const bystander = await registerAndLogin(call);
    const res = await endOthers(app.t, b);
    expect(res.status, res.text).toBe(204);
    await expectEnded(app.t, a, 'first sign-in');
    await expectEnded(app.t, c, 'third sign-in');
    await expectAlive(app.t, b, 'current session');
    await expectAlive(app.t, bystander, 'another user');
    const left = await listed(app.t, b);
    expect(left.map((s) => [s.id, s.current])).toEqual([[sidOf(b), true]]);
    // Nothing else to end: still 204, and the current session lives on.
    expect((await endOthers(app.t, b)).status).toBe(204);
    await expectAlive(app.t, b, 'current session after a second call');
  });

  it('lets an admin end every session of a user, in force on the next request; the user can sign in again', async () => {
    const a = await registerAndLogin(call);
    const b = await signIn(app.t, a.email);
    const bystander = await registerAndLogin(call);
    const res = await endAllOf(app.t, admin, a.userId);
    expect(res.status, res.text).toBe(204);
    await expectEnded(app.t, a, 'first sign-in');
    await expectEnded(app.t, b, 'second sign-in');
    await expectAlive(app.t, bystander, 'another user');
    await expectAlive(app.t, admin, 'the admin');
    const again = await signIn(app.t, a.email);
    expect((await listed(app.t, again)).map((s) => s.id)).toEqual([sidOf(again)]);
  });

  it('refuses ending all of a user’s sessions to a non-admin (403), for an unknown user (404) and a malformed id (400)', async () => {
    const victim = await registerAndLogin(call);
    const user = await registerAndLogin(call);
    const moderator = await registerAndLogin(call);
    const promoted = typed(app.t, admin).api.users[':id'].roles.$put({
      param: { id: moderator.userId },
      json: { roles: ['user', 'moderator'] },
    });
    expect((await promoted).status).toBe(200);
    for (const who of [user, moderator]) {
      const res = await endAllOf(app.t, who, victim.userId);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    }
    await expectAlive(app.t, victim);
    const unknown = await endAllOf(app.t, admin, NIL);
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not_found');
    const malformed = await call('DELETE', '/users/someone/sessions', { token: admin.accessToken });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('validation_failed');
  });
});

describe('sessions across two instances over one PostgreSQL and one Redis', () => {
  const two = useTwoInstances({ overrides: { TRUST_PROXY: '1' } });
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(client(two.a));
  });

  it('lists on B a sign-in made on A, with its browser', async () => {
    const s = await signIn(two.a, (await registerAndLogin(client(two.a))).email);
    const items = await listed(two.b, s);
    expect(items[0]).toMatchObject({ id: sidOf(s), userAgent: BROWSER, ip: CLIENT_IP, current: true });
  });

  it('refuses on B, within 100 ms, a session ended on A (B had just accepted it)', async () => {
    const { a, b } = two;
    const phone = await registerAndLogin(client(a));
    const laptop = await signIn(a, phone.email);
    await expectAlive(b, phone, 'before, on B');
    expect((await endSession(a, laptop, sidOf(phone))).status).toBe(204);
    await expectEndedWithin100ms(b, phone, 'ended on A, seen on B');
    await expectAlive(b, laptop, 'the other session, on B');
  });

  it('refuses on A, within 100 ms, the other sessions ended on B', async () => {
    const { a, b } = two;
    const first = await registerAndLogin(client(a));
    const second = await signIn(a, first.email);
    const current = await signIn(b, first.email);
    await expectAlive(a, first, 'before, on A');
    await expectAlive(a, second, 'before, on A');
    expect((await endOthers(b, current)).status).toBe(204);
    await expectEndedWithin100ms(a, first, 'first, ended on B, seen on A');
    await expectEndedWithin100ms(a, second, 'second, ended on B, seen on A');
    await expectAlive(a, current, 'the current one, on A');
  });

  it('refuses on B, within 100 ms, every session an admin ended on A', async () => {
    const { a, b } = two;
    const first = await registerAndLogin(client(b));
    const second = await signIn(b, first.email);
    await expectAlive(b, first, 'before, on B');
    await expectAlive(b, second, 'before, on B');
    expect((await endAllOf(a, admin, first.userId)).status).toBe(204);
    await expectEndedWithin100ms(b, first, 'first, seen on B');
    await expectEndedWithin100ms(b, second, 'second, seen on B');
  });
});

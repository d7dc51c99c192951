// Statistics over time (docs/api.md "GET /admin/stats/timeline"), on both database backends.
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, hourOf } from '../../src/stats/counters.js';
import { statsHourly } from '../../src/db/schema.js';
import { createTestApp, testConfig } from '../helpers/app.js';
import { client, loginAdmin, PASSWORD, registerAndLogin, uniqueEmail, type Call, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

type Bucket = { start: string; loginSucceeded: number; loginFailed: number; allowed: number; denied: number; rateLimited: number };

const ZERO = { loginSucceeded: 0, loginFailed: 0, allowed: 0, denied: 0, rateLimited: 0 };

describe.each(BACKENDS)('stats timeline on %s', (backend) => {
  // The app's clock runs with real time, ten minutes into an hour at the start; tests move it ahead.
  let offset = hourOf(Date.now()) + 10 * 60_000 - Date.now();
  const clock = () => Date.now() + offset;
  // Tokens outlive the hours the clock is moved; two failures lock a login (429).
  const config = testConfig({ LOGIN_MAX_FAILURES: '2', ACCESS_TOKEN_TTL_SECONDS: '86400' });
  const app = useTestApp(backend, { config, clock });
  const { call } = app;
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(call);
  });

  async function timeline(hours?: number, via: Call = call): Promise<Bucket[]> {
    const res = await via('GET', `/admin/stats/timeline${hours === undefined ? '' : `?hours=${hours}`}`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    return res.body.buckets;
  }
  const current = async (via: Call = call) => (await timeline(1, via))[0]!;
  /** What changed between two readings of a bucket. */
  const diff = (a: Bucket, b: Bucket) => ({
    loginSucceeded: b.loginSucceeded - a.loginSucceeded,
    loginFailed: b.loginFailed - a.loginFailed,
    allowed: b.allowed - a.allowed,
    denied: b.denied - a.denied,
    rateLimited: b.rateLimited - a.rateLimited,
  });

  it('answers 24 hourly buckets by default, on the hour, oldest first, the current hour last, empty hours as zeros', async () => {
    const buckets = await timeline();
    expect(buckets).toHaveLength(24);
    const hour = hourOf(clock());
    expect(buckets.map((b) => b.start)).toEqual(Array.from({ length: 24 }, (_, i) => new Date(hour - (23 - i) * HOUR_MS).toISOString()));
    for (const b of buckets)
      expect(Object.keys(b).sort()).toEqual(['allowed', 'denied', 'loginFailed', 'loginSucceeded', 'rateLimited', 'start']);
    // A new database: only this hour has seen anything (the admin's sign-in).
    for (const b of buckets.slice(0, -1)) expect(b).toEqual({ start: b.start, ...ZERO });
    expect(buckets.at(-1)!.loginSucceeded).toBeGreaterThan(0);
    expect(await timeline(1)).toHaveLength(1);
    const week = await timeline(168);
    expect(week).toHaveLength(168);
    expect(week[0]!.start).toBe(new Date(hour - 167 * HOUR_MS).toISOString());
    expect(week.at(-1)!.start).toBe(new Date(hour).toISOString());
  });

  it('counts sign-ins, failed sign-ins, allowed and denied permission checks and 429s in the current hour', async () => {
    const s = await registerAndLogin(call);
    const before = await current();
    expect((await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD } })).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect((await call('POST', '/auth/login', { body: { email: s.email, password: 'wrong-password-1' } })).status).toBe(401);
    }
    // Locked now: even the right password is refused.
    const locked = await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD } });
    expect([locked.status, locked.body.code]).toEqual([429, 'rate_limited']);
    expect((await call('GET', '/users', { token: s.accessToken })).status).toBe(403);
    expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
    const after = await current();
    expect(after.start).toBe(before.start);
    // `allowed` also counts the first reading of the timeline (admin:stats:read).
    expect(diff(before, after)).toEqual({ loginSucceeded: 1, loginFailed: 2, allowed: 2, denied: 1, rateLimited: 1 });
  });

  it('starts a new bucket when the hour turns, and drops buckets older than 168 hours', async () => {
    const hour = hourOf(clock());
    // Still inside the week now, outside it an hour from now.
    const edge = new Date(hour - 167 * HOUR_MS);
    await app.database.db.insert(statsHourly).values({ hour: edge, name: 'auth.loginFailed', value: 7 });
    const [, now] = await timeline(2);
    expect(now!.start).toBe(new Date(hour).toISOString());

    offset += HOUR_MS;
    const [then, fresh] = await timeline(2);
    expect(then).toEqual({ ...now, allowed: now!.allowed + 1 });
    expect(fresh).toEqual({ start: new Date(hour + HOUR_MS).toISOString(), ...ZERO });

    await call('POST', '/auth/login', { body: { email: uniqueEmail(), password: 'wrong-password-1' } });
    const latest = await timeline(2);
    // The reading at the turn of the hour counted in the new one.
    expect(latest[0]).toEqual(then);
    expect(latest[1]).toEqual({ ...fresh, loginFailed: 1, allowed: 1 });

    // The flushes of the new hour pruned the bucket that left the week.
    const left = await app.database.db.select().from(statsHourly).where(sql`${statsHourly.hour} = ${edge.toISOString()}::timestamptz`);
    expect(left).toEqual([]);
  });

  it('adds up the counts of two instances over one database, whichever limit refused', async () => {
    const before = await current();
    // Its own per-client limit: the third request from an address in the window is refused.
    const second = await createTestApp({
      database: app.database,
      prepare: false,
      keyRing: app.t.deps.keyRing,
      clock,
      overrides: { RATE_LIMIT_REQUESTS: '2', ACCESS_TOKEN_TTL_SECONDS: '86400' },
    });
    const other = client(second);
    await call('POST', '/auth/login', { body: { email: uniqueEmail(), password: 'wrong-password-1' } });
    for (let i = 0; i < 2; i++) await other('POST', '/auth/login', { body: { email: uniqueEmail(), password: 'wrong-password-1' } });
    const refused = await other('GET', '/posts');
    expect([refused.status, refused.body.code]).toEqual([429, 'rate_limited']);
    // Its batch reaches the database on stop (or within a second).
    await second.stop();
    expect(diff(before, await current())).toEqual({ loginSucceeded: 0, loginFailed: 3, allowed: 1, denied: 0, rateLimited: 1 });
  });

  it('refuses hours outside 1–168, or not a whole number, with 400 validation_failed', async () => {
    for (const hours of ['0', '169', 'abc', '1.5', '-1', '', '1000']) {
      const res = await call('GET', `/admin/stats/timeline?hours=${hours}`, { token: admin.accessToken });
      expect([hours, res.status, res.body.code]).toEqual([hours, 400, 'validation_failed']);
      expect(res.body.errors).toContainEqual({ path: 'hours', message: expect.any(String) });
    }
    const extra = await call('GET', '/admin/stats/timeline?days=2', { token: admin.accessToken });
    expect([extra.status, extra.body.code]).toEqual([400, 'validation_failed']);
  });

  it('answers 403 to a user without admin:stats:read, and 401 without a token', async () => {
    const s = await registerAndLogin(call);
    const res = await call('GET', '/admin/stats/timeline', { token: s.accessToken });
    expect([res.status, res.body.code]).toEqual([403, 'forbidden']);
    expect((await call('GET', '/admin/stats/timeline')).status).toBe(401);
  });

  // Last: it stops the file's app.
  it('keeps the counts across a restart', async () => {
    const before = await timeline();
    await app.t.stop();
    const restarted = await createTestApp({ database: app.database, config, clock, prepare: true });
    const after = await timeline(undefined, client(restarted));
    // The same buckets; the current one has also counted the reading before the restart.
    expect(after.slice(0, -1)).toEqual(before.slice(0, -1));
    expect(after.at(-1)).toEqual({ ...before.at(-1), allowed: before.at(-1)!.allowed + 1 });
    await restarted.stop();
  });
});

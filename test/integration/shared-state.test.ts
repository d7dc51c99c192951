// Shared state on Redis: two app instances over one PostgreSQL database and one
// Redis, in one process, as two servers behind a load balancer would be.
import { within } from '../helpers/eventually.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import type { RedisStore } from '../../src/store/redis.js';
import { createTestApp, redisStore, testConfig, type TestApp } from '../helpers/app.js';
import { client, loginAdmin, registerAndLogin, login, type Call, type Session } from '../helpers/http.js';
import { openDatabase } from '../helpers/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the check passes or 1.5 s have passed (the contract allows 1 s of propagation). */
async function within1500(check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < 1500) {
    if (await check()) return Date.now() - start;
    await sleep(20);
  }
  throw new Error('not in force within 1.5 s');
}

describe('two instances over one PostgreSQL and one Redis', () => {
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
    const config = testConfig({ RATE_LIMIT_REQUESTS: '40', RATE_LIMIT_WINDOW_SECONDS: '60' });
    a = await createTestApp({ database: db.database, store: stores[0], config });
    b = await createTestApp({ database: db.database, store: stores[1], config, keyRing: a.deps.keyRing, prepare: false });
    await prepareDatabase(b.deps); // idempotent: a second instance starting up
    callA = client(a);
    callB = client(b);
    admin = await loginAdmin(callA);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all(stores.map((s) => s.close()));
    await dispose();
  });

  // Rate limiting is per user here, so each test uses its own users.

  it('accepts on B a token issued on A', async () => {
    const s = await registerAndLogin(callA);
    expect((await callB('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
  });

  // B hears of A's writes from Redis's invalidation message: milliseconds, not the same tick.
  it('shows on B a profile changed on A within 100 ms', async () => {
    const s = await registerAndLogin(callA);
    expect((await callB('GET', '/users/me', { token: s.accessToken })).body.name).toBe('Test User');
    expect((await callA('PUT', '/users/me', { token: s.accessToken, body: { name: 'Renamed on A' } })).status).toBe(200);
    const seen = async (check: (b: { name: string; roles: string[]; updatedAt: string }) => boolean) => {
      const until = Date.now() + 100;
      for (;;) {
        const me = await callB('GET', '/users/me', { token: s.accessToken });
        if (check(me.body)) return me.body;
        if (Date.now() > until) return me.body;
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    expect((await seen((b) => b.name === 'Renamed on A')).name).toBe('Renamed on A');
    const roles = await callA('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', 'moderator'] } });
    const after = await seen((b) => b.roles.length === 2 && b.updatedAt === roles.body.updatedAt);
    expect(after.roles).toEqual(['moderator', 'user']);
    expect(after.updatedAt).toBe(roles.body.updatedAt);
  });

  it('lists on B, within 100 ms, a post written or deleted on A (B had the first page cached)', async () => {
    const s = await registerAndLogin(callA);
    const titles = async (call: Call) => ((await call('GET', '/posts')).body.items as { title: string }[]).map((p) => p.title);
    await titles(callB); // B serves the first page from its in-process cache from now on
    await titles(callB);
    const title = `written on A ${Math.random()}`;
    const created = await callA('POST', '/posts', { token: s.accessToken, body: { title, body: 'x' } });
    expect(created.status).toBe(201);
    expect(await within(100, async () => (await titles(callB))[0] === title)).toBe(true);
    expect((await callA('GET', '/posts?limit=5')).body.items[0].title).toBe(title);
    expect((await callA('DELETE', `/posts/${created.body.id}`, { token: s.accessToken })).status).toBe(204);
    expect(await within(100, async () => !(await titles(callB)).includes(title))).toBe(true);
  });

  it('puts a role removed on A in force on B within 1.5 s', async () => {
    const mod = await registerAndLogin(callA);
    await callA('PUT', `/users/${mod.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', 'moderator'] } });
    expect((await callB('GET', '/users', { token: mod.accessToken })).status).toBe(200);
    await callA('PUT', `/users/${mod.userId}/roles`, { token: admin.accessToken, body: { roles: ['user'] } });
    await within1500(async () => (await callB('GET', '/users', { token: mod.accessToken })).status === 403);
  });

  it('puts a role permission change on A in force on B within 1.5 s', async () => {
    const name = `r${Math.random().toString(36).slice(2, 8)}`;
    await callA('POST', '/roles', { token: admin.accessToken, body: { name, permissions: [] } });
    const s = await registerAndLogin(callA);
    await callA('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', name] } });
    expect((await callB('GET', '/admin/stats', { token: s.accessToken })).status).toBe(403);
    await callA('PUT', `/roles/${name}/permissions`, { token: admin.accessToken, body: { permissions: ['admin:stats:read'] } });
    await within1500(async () => (await callB('GET', '/admin/stats', { token: s.accessToken })).status === 200);
  });

  it('kills a session on B within 1.5 s of logout on A', async () => {
    const s = await registerAndLogin(callA);
    expect((await callB('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
    await callA('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } });
    await within1500(async () => (await callB('GET', '/users/me', { token: s.accessToken })).status === 401);
  });

  it('kills a session on B within 1.5 s of refresh-token reuse on A', async () => {
    const s = await registerAndLogin(callA);
    const fresh = await callB('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
    expect((await callB('GET', '/users/me', { token: fresh.body.accessToken })).status).toBe(200);
    expect((await callA('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } })).body.code).toBe('refresh_token_reused');
    await within1500(async () => (await callB('GET', '/users/me', { token: fresh.body.accessToken })).status === 401);
  });

  it('counts the rate limit across both instances', async () => {
    const s = await registerAndLogin(callA);
    const statuses: number[] = [];
    const remaining: number[] = [];
    for (let i = 0; i < 44; i++) {
      const res = await (i % 2 ? callA : callB)('GET', '/posts', { token: s.accessToken });
      statuses.push(res.status);
      remaining.push(Number(res.headers.get('ratelimit-remaining')));
    }
    expect(statuses.slice(0, 40).every((x) => x === 200)).toBe(true);
    expect(statuses.slice(40)).toEqual([429, 429, 429, 429]);
    expect(remaining.slice(0, 3)).toEqual([39, 38, 37]);
    const refused = await callA('GET', '/posts', { token: s.accessToken });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    // Another user is not affected.
    const other = await login(callA, admin.email, 'Admin-Password-1!');
    expect((await callB('GET', '/posts', { token: other.accessToken })).status).toBe(200);
  });
});

// The pen test's partition finding: two instances on one PostgreSQL and one
// Redis, instance A reaching Redis through a relay that is cut. A still logs a
// user out and demotes a moderator (the database is the source of truth); B
// hears of both through the event outbox (B's relay publishes what A could
// not), and nothing is lost when A comes back. The same holds for a changed
// profile (user.profile_changed).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import type { RedisStore } from '../../src/store/redis.js';
import { createTestApp, redisStore, testConfig, type TestApp } from '../helpers/app.js';
import { within } from '../helpers/eventually.js';
import { client, loginAdmin, registerAndLogin, userWithRoles, type Call } from '../helpers/http.js';
import { freePort, TcpProxy } from '../helpers/processes.js';
import { openDatabase, REDIS_URL } from '../helpers/services.js';

describe('partition: instance A cut off from Redis', () => {
  let proxy: TcpProxy;
  let a: TestApp;
  let b: TestApp;
  let callA: Call;
  let callB: Call;
  let storeA: RedisStore;
  let storeB: RedisStore;
  let dispose: () => Promise<void>;
  let isCut = false;
  const cut = async () => {
    await proxy.cut();
    isCut = true;
  };
  const restore = async () => {
    await proxy.open();
    isCut = false;
    expect(await within(10_000, async () => (await callA('GET', '/readyz')).status === 200)).toBe(true);
  };

  beforeAll(async () => {
    const db = await openDatabase('postgres');
    dispose = db.dispose;
    proxy = new TcpProxy(await freePort(), Number(new URL(REDIS_URL).port || 6379));
    await proxy.open();
    const prefix = `test:part:${Math.random().toString(36).slice(2)}:`;
    storeA = redisStore(prefix, `redis://127.0.0.1:${proxy.port}`);
    storeB = redisStore(prefix);
    await Promise.all([storeA.ready(), storeB.ready()]);
    const config = testConfig();
    a = await createTestApp({ database: db.database, store: storeA, config });
    b = await createTestApp({ database: db.database, store: storeB, config, keyRing: a.deps.keyRing, prepare: false });
    await prepareDatabase(b.deps);
    callA = client(a);
    callB = client(b);
  });
  afterEach(async () => {
    if (isCut) await restore();
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([storeA?.close(), storeB?.close()]);
    await proxy?.cut();
    await dispose?.();
  });

  it('B refuses a logout and a demotion made on A within 2 s while A stays cut off, and nothing is lost when A comes back', async () => {
    const admin = await loginAdmin(callA);
    const user = await registerAndLogin(callA);
    const moderator = await userWithRoles(callA, admin, ['moderator']);
    // B honours both, from its near-cache once warm.
    for (let i = 0; i < 3; i++) {
      expect((await callB('GET', '/users/me', { token: user.accessToken })).status).toBe(200);
      expect((await callB('GET', `/users/${moderator.userId}`, { token: moderator.accessToken })).status).toBe(200);
    }

    await cut();
    expect((await callA('POST', '/auth/logout', { body: { refreshToken: user.refreshToken } })).status).toBe(204);
    const demoted = await callA('PUT', `/users/${moderator.userId}/roles`, { token: admin.accessToken, body: { roles: ['user'] } });
    expect(demoted.status).toBe(200);
    // A itself is right at once (it reads the database while Redis is away).
    expect((await callA('GET', '/users/me', { token: user.accessToken })).status).toBe(401);
    expect((await callA('GET', `/users/${moderator.userId}`, { token: moderator.accessToken })).status).toBe(403);

    // Both within 2 s of the changes, polled together.
    const refused = async () =>
      (await callB('GET', '/users/me', { token: user.accessToken })).status === 401 &&
      (await callB('GET', `/users/${moderator.userId}`, { token: moderator.accessToken })).status === 403;
    expect(await within(2_000, refused)).toBe(true);

    // A comes back: healthy, and both changes hold on both instances.
    await restore();
    for (const call of [callA, callB]) {
      for (let i = 0; i < 3; i++) {
        expect((await call('GET', '/users/me', { token: user.accessToken })).status).toBe(401);
        expect((await call('GET', `/users/${moderator.userId}`, { token: moderator.accessToken })).status).toBe(403);
        expect((await call('GET', '/users/me', { token: moderator.accessToken })).body.roles).toEqual(['user']);
        expect((await call('GET', '/users/me', { token: admin.accessToken })).status).toBe(200);
      }
    }
  });

  it('B serves, within 2 s, a profile changed on A while A is cut off, and keeps it when A comes back', async () => {
    const user = await registerAndLogin(callA);
    for (let i = 0; i < 3; i++) expect((await callB('GET', '/users/me', { token: user.accessToken })).status).toBe(200);

    await cut();
    expect((await callA('PUT', '/users/me', { token: user.accessToken, body: { name: 'Renamed on A' } })).status).toBe(200);
    const renamed = async () => (await callB('GET', '/users/me', { token: user.accessToken })).body.name === 'Renamed on A';
    expect(await within(2_000, renamed)).toBe(true);

    await restore();
    for (const call of [callA, callB]) expect((await call('GET', '/users/me', { token: user.accessToken })).body.name).toBe('Renamed on A');
  });

  it('B refuses, within 2 s, the members of a role deleted on A and a user deleted on A while A is cut off', async () => {
    const admin = await loginAdmin(callA);
    const role = `reader-${Math.random().toString(36).slice(2, 8)}`;
    expect((await callA('POST', '/roles', { token: admin.accessToken, body: { name: role, permissions: ['users:read'] } })).status).toBe(
      201,
    );
    const member = await userWithRoles(callA, admin, ['user', role]);
    const leaving = await registerAndLogin(callA);
    for (let i = 0; i < 3; i++) {
      expect((await callB('GET', `/users/${member.userId}`, { token: member.accessToken })).status).toBe(200);
      expect((await callB('GET', '/users/me', { token: leaving.accessToken })).status).toBe(200);
    }

    await cut();
    expect((await callA('DELETE', `/roles/${role}`, { token: admin.accessToken })).status).toBe(204);
    expect((await callA('DELETE', `/users/${leaving.userId}`, { token: admin.accessToken })).status).toBe(204);
    const refused = async () =>
      (await callB('GET', `/users/${member.userId}`, { token: member.accessToken })).status === 403 &&
      (await callB('GET', '/users/me', { token: leaving.accessToken })).status === 401;
    expect(await within(2_000, refused)).toBe(true);

    await restore();
    for (const call of [callA, callB]) {
      expect((await call('GET', `/users/${member.userId}`, { token: member.accessToken })).status).toBe(403);
      expect((await call('GET', '/users/me', { token: leaving.accessToken })).status).toBe(401);
      expect((await call('GET', '/users/me', { token: member.accessToken })).body.roles).toEqual(['user']);
    }
  });
});

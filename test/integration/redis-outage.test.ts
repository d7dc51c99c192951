// Redis goes away and comes back: the service keeps answering, never accepts a
// revoked session, and recovers without a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/eventually.js';
import { RedisStore } from '../../src/store/redis.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { client, registerAndLogin, type Call } from '../helpers/http.js';
import { freePort, RedisProcess, TcpProxy } from '../helpers/processes.js';
import { openDatabase } from '../helpers/services.js';

describe('Redis outage', () => {
  let redis: RedisProcess;
  let store: RedisStore;
  let t: TestApp;
  let call: Call;
  let dispose: () => Promise<void>;
  const degradedOps: string[] = [];

  beforeAll(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    const db = await openDatabase('postgres');
    dispose = db.dispose;
    store = new RedisStore({ url: redis.url, onDegraded: (op) => degradedOps.push(op) });
    await store.ready();
    t = await createTestApp({ database: db.database, store, overrides: { RATE_LIMIT_REQUESTS: '1000' } });
    call = client(t);
  });
  afterAll(async () => {
    await t.stop();
    await store.close();
    await redis.stop();
    await dispose();
  });

  it('keeps serving from the database while Redis is down, rejects revoked sessions, and recovers', async () => {
    const alive = await registerAndLogin(call);
    const doomed = await registerAndLogin(call);
    expect((await call('GET', '/users/me', { token: alive.accessToken })).status).toBe(200);
    expect((await call('GET', '/users/me', { token: doomed.accessToken })).status).toBe(200);

    await redis.stop();
    const statuses: number[] = [];
    const track = async (p: Promise<{ status: number }>) => {
      const r = await p;
      statuses.push(r.status);
      return r;
    };

    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.code).toBe('service_unavailable');
    expect(ready.body.detail).toContain('redis');
    expect(ready.body.checks).toEqual({ database: 'up', redis: 'down' });

    expect((await track(call('GET', '/users/me', { token: alive.accessToken }))).status).toBe(200);
    expect((await track(call('GET', '/posts'))).status).toBe(200);
    // Logout while Redis is down: the database revokes, and the database is asked.
    expect((await track(call('POST', '/auth/logout', { body: { refreshToken: doomed.refreshToken } }))).status).toBe(204);
    expect((await track(call('GET', '/users/me', { token: doomed.accessToken }))).status).toBe(401);
    const third = await registerAndLogin(call);
    expect((await track(call('GET', '/users/me', { token: third.accessToken }))).status).toBe(200);
    // Rate limiting goes on per instance while Redis is away, and the fallback is reported.
    const limited = await call('GET', '/posts');
    expect(limited.headers.get('ratelimit-limit')).toBe('1000');
    expect(Number(limited.headers.get('ratelimit-remaining'))).toBeLessThan(1000);
    expect(degradedOps).toContain('batch');

    await redis.start();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      recovered = (await call('GET', '/readyz')).status === 200;
      if (!recovered) await sleep(100);
    }
    expect(recovered).toBe(true);
    expect((await track(call('GET', '/users/me', { token: doomed.accessToken }))).status).toBe(401);
    expect((await track(call('GET', '/users/me', { token: alive.accessToken }))).status).toBe(200);
    expect((await track(call('GET', '/users/me', { token: third.accessToken }))).status).toBe(200);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });

  it('never believes a cached session that was revoked while this instance could not reach Redis', async () => {
    // The app reaches Redis through a relay; cutting it is a partition: Redis
    // keeps its data (including the cached "alive" entry) but misses the revocation.
    const proxy = new TcpProxy(await freePort(), redis.port);
    await proxy.open();
    const viaProxy = new RedisStore({ url: `redis://127.0.0.1:${proxy.port}` });
    await viaProxy.ready();
    const p = await createTestApp({
      database: t.deps.database,
      store: viaProxy,
      keyRing: t.deps.keyRing,
      prepare: false,
      overrides: { RATE_LIMIT_REQUESTS: '1000' },
    });
    const callP = client(p);
    try {
      const s = await registerAndLogin(callP);
      expect((await callP('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
      await proxy.cut();
      expect(await callP('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } })).toMatchObject({ status: 204 });
      expect((await callP('GET', '/users/me', { token: s.accessToken })).status).toBe(401);
      // Redis still says "alive" (the user's id) for this session.
      expect(await redis.cli('GET', `auth:s:${JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid}`)).toBe(
        s.userId,
      );
      await proxy.open();
      await viaProxy.ready(5_000).catch(() => {});
      for (let i = 0; i < 5; i++) expect((await callP('GET', '/users/me', { token: s.accessToken })).status).toBe(401);
    } finally {
      await p.stop();
      await viaProxy.close();
      await proxy.cut();
    }
  });
});

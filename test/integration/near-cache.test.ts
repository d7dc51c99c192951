// The near-cache on real Redis: session liveness, roles, profiles and the
// versions are served from memory while Redis invalidation messages keep them
// true, and not at all while that channel is lost or unproven; rate-limit
// hits are counted in process within a documented bound.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, until } from '../helpers/eventually.js';
import { prepareDatabase } from '../../src/app.js';
import { RedisStore } from '../../src/store/redis.js';
import { SESSION_REVOKED, sessionAlive } from '../../src/store/store.js';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { client, login, loginAdmin, PASSWORD, registerAndLogin, userWithRoles, type Call, type Session } from '../helpers/http.js';
import { freePort, RedisProcess } from '../helpers/processes.js';
import { SplitProxy } from '../helpers/redis-proxy.js';
import { openDatabase, REDIS_URL } from '../helpers/services.js';
import { useTwoInstances } from '../helpers/two-instances.js';

const prefix = () => `test:nc:${Math.random().toString(36).slice(2)}:`;

const live = (s: RedisStore) => until('near-cache live', () => s.nearCacheLive, { timeoutMs: 3_000, everyMs: 2 });

/** The milliseconds from `since` until `check` holds, polling as fast as requests go. */
async function latency(since: number, check: () => Promise<boolean>, timeoutMs = 2_000): Promise<number> {
  for (;;) {
    if (await check()) return performance.now() - since;
    if (performance.now() - since > timeoutMs) return Number.POSITIVE_INFINITY;
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * Repeat a request until the store answers it from memory: the first fills the
 * cache, unless an invalidation of a write just made (the sign-in's) arrives
 * while it is on the way, which leaves the entry unfilled (as it must).
 */
async function warm(store: RedisStore, request: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const before = store.nearCacheStats.fromMemory;
    await request();
    if (store.nearCacheStats.fromMemory === before + 1) return;
    await sleep(2);
  }
  throw new Error('never served from memory');
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

async function killClient(admin: Redis, name: string): Promise<void> {
  const list = String(await admin.call('CLIENT', 'LIST'));
  const line = list.split('\n').find((l) => l.includes(` name=${name} `));
  if (!line) throw new Error(`no client named ${name}`);
  const id = /\bid=(\d+)/.exec(line)![1]!;
  await admin.call('CLIENT', 'KILL', 'ID', id);
}

describe('near-cache across two instances', () => {
  const two = useTwoInstances({ overrides: { RATE_LIMIT_REQUESTS: '100000' } });
  let admin: Session;
  let redisAdmin: Redis;

  beforeAll(async () => {
    admin = await loginAdmin(two.callA);
    redisAdmin = new Redis(REDIS_URL);
    await Promise.all(two.stores.map(live));
  });
  afterAll(async () => {
    redisAdmin.disconnect();
  });

  it('answers a signed-in caller from memory in steady state: no Redis command per request', async () => {
    const s = await registerAndLogin(two.callA);
    const b = two.stores[1]!;
    expect((await two.callB('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
    expect((await two.callB('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
    // A machine busy enough to delay the heartbeat past 350 ms makes the store
    // read Redis for a while (as it must): one of three runs of 100 has to be clean.
    const sent: number[] = [];
    for (let run = 0; run < 3 && sent.at(-1) !== 0; run++) {
      await live(b);
      const before = { ...b.nearCacheStats };
      for (let i = 0; i < 100; i++) expect((await two.callB('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
      sent.push(b.nearCacheStats.fromRedis - before.fromRedis);
      if (sent.at(-1) === 0) expect(b.nearCacheStats.fromMemory - before.fromMemory).toBe(100);
    }
    expect(sent.at(-1)).toBe(0);
  });

  it('refuses on B, within 100 ms at the 99th percentile of 200 trials, a logout, a role change or a password change made on A', async () => {
    const role = `nc${Math.random().toString(36).slice(2, 8)}`;
    expect(
      (await two.callA('POST', '/roles', { token: admin.accessToken, body: { name: role, permissions: ['admin:stats:read'] } })).status,
    ).toBe(201);
    const b = two.stores[1]!;
    const kinds = ['logout', 'role', 'password'] as const;
    const delays: Record<(typeof kinds)[number], number[]> = { logout: [], role: [], password: [] };
    for (let trial = 0; trial < 200; trial++) {
      const kind = kinds[trial % 3]!;
      const s = await registerAndLogin(two.callA);
      let token = s.accessToken;
      let refused: () => Promise<boolean>;
      let change: () => Promise<number>;
      if (kind === 'logout') {
        refused = async () => (await two.callB('GET', '/users/me', { token })).status === 401;
        change = async () => (await two.callA('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } })).status;
      } else if (kind === 'role') {
        await two.callA('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', role] } });
        token = (await login(two.callA, s.email, PASSWORD)).accessToken;
        refused = async () => (await two.callB('GET', '/admin/stats', { token })).status === 403;
        change = async () =>
          (await two.callA('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles: ['user'] } })).status;
      } else {
        // The password changes in another session of the same user: this one must end.
        const other = await login(two.callA, s.email, PASSWORD);
        refused = async () => (await two.callB('GET', '/users/me', { token })).status === 401;
        change = async () =>
          (
            await two.callA('PUT', '/users/me', {
              token: other.accessToken,
              body: { currentPassword: PASSWORD, password: `${PASSWORD}-${trial}` },
            })
          ).status;
      }
      // B answers the caller from memory before the change.
      await warm(b, async () => expect(await refused()).toBe(false));
      expect(b.nearCacheLive).toBe(true);
      expect(await change()).toBe(kind === 'logout' ? 204 : 200);
      delays[kind].push(await latency(performance.now(), refused));
    }
    const all = [...delays.logout, ...delays.role, ...delays.password];
    expect(all).toHaveLength(200);
    expect(p99(all)).toBeLessThanOrEqual(100);
    for (const k of kinds) expect(Math.max(...delays[k])).toBeLessThan(Number.POSITIVE_INFINITY);
  }, 120_000);

  for (const role of ['sub', 'ctl'] as const) {
    it(`stops serving from memory at once when its ${role === 'sub' ? 'invalidation' : 'tracking'} connection is killed, never accepts a revoked session meanwhile, and comes back`, async () => {
      const b = two.stores[1]!;
      await live(b);
      const doomed = await registerAndLogin(two.callA);
      const keeper = await registerAndLogin(two.callA);
      for (const s of [doomed, keeper])
        await warm(b, async () => expect((await two.callB('GET', '/users/me', { token: s.accessToken })).status).toBe(200));

      const killedAt = performance.now();
      await killClient(redisAdmin, `${b.invalidationClientName}:${role}`);
      // Revoked right away, before B can have heard of anything but the kill.
      expect((await two.callA('POST', '/auth/logout', { body: { refreshToken: doomed.refreshToken } })).status).toBe(204);
      expect((await two.callB('GET', '/users/me', { token: doomed.accessToken })).status).toBe(401);
      expect(performance.now() - killedAt).toBeLessThan(500);
      expect(b.nearCacheLive).toBe(false);

      // Until the channel is back: every answer is read from Redis (or the database), none stale.
      const fromRedis = b.nearCacheStats.fromRedis;
      while (!b.nearCacheLive) {
        expect((await two.callB('GET', '/users/me', { token: doomed.accessToken })).status).toBe(401);
        expect((await two.callB('GET', '/users/me', { token: keeper.accessToken })).status).toBe(200);
        if (performance.now() - killedAt > 5_000) throw new Error('the invalidation channel did not come back');
        await sleep(5);
      }
      expect(b.nearCacheStats.fromRedis).toBeGreaterThan(fromRedis);

      // Back: cached again, and invalidated again.
      await warm(b, async () => expect((await two.callB('GET', '/users/me', { token: keeper.accessToken })).status).toBe(200));
      expect((await two.callA('POST', '/auth/logout', { body: { refreshToken: keeper.refreshToken } })).status).toBe(204);
      expect(
        await latency(performance.now(), async () => (await two.callB('GET', '/users/me', { token: keeper.accessToken })).status === 401),
      ).toBeLessThan(100);
    });
  }
});

describe('near-cache on one store behind a relay', () => {
  let proxy: SplitProxy;
  let writer: RedisStore;
  let reader: RedisStore;

  beforeAll(async () => {
    const keys = prefix();
    proxy = new SplitProxy(await freePort(), Number(new URL(REDIS_URL).port || 6379));
    await proxy.open();
    writer = new RedisStore({ url: REDIS_URL, prefix: keys });
    reader = new RedisStore({ url: proxy.url, prefix: keys });
    await Promise.all([writer.ready(), reader.ready()]);
    await Promise.all([live(writer), live(reader)]);
  });
  afterAll(async () => {
    await Promise.all([writer.close(), reader.close()]);
    await proxy.close();
  });

  for (const via of ['batch', 'get'] as const) {
    it(`keeps no stale value from a ${via} read whose key changed while its reply was on the way`, async () => {
      const key = `s:${via}-${Math.random()}`;
      const read = async () => (via === 'get' ? reader.get(key) : (await reader.batch({ gets: [key] })).values[0]);
      await writer.set(key, SESSION_REVOKED);
      await warm(reader, async () => expect(await read()).toBe(SESSION_REVOKED));
      // The reader's own write: its copy is dropped at once, so the next read goes to Redis.
      await reader.set(key, sessionAlive('u1'));

      proxy.dataDelayMs = 150;
      try {
        // The read runs in Redis now; its reply is held back for 150 ms.
        const inFlight = read();
        await sleep(40);
        // The key changes meanwhile; its invalidation reaches the reader before the reply does.
        await writer.set(key, SESSION_REVOKED);
        expect(await inFlight).toBe(sessionAlive('u1'));
        // The late reply must not have been kept: the next read sees the change.
        expect(await read()).toBe(SESSION_REVOKED);
      } finally {
        proxy.dataDelayMs = 0;
      }
      expect(await read()).toBe(SESSION_REVOKED);
    });
  }

  it('flushes and bypasses its cache within 500 ms when the channel stalls with its sockets open, and serves from memory again once it flows', async () => {
    const key = `s:stall-${Math.random()}`;
    await writer.set(key, sessionAlive('u2'));
    await warm(reader, async () => expect(await reader.get(key)).toBe(sessionAlive('u2')));

    proxy.freezeChannel();
    try {
      const stalledAt = performance.now();
      // The writer's change cannot reach the reader through the stalled channel.
      await writer.set(key, SESSION_REVOKED);
      const waiting = performance.now();
      await until('bypass', () => !reader.nearCacheLive, { timeoutMs: 1_000, everyMs: 2 });
      const bypassed = performance.now() - waiting;
      expect(bypassed).toBeLessThan(500);
      expect(await reader.get(key)).toBe(SESSION_REVOKED);
      expect(performance.now() - stalledAt).toBeLessThan(1_000);
    } finally {
      proxy.thawChannel();
    }
    await until('live again', () => reader.nearCacheLive, { timeoutMs: 5_000, everyMs: 2 });
    await warm(reader, async () => expect(await reader.get(key)).toBe(SESSION_REVOKED));
  });
});

describe('rate limits counted in batches over two instances', () => {
  // 1000 per window: each instance counts up to 1% (10) in process between
  // flushes, so two instances admit at most 1000 + 2 × 10 in one window.
  const two = useTwoInstances({ overrides: { RATE_LIMIT_REQUESTS: '1000', RATE_LIMIT_WINDOW_SECONDS: '300' } });

  it('admits at least the limit and at most limit + instances × batch of one client hammering both, refusing the rest with 429', async () => {
    const s = await registerAndLogin(two.callA);
    await Promise.all(two.stores.map(live));
    const statuses: number[] = [];
    const remaining: number[] = [];
    const fire = async (call: Call) => {
      const r = await call('GET', '/users/me', { token: s.accessToken });
      statuses.push(r.status);
      if (r.status === 200) remaining.push(Number(r.headers.get('RateLimit-Remaining')));
      if (r.status === 429) expect(Number(r.headers.get('Retry-After'))).toBeGreaterThan(0);
    };
    const fromRedis = two.stores.map((st) => st.nearCacheStats.fromRedis);
    // Waves of 8 concurrent requests, half on each instance, well past the limit.
    for (let wave = 0; wave < 175; wave++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => fire(i % 2 === 0 ? two.callA : two.callB)));
      if (wave % 25 === 24) await sleep(120);
    }
    const admitted = statuses.filter((x) => x === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(1000);
    expect(admitted).toBeLessThanOrEqual(1000 + 2 * 10);
    expect(statuses.filter((x) => x !== 200 && x !== 429)).toEqual([]);
    expect(Math.min(...remaining)).toBeLessThan(10);
    // Counted in process: far fewer store calls with a command than requests.
    const sent = two.stores.reduce((n, st, i) => n + st.nearCacheStats.fromRedis - fromRedis[i]!, 0);
    expect(sent).toBeLessThan(statuses.length / 2);
  }, 60_000);
});

describe('Redis restarted', () => {
  let redis: RedisProcess;
  let a: TestApp;
  let b: TestApp;
  let callA: Call;
  let callB: Call;
  let stores: RedisStore[];
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    const db = await openDatabase('postgres');
    dispose = db.dispose;
    stores = [new RedisStore({ url: redis.url }), new RedisStore({ url: redis.url })];
    await Promise.all(stores.map((st) => st.ready()));
    const config = testConfig({ RATE_LIMIT_REQUESTS: '100000' });
    a = await createTestApp({ database: db.database, store: stores[0]!, config });
    b = await createTestApp({ database: db.database, store: stores[1]!, config, keyRing: a.deps.keyRing, prepare: false });
    await prepareDatabase(b.deps);
    callA = client(a);
    callB = client(b);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all(stores.map((st) => st.close()));
    await redis.stop();
    await dispose();
  });

  it('flushes every near-cache when Redis goes, rebuilds them when it is back, and serves nothing stale', async () => {
    await Promise.all(stores.map(live));
    const admin = await loginAdmin(callA);
    const doomed = await registerAndLogin(callA);
    const demoted = await registerAndLogin(callA);
    await callA('PUT', `/users/${demoted.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', 'moderator'] } });
    const demotedToken = (await login(callA, demoted.email, PASSWORD)).accessToken;
    await warm(stores[1]!, async () => expect((await callB('GET', '/users/me', { token: doomed.accessToken })).status).toBe(200));
    await warm(stores[1]!, async () => expect((await callB('GET', '/users', { token: demotedToken })).status).toBe(200));

    await redis.stop();
    await until('bypass on both', () => stores.every((st) => !st.nearCacheLive), { timeoutMs: 1_000, everyMs: 2 });
    // Changes made while Redis is away are in the database only.
    expect((await callA('POST', '/auth/logout', { body: { refreshToken: doomed.refreshToken } })).status).toBe(204);
    expect((await callA('PUT', `/users/${demoted.userId}/roles`, { token: admin.accessToken, body: { roles: ['user'] } })).status).toBe(
      200,
    );
    expect((await callB('GET', '/users/me', { token: doomed.accessToken })).status).toBe(401);

    await redis.start();
    await Promise.all(stores.map(live));
    expect((await callB('GET', '/users/me', { token: doomed.accessToken })).status).toBe(401);
    expect((await callB('GET', '/users', { token: demotedToken })).status).toBe(403);
    // Rebuilt: served from memory again, and kept true again.
    const keeper = await registerAndLogin(callA);
    await warm(stores[1]!, async () => expect((await callB('GET', '/users/me', { token: keeper.accessToken })).status).toBe(200));
    expect((await callA('POST', '/auth/logout', { body: { refreshToken: keeper.refreshToken } })).status).toBe(204);
    expect(
      await latency(performance.now(), async () => (await callB('GET', '/users/me', { token: keeper.accessToken })).status === 401),
    ).toBeLessThan(100);
  }, 30_000);

  it('never lets an idle instance keep a removed permission after Redis lost its data, however many role changes follow', async () => {
    await Promise.all(stores.map(live));
    const admin = await loginAdmin(callA);
    const role = `rv${Math.random().toString(36).slice(2, 8)}`;
    const scratch = `${role}x`;
    for (const name of [role, scratch]) {
      const created = await callA('POST', '/roles', { token: admin.accessToken, body: { name, permissions: ['admin:stats:read'] } });
      expect(created.status, created.text).toBe(201);
    }
    const s = await registerAndLogin(callA);
    expect((await callA('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles: ['user', role] } })).status).toBe(
      200,
    );
    // B (idle from now on) has the permission map of the current roles version.
    expect((await callB('GET', '/admin/stats', { token: s.accessToken })).status).toBe(200);
    const raw = new Redis(redis.url);
    try {
      const seen = await raw.get('auth:rv');
      expect(seen).not.toBeNull();

      // Redis restarts without its data; B hears of nothing else.
      await redis.stop();
      await until('bypass on both', () => stores.every((st) => !st.nearCacheLive), { timeoutMs: 2_000, everyMs: 2 });
      await redis.start();
      await Promise.all(stores.map(live));

      // On A: the permission is removed, then roles keep changing, as many
      // times as a counter would need to come back to the value B holds.
      const res = await callA('PUT', `/roles/${role}/permissions`, { token: admin.accessToken, body: { permissions: [] } });
      expect(res.status, res.text).toBe(200);
      const steps = Math.min(Number(seen) || 3, 200);
      for (let i = 0; i < steps && (await raw.get('auth:rv')) !== seen; i++) {
        const perms = i % 2 === 0 ? [] : ['admin:stats:read'];
        expect(
          (await callA('PUT', `/roles/${scratch}/permissions`, { token: admin.accessToken, body: { permissions: perms } })).status,
        ).toBe(200);
      }
      // Whatever the version now reads, B must not grant the removed permission.
      expect((await callB('GET', '/admin/stats', { token: s.accessToken })).status).toBe(403);
      expect((await callA('GET', '/admin/stats', { token: s.accessToken })).status).toBe(403);
    } finally {
      raw.disconnect();
    }
  }, 60_000);
});

// Instance A reaches Redis through a relay the test can stall or cut; B is
// connected directly (same key prefix, same database). Each test here fails
// with one small mistake in the near-cache or the batched hits in place.
describe('an instance behind a relay that stalls or cuts its Redis', () => {
  const LIMIT = 10_000; // rate-limit hits counted in process: 1% of it (100) per instance between flushes
  let proxy: SplitProxy;
  let stores: RedisStore[];
  let a: TestApp;
  let b: TestApp;
  let callA: Call;
  let callB: Call;
  let raw: Redis;
  let keys: string;
  let dispose: () => Promise<void>;
  const degraded: string[] = [];

  beforeAll(async () => {
    keys = prefix();
    proxy = new SplitProxy(await freePort(), Number(new URL(REDIS_URL).port || 6379));
    await proxy.open();
    const db = await openDatabase('postgres');
    dispose = db.dispose;
    stores = [
      // A long staleAfterMs: a stalled channel keeps the cache in use long enough to see what a write does to it.
      new RedisStore({ url: proxy.url, prefix: keys, nearCache: { staleAfterMs: 5_000 }, onDegraded: (op) => degraded.push(op) }),
      new RedisStore({ url: REDIS_URL, prefix: keys }),
    ];
    await Promise.all(stores.map((st) => st.ready()));
    const config = testConfig({ RATE_LIMIT_REQUESTS: String(LIMIT), RATE_LIMIT_WINDOW_SECONDS: '600' });
    a = await createTestApp({ database: db.database, store: stores[0]!, config });
    b = await createTestApp({ database: db.database, store: stores[1]!, config, keyRing: a.deps.keyRing, prepare: false });
    await prepareDatabase(b.deps);
    callA = client(a);
    callB = client(b);
    raw = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    raw.disconnect();
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all(stores.map((st) => st.close()));
    await proxy.close();
    await dispose();
  });
  const remainingOf = (r: { headers: Headers }) => Number(r.headers.get('ratelimit-remaining'));

  it("drops an instance's own near-cached copy when it writes, without waiting for Redis to tell it", async () => {
    const storeA = stores[0]!;
    await live(storeA);
    const s = await registerAndLogin(callA);
    await warm(storeA, async () => expect((await callA('GET', '/users/me', { token: s.accessToken })).body.name).toBe('Test User'));
    // Redis's invalidation messages stop reaching A (the channel still counts as live).
    proxy.freezeChannel();
    try {
      expect((await callA('PUT', '/users/me', { token: s.accessToken, body: { name: 'Renamed' } })).status).toBe(200);
      expect(storeA.nearCacheLive).toBe(true);
      expect((await callA('GET', '/users/me', { token: s.accessToken })).body.name).toBe('Renamed');
    } finally {
      proxy.thawChannel();
    }
  });

  it('makes every instance reload its roles once the writes an instance dropped while cut off are repaired', async () => {
    await Promise.all(stores.map(live));
    const admin = await loginAdmin(callA);
    const role = `cut${Math.random().toString(36).slice(2, 8)}`;
    expect(
      (await callA('POST', '/roles', { token: admin.accessToken, body: { name: role, permissions: ['admin:stats:read'] } })).status,
    ).toBe(201);
    const s = await userWithRoles(callA, admin, ['user', role]);
    expect((await callB('GET', '/admin/stats', { token: s.accessToken })).status).toBe(200);

    await proxy.close();
    // A commits the change; its notice to Redis is dropped (B cannot hear of it yet).
    const res = await callA('PUT', `/roles/${role}/permissions`, { token: admin.accessToken, body: { permissions: [] } });
    expect(res.status, res.text).toBe(200);
    await proxy.open();
    // Once A is back and has repaired what it dropped, B no longer grants the permission.
    await until('B refuses', async () => (await callB('GET', '/admin/stats', { token: s.accessToken })).status === 403, {
      timeoutMs: 5_000,
      everyMs: 2,
    });
    expect((await callA('GET', '/admin/stats', { token: s.accessToken })).status).toBe(403);
  });

  it('never lets a liveness fill overwrite a revocation that raced it', async () => {
    await Promise.all(stores.map(live));
    const s = await registerAndLogin(callA);
    const sid = JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid as string;
    // The session's liveness is not in Redis (expired after its hour, say): the next request reads the database.
    await raw.del(`${keys}s:${sid}`);
    const key = Buffer.from(`s:${sid}`);
    // A reads the database (alive) and its fill is held before it reaches Redis...
    const held = proxy.holdRequests((chunk) => chunk.includes(key) && /\r\nset\r\n/i.test(chunk.toString('latin1')));
    const inFlight = callA('GET', '/users/me', { token: s.accessToken });
    await held;
    try {
      // ...while the session is revoked on B.
      expect((await callB('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } })).status).toBe(204);
    } finally {
      proxy.releaseRequests();
    }
    expect((await inFlight).status).toBe(200); // read before the revocation: allowed
    for (const call of [callA, callB]) expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(401);
  });

  it('counts the hits of a flush still on its way in the counts it answers meanwhile', async () => {
    const storeA = stores[0]!;
    await live(storeA);
    const s = await registerAndLogin(callA);
    await warm(storeA, () => callA('GET', '/users/me', { token: s.accessToken }));
    const remaining: number[] = [];
    // Replies from Redis come 300 ms late: each flush of A's hits stays in flight that long.
    proxy.dataDelayMs = 300;
    try {
      const start = performance.now();
      while (performance.now() - start < 800) {
        const r = await callA('GET', '/users/me', { token: s.accessToken });
        expect(r.status).toBe(200);
        remaining.push(remainingOf(r));
        // Answered from memory, a request never waits for I/O: let the flush timer run between them.
        await sleep(1);
      }
    } finally {
      proxy.dataDelayMs = 0;
    }
    // One client, one instance, nobody else counting: each request counts exactly one more.
    for (let i = 1; i < remaining.length; i++) expect(remaining[i], `request ${i}: ${remaining.join(',')}`).toBe(remaining[i - 1]! - 1);
  });

  it('keeps the hits of a flush that failed for the next one: the limit counts them all', async () => {
    const storeA = stores[0]!;
    await Promise.all(stores.map(live));
    const s = await registerAndLogin(callA);
    await warm(storeA, () => callA('GET', '/users/me', { token: s.accessToken }));
    const counter = `${keys}rl:u:${s.userId}`;
    await until('first hits counted', async () => (await raw.get(counter)) !== null, { timeoutMs: 2_000, everyMs: 2 });
    // A's commands stop reaching Redis; A goes on answering from memory and counting in process.
    const held = proxy.holdRequests();
    const before = remainingOf(await callA('GET', '/users/me', { token: s.accessToken }));
    for (let i = 0; i < 5; i++) await callA('GET', '/users/me', { token: s.accessToken });
    const counted = LIMIT - before + 5;
    await held; // a flush is on its way, and never arrives: the relay is cut
    const failures = degraded.filter((op) => op === 'flushHits').length;
    await proxy.close();
    await until('flush failed', () => degraded.filter((op) => op === 'flushHits').length > failures, { timeoutMs: 3_000, everyMs: 2 });
    await proxy.open();
    // Back: the hits of the failed flush are counted in Redis, and B sees them.
    await until(`all ${counted} hits counted`, async () => Number(await raw.get(counter)) >= counted, { timeoutMs: 5_000, everyMs: 2 });
    expect(Number(await raw.get(counter))).toBe(counted);
    expect(remainingOf(await callB('GET', '/users/me', { token: s.accessToken }))).toBe(LIMIT - counted - 1);
  });
});

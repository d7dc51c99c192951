// Rate limits, brute-force protection and client addresses (API.md "Rate
// limits and abuse"), with the in-process store and with Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { MemoryStore } from '../../src/store/memory.js';
import { createTestApp, redisStore, testConfig, type TestApp } from '../helpers/app.js';
import { client, PASSWORD, registerAndLogin, type Call } from '../helpers/http.js';
import { openDatabase } from '../helpers/services.js';

const from = (ip: string, extra: Record<string, unknown> = {}) => ({ env: { incoming: { socket: { remoteAddress: ip } } }, ...extra });

describe.each(['memory', 'redis'] as const)('abuse protection with the %s store', (kind) => {
  let dispose: () => Promise<void>;
  let database: Awaited<ReturnType<typeof openDatabase>>['database'];
  const apps: TestApp[] = [];
  const stores: Store[] = [];

  beforeAll(async () => {
    const db = await openDatabase(kind === 'memory' ? 'pglite' : 'postgres');
    dispose = db.dispose;
    database = db.database;
  });
  afterAll(async () => {
    for (const a of apps) await a.stop();
    for (const s of stores) await s.close();
    await dispose();
  });

  async function app(overrides: Record<string, string>): Promise<{ t: TestApp; call: Call }> {
    const store = kind === 'memory' ? new MemoryStore() : redisStore();
    stores.push(store);
    const t = await createTestApp({ database, store, config: testConfig(overrides) });
    apps.push(t);
    return { t, call: client(t) };
  }

  it('sends RateLimit headers and refuses past the limit with 429 and Retry-After', async () => {
    const { call } = await app({ RATE_LIMIT_REQUESTS: '5', RATE_LIMIT_WINDOW_SECONDS: '30' });
    const seen = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('GET', '/posts', from('203.0.113.7'));
      expect(res.status).toBe(200);
      seen.push([res.headers.get('ratelimit-limit'), res.headers.get('ratelimit-remaining')]);
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
      expect(Number(res.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(30);
    }
    expect(seen).toEqual([['5', '4'], ['5', '3'], ['5', '2'], ['5', '1'], ['5', '0']]);
    const refused = await call('GET', '/posts', from('203.0.113.7'));
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    // Another address has its own budget; health checks have none.
    expect((await call('GET', '/posts', from('203.0.113.8'))).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await call('GET', '/healthz', from('203.0.113.7'))).status).toBe(200);
    const metrics = await call('GET', '/metrics');
    expect(metrics.text).toMatch(/rate_limit_rejections_total\{limiter="requests"\} 1/);
  });

  it('locks an account+address after 5 failures: even the right password gets 429', async () => {
    const { call } = await app({ LOGIN_MAX_FAILURES: '5', LOGIN_FAILURE_WINDOW_SECONDS: '900' });
    const s = await registerAndLogin(call);
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/auth/login', from('198.51.100.1', { body: { email: s.email, password: 'wrong-password-123' } }));
      expect(res.status).toBe(401);
    }
    const locked = await call('POST', '/auth/login', from('198.51.100.1', { body: { email: s.email, password: PASSWORD } }));
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('rate_limited');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
    // The same account from another address still signs in.
    expect((await call('POST', '/auth/login', from('198.51.100.2', { body: { email: s.email, password: PASSWORD } }))).status).toBe(200);
  });

  it('resets the account+address counter on a successful login', async () => {
    const { call } = await app({ LOGIN_MAX_FAILURES: '3' });
    const s = await registerAndLogin(call);
    const attempt = (password: string) => call('POST', '/auth/login', from('198.51.100.9', { body: { email: s.email, password } }));
    expect((await attempt('wrong-1-password')).status).toBe(401);
    expect((await attempt('wrong-2-password')).status).toBe(401);
    expect((await attempt(PASSWORD)).status).toBe(200);
    expect((await attempt('wrong-3-password')).status).toBe(401);
    expect((await attempt('wrong-4-password')).status).toBe(401);
    expect((await attempt(PASSWORD)).status).toBe(200);
  });

  it('caps failures per address across accounts (credential stuffing)', async () => {
    const { call } = await app({ LOGIN_IP_MAX_FAILURES: '4', LOGIN_MAX_FAILURES: '100' });
    const victim = await registerAndLogin(call);
    for (let i = 0; i < 4; i++) {
      await call('POST', '/auth/login', from('192.0.2.50', { body: { email: `nobody${i}@example.test`, password: 'guess-password' } }));
    }
    const res = await call('POST', '/auth/login', from('192.0.2.50', { body: { email: victim.email, password: PASSWORD } }));
    expect(res.status).toBe(429);
    expect((await call('POST', '/auth/login', from('192.0.2.51', { body: { email: victim.email, password: PASSWORD } }))).status).toBe(200);
  });

  it('ignores X-Forwarded-For without TRUST_PROXY', async () => {
    const { call } = await app({ RATE_LIMIT_REQUESTS: '2' });
    for (let i = 0; i < 2; i++) {
      await call('GET', '/posts', from('10.1.1.1', { headers: { 'x-forwarded-for': `1.2.3.${i}` } }));
    }
    // Rotating the header does not buy a new budget: the socket address is the client.
    expect((await call('GET', '/posts', from('10.1.1.1', { headers: { 'x-forwarded-for': '1.2.3.99' } }))).status).toBe(429);
  });

  it('honours X-Forwarded-For from trusted proxies (hop count and CIDR)', async () => {
    for (const trust of ['1', '10.0.0.0/8']) {
      const { call } = await app({ RATE_LIMIT_REQUESTS: '2', TRUST_PROXY: trust });
      for (let i = 0; i < 3; i++) {
        const res = await call('GET', '/posts', from('10.9.9.9', { headers: { 'x-forwarded-for': `1.2.3.${i}` } }));
        expect(res.status, `TRUST_PROXY=${trust}`).toBe(200);
      }
      await call('GET', '/posts', from('10.9.9.9', { headers: { 'x-forwarded-for': '5.5.5.5' } }));
      await call('GET', '/posts', from('10.9.9.9', { headers: { 'x-forwarded-for': '5.5.5.5' } }));
      expect((await call('GET', '/posts', from('10.9.9.9', { headers: { 'x-forwarded-for': '5.5.5.5' } }))).status).toBe(429);
    }
    // A proxy outside the trusted CIDR is not believed.
    const { call } = await app({ RATE_LIMIT_REQUESTS: '1', TRUST_PROXY: '10.0.0.0/8' });
    await call('GET', '/posts', from('172.16.0.1', { headers: { 'x-forwarded-for': '7.7.7.1' } }));
    expect((await call('GET', '/posts', from('172.16.0.1', { headers: { 'x-forwarded-for': '7.7.7.2' } }))).status).toBe(429);
  });
});

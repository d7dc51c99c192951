// Rate limits, brute-force protection and client addresses (docs/api.md
// "Rate limits and abuse"), with the in-process store and with Redis.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { MemoryStore } from '../../src/store/memory.js';
import { createTestApp, redisStore, testConfig, type TestApp } from '../helpers/app.js';
import { sleep, within } from '../helpers/eventually.js';
import { client, loginAdmin, PASSWORD, registerAndLogin, uniqueEmail, type Call } from '../helpers/http.js';
import { openDatabase } from '../helpers/services.js';
import { TestSmtp } from '../helpers/smtp.js';

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
  const servers: ReturnType<typeof serve>[] = [];
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    for (const a of apps) await a.stop();
    for (const s of stores) await s.close();
    await dispose();
  });

  async function newStore(prefix?: string): Promise<Store> {
    if (kind === 'memory') return new MemoryStore();
    const store = redisStore(prefix);
    // Before it is connected a Redis store counts per instance: wait, or early requests split the count.
    await store.ready();
    return store;
  }

  async function app(
    overrides: Record<string, string>,
    store?: Store,
    appOptions?: Parameters<typeof createTestApp>[0]['app'],
  ): Promise<{ t: TestApp; call: Call }> {
    store ??= await newStore();
    stores.push(store);
    // The apps of this file share one database and live until its end: only an app given an SMTP
    // server sends mail, or an earlier app's sender would take (and file away) the mail a test waits for.
    const mail = { send: overrides.SMTP_URL !== undefined, ...appOptions?.mail };
    const t = await createTestApp({
      database,
      store,
      config: testConfig(overrides),
      prepare: apps.length === 0,
      app: { ...appOptions, mail },
    });
    apps.push(t);
    return { t, call: client(t) };
  }

  /** The app on a real socket: its base URL. Node's fetch keeps connections alive and opens one per request in flight. */
  async function served(t: TestApp): Promise<string> {
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const srv = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(srv));
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const post = async (url: string, body: unknown, token?: string, method = 'POST') => {
    const res = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const tally = (statuses: number[]) => {
    const out: Record<number, number> = {};
    for (const st of statuses) out[st] = (out[st] ?? 0) + 1;
    return out;
  };

  // Real argon2 cost, so that the verifications of a burst overlap as they do in production.
  // Production hashing. The queue-wait bound is raised here so that a busy CI
  // machine (test files run in parallel) answers no 503 and the counts are exact;
  // the bound itself has its own test below.
  const REAL_ARGON2 = { ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2', PASSWORD_QUEUE_MAX_WAIT_MS: '60000' };

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
    expect(seen).toEqual([
      ['5', '4'],
      ['5', '3'],
      ['5', '2'],
      ['5', '1'],
      ['5', '0'],
    ]);
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

  // Behind a trusted proxy (the socket is 10.9.9.9, inside TRUST_PROXY): the forwarded address is the client.
  const via = (forwarded: string, extra: Record<string, unknown> = {}) =>
    from('10.9.9.9', { ...extra, headers: { 'x-forwarded-for': forwarded, ...((extra.headers as object) ?? {}) } });

  it('counts sign-in failures of an IPv6 /64 as one address, however its addresses are spelled', async () => {
    const { call } = await app({ TRUST_PROXY: '10.0.0.0/8', LOGIN_MAX_FAILURES: '5', LOGIN_IP_MAX_FAILURES: '8' });
    const s = await registerAndLogin(call);
    const attempt = (forwarded: string, password: string, email = s.email) =>
      call('POST', '/auth/login', via(forwarded, { body: { email, password } }));
    // Five addresses of 2001:db8:1:2::/64, in five spellings.
    const sameNet = [
      '2001:db8:1:2::1',
      '2001:DB8:1:2::2',
      '2001:0db8:0001:0002:0000:0000:0000:0003',
      '[2001:db8:1:2::4]',
      '[2001:db8:1:2:a:b:c:d]:443',
    ];
    for (const ip of sameNet) expect((await attempt(ip, 'wrong-password-123')).status, ip).toBe(401);
    // Another address of that /64: locked, even with the right password.
    const locked = await attempt('2001:db8:1:2:ffff:ffff:ffff:ffff', PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('rate_limited');
    // The next /64 is another client.
    expect((await attempt('2001:db8:1:3::1', PASSWORD)).status).toBe(200);
    // Across accounts too: the /64 has had 5 of its 8 failures.
    for (let i = 0; i < 3; i++) expect((await attempt(`2001:db8:1:2::${i + 10}`, 'guess-password-1', uniqueEmail('v6'))).status).toBe(401);
    const other = await registerAndLogin(call);
    expect((await attempt('2001:db8:1:2:1234::1', PASSWORD, other.email)).status).toBe(429);
    expect((await attempt('2001:db8:1:3::1', PASSWORD, other.email)).status).toBe(200);
  });

  it('limits anonymous requests and invalid tokens per IPv6 /64', async () => {
    const { call } = await app({ TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_REQUESTS: '3' });
    expect((await call('GET', '/posts', via('2001:db8:5:6::1'))).status).toBe(200);
    expect((await call('GET', '/posts', via('2001:db8:5:6::2', { token: 'not.a.token' }))).status).toBe(401);
    expect((await call('GET', '/posts', via('2001:db8:5:6:7:8:9:a'))).status).toBe(200);
    expect((await call('GET', '/posts', via('2001:db8:5:6::ffff'))).status).toBe(429);
    expect((await call('GET', '/posts', via('2001:db8:5:7::1'))).status).toBe(200);
    // An IPv4-mapped address is its IPv4 address.
    for (let i = 0; i < 3; i++) await call('GET', '/posts', via('192.0.2.77'));
    expect((await call('GET', '/posts', via('::ffff:192.0.2.77'))).status).toBe(429);
  });

  it('caps failures per account across all addresses: past LOGIN_ACCOUNT_MAX_FAILURES even the right password gets 429', async () => {
    const { call } = await app({ TRUST_PROXY: '10.0.0.0/8', LOGIN_MAX_FAILURES: '5', LOGIN_ACCOUNT_MAX_FAILURES: '6' });
    const s = await registerAndLogin(call);
    const addresses = ['198.51.100.31', '198.51.100.32', '2001:db8:a::1', '2001:db8:b::1', '2001:db8:c::1', '203.0.113.33'];
    for (const ip of addresses) {
      expect((await call('POST', '/auth/login', via(ip, { body: { email: s.email, password: 'wrong-password-123' } }))).status).toBe(401);
    }
    const refused = await call('POST', '/auth/login', via('192.0.2.200', { body: { email: s.email, password: PASSWORD } }));
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(800);
    // Another account is not touched.
    const other = await registerAndLogin(call);
    expect((await call('POST', '/auth/login', via('192.0.2.200', { body: { email: other.email, password: PASSWORD } }))).status).toBe(200);
  });

  it('takes a forwarded entry that is not an IP address for no client: the nearest trusted hop is (sessions, audit log, reset mail)', async () => {
    const smtp = await new TestSmtp().start();
    try {
      const marker = `evil${Math.random().toString(36).slice(2, 8)}`;
      const garbage = [
        marker,
        `<b>${marker}</b>`,
        `${marker}.example`,
        `1.2.3.4.${marker}`,
        `[${marker}]`,
        `${'9'.repeat(300)}${marker}`,
        `1.2.3.4 ${marker}`,
        `"${marker}"`,
        `for=${marker}`,
      ];
      for (const trust of ['10.0.0.0/8', '2']) {
        const { call } = await app({ TRUST_PROXY: trust, SMTP_URL: smtp.url }, undefined, {
          mail: { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 },
        });
        const s = await registerAndLogin(call);
        const admin = await loginAdmin(call);
        // [forwarded header, the client it names]: the walk stops at the first entry that is not an address.
        const cases: [string, string][] = [
          ...garbage.map((g): [string, string] => [g, '10.9.9.9']),
          ...garbage.map((g): [string, string] => [`${g}, 10.1.2.3`, '10.1.2.3']),
          ...garbage.map((g): [string, string] => [`203.0.113.5, ${g}`, '10.9.9.9']),
          [`${marker}, , 10.1.2.4`, '10.1.2.4'],
          [' , 10.1.2.6', '10.1.2.6'],
          ['', '10.9.9.9'],
          [`${'1.1.1.1, '.repeat(2000)}${marker}`, '10.9.9.9'],
          // Addresses in their other spellings are addresses, shown one way.
          ['[2001:DB8::7]:443', '2001:db8::7'],
          [' 203.0.113.9 ', '203.0.113.9'],
          ['203.0.113.10:5555', '203.0.113.10'],
          // A zone id means nothing off the link: dropped, whatever it says.
          ['fe80::1%eth0', 'fe80::1'],
          [`2001:db8::1%${marker}`, '2001:db8::1'],
          ['::ffff:203.0.113.11', '203.0.113.11'],
        ];
        const audited = new Map<string, [string, string]>();
        for (const [header, client] of cases) {
          const rid = `xff-${Math.random().toString(36).slice(2, 10)}`;
          audited.set(rid, [header, client]);
          const res = await call(
            'POST',
            '/auth/login',
            via(header, { headers: { 'x-request-id': rid }, body: { email: s.email, password: PASSWORD } }),
          );
          expect(res.status, header.slice(0, 80)).toBe(200);
          const sid = JSON.parse(Buffer.from(res.body.accessToken.split('.')[1], 'base64url').toString()).sid;
          const sessions = await call('GET', '/users/me/sessions', { token: res.body.accessToken });
          expect(sessions.body.items.find((x: { id: string }) => x.id === sid).ip, `TRUST_PROXY=${trust}: ${header.slice(0, 80)}`).toBe(
            client,
          );
        }
        let logged: { requestId: string; ip: string }[] = [];
        const seen = await within(5000, async () => {
          logged = (await call('GET', '/admin/logs?limit=100&action=auth.login', { token: admin.accessToken })).body.items;
          return [...audited.keys()].every((rid) => logged.some((e) => e.requestId === rid));
        });
        expect(seen).toBe(true);
        for (const e of logged.filter((x) => audited.has(x.requestId))) {
          const [header, client] = audited.get(e.requestId)!;
          expect(e.ip, `audit, TRUST_PROXY=${trust}: ${header.slice(0, 80)}`).toBe(client);
        }
        // A reset mail names the nearest trusted hop.
        await call('POST', '/auth/password/forgot', via(`${marker}, 10.1.2.5`, { body: { email: s.email } }));
        // (The first mail is the address's verification link.)
        const mail = (await smtp.waitFor(s.email, 2)).find((m) => /reset/i.test(m.subject));
        expect(mail!.text).toContain('from the address 10.1.2.5 at');
        expect(mail!.text + mail!.html).not.toContain(marker);
      }
    } finally {
      await smtp.stop();
    }
  });

  it('verifies no more than LOGIN_MAX_FAILURES passwords of a parallel burst, and refuses the right one sent inside it', async () => {
    const { t, call } = await app({ ...REAL_ARGON2, LOGIN_MAX_FAILURES: '5' });
    const victim = await registerAndLogin(call);
    const base = await served(t);
    const burst = Array.from({ length: 59 }, (_, i) =>
      post(`${base}/auth/login`, { email: victim.email, password: `wrong-guess-${i}-password` }),
    );
    // While the first guesses are still being verified.
    await sleep(20);
    const right = post(`${base}/auth/login`, { email: victim.email, password: PASSWORD });
    const statuses = await Promise.all(burst);
    expect(tally(statuses)).toEqual({ 401: 5, 429: 54 });
    expect(await right).toBe(429);
  });

  it('verifies no more than LOGIN_IP_MAX_FAILURES passwords of a parallel spray over many accounts from one address', async () => {
    const { t } = await app({ ...REAL_ARGON2, LOGIN_MAX_FAILURES: '5', LOGIN_IP_MAX_FAILURES: '100' });
    const base = await served(t);
    const statuses = await Promise.all(
      Array.from({ length: 150 }, () => post(`${base}/auth/login`, { email: uniqueEmail('spray'), password: 'sprayed-password-1' })),
    );
    expect(tally(statuses)).toEqual({ 401: 100, 429: 50 });
  });

  it('puts currentPassword on PUT /users/me under the same limits as sign-in', async () => {
    const { t, call } = await app({ ...REAL_ARGON2, LOGIN_MAX_FAILURES: '5' });
    const s = await registerAndLogin(call);
    const base = await served(t);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(`${base}/users/me`, { email: uniqueEmail('taken'), currentPassword: `guess-${i}-password` }, s.accessToken, 'PUT'),
      ),
    );
    expect(tally(statuses)).toEqual({ 403: 5, 429: 15 });
    // Locked for sign-in from that address too, even with the right password.
    expect(await post(`${base}/auth/login`, { email: s.email, password: PASSWORD })).toBe(429);
  });

  it.runIf(kind === 'redis')('shares one budget between two instances hit by one burst', async () => {
    const prefix = `test:burst-${Math.random().toString(36).slice(2)}:`;
    const overrides = { ...REAL_ARGON2, LOGIN_MAX_FAILURES: '5' };
    const a = await app(overrides, await newStore(prefix));
    const b = await app(overrides, await newStore(prefix));
    const victim = await registerAndLogin(a.call);
    const bases = [await served(a.t), await served(b.t)];
    const statuses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        post(`${bases[i % 2]}/auth/login`, { email: victim.email, password: `wrong-guess-${i}-password` }),
      ),
    );
    expect(tally(statuses)).toEqual({ 401: 5, 429: 55 });
  });

  it('counts requests with an invalid token against their address', async () => {
    const { call } = await app({ RATE_LIMIT_REQUESTS: '3' });
    for (let i = 0; i < 3; i++) expect((await call('GET', '/posts', from('203.0.113.70', { token: `not.a.token${i}` }))).status).toBe(401);
    expect((await call('GET', '/posts', from('203.0.113.70'))).status).toBe(429);
    expect((await call('GET', '/posts', from('203.0.113.71'))).status).toBe(200);
  });

  it('refuses unverified tokens from an address past the limit in failed verifications, and keeps verified ones in their user’s bucket', async () => {
    const { call } = await app({ RATE_LIMIT_REQUESTS: '3' });
    const s = await registerAndLogin(call);
    const flooder = '203.0.113.80';
    expect((await call('GET', '/users/me', from(flooder, { token: s.accessToken }))).status).toBe(200);
    // Forged: our header and kid, a signature that is not ours.
    const [h, p] = s.accessToken.split('.');
    const forged = (i: number) => `${h}.${p}.${Buffer.from(`forged-signature-${i}`.padEnd(64, 'x')).toString('base64url')}`;
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await call('GET', '/posts', from(flooder, { token: forged(i) }))).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    const refused = await call('GET', '/posts', from(flooder, { token: forged(99) }));
    expect(refused.body.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // A token this instance already verified keeps working from that address, on its user's own budget.
    const mine = await call('GET', '/users/me', from(flooder, { token: s.accessToken }));
    expect(mine.status).toBe(200);
    expect(mine.headers.get('ratelimit-remaining')).toBe('1');
    // A new token from that address is not known yet: refused until the window passes; elsewhere it works.
    const fresh = await call('POST', '/auth/login', from('203.0.113.81', { body: { email: s.email, password: PASSWORD } }));
    expect((await call('GET', '/posts', from(flooder, { token: fresh.body.accessToken }))).status).toBe(429);
    expect((await call('GET', '/posts', from('203.0.113.81', { token: fresh.body.accessToken }))).status).toBe(200);
    const metrics = await call('GET', '/metrics');
    expect(metrics.text).toMatch(/rate_limit_rejections_total\{limiter="invalid_tokens"\} 4/);
  });

  it('serves one sign-in at a time even when one hash takes longer than the allowed queue wait', async () => {
    // Nothing is queued ahead of a sequential sign-in, so none may be refused for the wait,
    // however long the last hash took (real parameters: several ms, over the 5 ms allowed).
    const { t, call } = await app({ ...REAL_ARGON2, ARGON2_CONCURRENCY: '1', PASSWORD_QUEUE_MAX_WAIT_MS: '5' });
    // The app hashes its dummy password at start: done, nothing runs or waits.
    await t.services.dummyHash;
    const s = await registerAndLogin(call);
    for (let i = 0; i < 3; i++)
      expect((await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD } })).status).toBe(200);
  });

  it('refuses a password check that would wait too long behind a flood with 503 and Retry-After, and serves the rest', async () => {
    const { t, call } = await app({
      ...REAL_ARGON2,
      ARGON2_CONCURRENCY: '1',
      PASSWORD_QUEUE_MAX_WAIT_MS: '150',
      LOGIN_MAX_FAILURES: '10000',
      LOGIN_IP_MAX_FAILURES: '10000',
    });
    // The queue is one per process: the app's own start-up hash must not be ahead of the registration.
    await t.services.dummyHash;
    const s = await registerAndLogin(call);
    const base = await served(t);
    const flood = await Promise.all(
      Array.from({ length: 60 }, async () => {
        const res = await fetch(`${base}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: uniqueEmail('flood'), password: 'flooding-password' }),
        });
        const body = (await res.json()) as { code: string };
        return { status: res.status, code: body.code, retry: res.headers.get('retry-after') };
      }),
    );
    const busy = flood.filter((r) => r.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.every((r) => r.code === 'service_unavailable' && Number(r.retry) >= 1)).toBe(true);
    expect(flood.filter((r) => r.status !== 503).every((r) => r.status === 401)).toBe(true);
    // Refused checks were not counted as failures, and the queue drains: the right password works
    // once the admitted checks are done (seconds on a busy CI machine, at real argon2 parameters
    // and one job at a time). Waiting here also keeps the flood out of the next test's sign-ins.
    let status = 503;
    for (const until = Date.now() + 15_000; status === 503 && Date.now() < until; ) {
      status = (await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD } })).status;
      if (status === 503) await sleep(200);
    }
    expect(status).toBe(200);
  }, 30_000);
});

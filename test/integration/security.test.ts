// Security checks not covered elsewhere (see SECURITY.md for the whole list).
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { createLogger } from '../../src/lib/logger.js';
import type { Store } from '../../src/store/store.js';
import { MemoryStore } from '../../src/store/memory.js';
import { createTestApp, LogCapture, testConfig } from '../helpers/app.js';
import { client, loginAdmin, PASSWORD, registerAndLogin, uniqueEmail } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useServedApp, useTestApp } from '../helpers/use-app.js';

describe('security checks', () => {
  const app = useTestApp('pglite', { config: testConfig({ CORS_ORIGINS: 'https://app.example.com' }) });
  const { call } = app;

  it('sends security headers on every response, errors included', async () => {
    const s = await registerAndLogin(call);
    for (const [method, path, token] of [
      ['GET', '/posts'],
      ['GET', '/nope'],
      ['GET', '/users/me', s.accessToken],
      ['GET', '/users/me'],
      ['GET', '/healthz'],
    ] as const) {
      const res = await call(method, path, { token });
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
    }
  });

  it('marks every token response Cache-Control: no-store', async () => {
    const s = await registerAndLogin(call);
    const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers.get('cache-control')).toBe('no-store');
    const login = await call('POST', '/auth/login', { body: { email: s.email, password: 'a-Long-and-Unusual-passphrase-42' } });
    expect(login.headers.get('cache-control')).toBe('no-store');
  });

  it('marks every response carrying personal data Cache-Control: no-store, refusals included', async () => {
    const s = await registerAndLogin(call);
    const admin = await loginAdmin(call);
    const cases: [string, string, string | undefined, unknown?][] = [
      ['POST', '/auth/register', undefined, { email: uniqueEmail('nostore'), password: PASSWORD, name: 'New User' }],
      ['GET', '/users/me', s.accessToken],
      ['PUT', '/users/me', s.accessToken, { name: 'Private Name' }],
      ['GET', `/users/${s.userId}`, admin.accessToken],
      ['GET', '/users', admin.accessToken],
      ['PUT', `/users/${s.userId}/roles`, admin.accessToken, { roles: ['user'] }],
      ['GET', '/admin/logs', admin.accessToken],
      ['GET', '/admin/stats', admin.accessToken],
      ['GET', '/admin/logs', s.accessToken],
      ['GET', '/users', s.accessToken],
    ];
    for (const [method, path, token, body] of cases) {
      const res = await call(method, path, { token, body });
      expect(res.status, `${method} ${path}`).toBeLessThan(500);
      expect(res.headers.get('cache-control'), `${method} ${path} (${res.status})`).toBe('no-store');
    }
  });

  it('allows cross-origin browser access only to the configured origins', async () => {
    const allowed = await call('OPTIONS', '/posts', {
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    const simple = await call('GET', '/posts', { headers: { origin: 'https://app.example.com' } });
    expect(simple.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const denied = await call('GET', '/posts', { headers: { origin: 'https://evil.example.net' } });
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    const preflightDenied = await call('OPTIONS', '/posts', {
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'DELETE' },
    });
    expect(preflightDenied.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers an unexpected failure with a bare 500 internal_error, logging it with the request id', async () => {
    // A store that fails in a way no code path expects.
    const broken: Store = Object.assign(new MemoryStore(), {
      batch: async () => {
        throw new Error('secret internal detail: connection string postgres://u:pw@host');
      },
    });
    const b = await createTestApp({ database: app.database, store: broken, prepare: false });
    const res = await client(b)('GET', '/posts', { headers: { 'x-request-id': 'boom-1' } });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ code: 'internal_error', requestId: 'boom-1' });
    expect(res.text).not.toContain('secret internal detail');
    expect(res.text).not.toContain('at ');
    expect(b.logs.text).toContain('boom-1');
    expect(b.logs.text).toContain('unhandled error');
    await b.stop();
  });

  it('issues refresh tokens of at least 256 bits, stored only as hashes', async () => {
    const s = await registerAndLogin(call);
    expect(Buffer.from(s.refreshToken, 'base64url').length * 8).toBeGreaterThanOrEqual(256);
    const { refreshTokens } = await import('../../src/db/schema.js');
    const rows = await app.database.db.select().from(refreshTokens);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.tokenHash))).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(s.refreshToken);
  });

  it('never returns password hashes from any user-facing read', async () => {
    const s = await registerAndLogin(call);
    for (const path of ['/users/me']) {
      const res = await call('GET', path, { token: s.accessToken });
      expect(res.text).not.toMatch(/argon2|passwordHash|password_hash/);
    }
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  const app = useTestApp('pglite', { overrides: { METRICS_TOKEN: 'metrics-token-for-the-scraper' } });

  it('answers only a request that carries the token', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-token',
      'metrics-token-for-the-scraper',
      'Bearer metrics-token-for-the-scraperX',
    ]) {
      const res = await app.call('GET', '/metrics', { headers: authorization ? { authorization } : {} });
      expect(res.status, String(authorization)).toBe(401);
      expect(res.body.code).toBe('unauthenticated');
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      expect(res.text).not.toContain('http_requests_total');
    }
    const ok = await app.call('GET', '/metrics', { headers: { authorization: 'Bearer metrics-token-for-the-scraper' } });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('http_requests_total');
  });
});

// On Node the headers known before the handler runs are written straight onto
// the ServerResponse (src/lib/node-fast-path.ts): check them over a real socket.
describe('response headers through the Node HTTP server', () => {
  const served = useServedApp({ config: testConfig({ RATE_LIMIT_REQUESTS: '3', RATE_LIMIT_WINDOW_SECONDS: '60' }) });

  it('sends security, request-id and rate-limit headers once each, on successes and problems alike', async () => {
    const { base } = served;
    const seen: { status: number; type: string | null }[] = [];
    for (let i = 1; i <= 4; i++) {
      const res = await fetch(`${base}/posts`, { headers: { 'x-request-id': `hdr-${i}` } });
      seen.push({ status: res.status, type: res.headers.get('content-type') });
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-request-id')).toBe(`hdr-${i}`);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(Math.max(0, 3 - i)));
      await res.text();
    }
    expect(seen.map((s) => s.status)).toEqual([200, 200, 200, 429]);
    expect(seen[0]!.type).toBe('application/json');
    expect(seen[3]!.type).toBe('application/problem+json');
    // The 429 carries its own Retry-After and RateLimit-Reset, not a second copy.
    const limited = await fetch(`${base}/posts`);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(limited.headers.get('ratelimit-reset')).toMatch(/^\d+$/);
    expect(limited.headers.get('x-content-type-options')).toBe('nosniff');
    // Health checks skip the API chain but still get the security headers and an id.
    const health = await fetch(`${base}/healthz`);
    expect(health.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('request bodies and route-declared headers through the Node HTTP server', () => {
  const served = useServedApp();
  const postJson = (path: string, body: unknown) =>
    fetch(`${served.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('reads a JSON body, and refuses one over the limit whether sized by Content-Length or chunked', async () => {
    const { base } = served;
    const json = { 'content-type': 'application/json' };
    expect((await postJson('/auth/register', { email: 'socket@example.test', password: 'Socket-Passphrase-91!', name: 'S' })).status).toBe(
      201,
    );
    const big = JSON.stringify({ email: 'big@example.test', password: 'Socket-Passphrase-91!', name: 'x'.repeat(200_000) });
    const sized = await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: big });
    expect(sized.status).toBe(413);
    expect(((await sized.json()) as { code: string }).code).toBe('payload_too_large');
    const chunks = new ReadableStream({
      start(ctl) {
        ctl.enqueue(new TextEncoder().encode(big));
        ctl.close();
      },
    });
    const chunked = await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: chunks, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('sends no-store on personal data over a real socket, on a success and on a refusal', async () => {
    const { base } = served;
    const account = { email: 'wire@example.test', password: 'Wire-Passphrase-77!' };
    expect((await postJson('/auth/register', { ...account, name: 'W' })).status).toBe(201);
    const login = (await (await postJson('/auth/login', account)).json()) as { accessToken: string };
    const auth = { authorization: `Bearer ${login.accessToken}` };
    for (const [path, status] of [
      ['/users/me', 200],
      ['/admin/logs', 403],
    ] as const) {
      const res = await fetch(`${base}${path}`, { headers: auth });
      expect(res.status, path).toBe(status);
      expect(res.headers.get('cache-control'), path).toBe('no-store');
      await res.text();
    }
    // Response-carried headers win over early ones: the JWKS is public and cacheable.
    const jwks = await fetch(`${base}/.well-known/jwks.json`);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
  });
});

// Drizzle's error message is `Failed query: … params: …` and the drivers put
// values in theirs: a database error is logged as SQLSTATE, constraint and table.
describe.each(BACKENDS)('database errors in the server log on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;
  const exec = (q: string) => app.database.db.execute(sql.raw(q));

  it('logs the SQLSTATE, constraint and table of a failed write, never its parameters', async () => {
    // Constraints the test adds make the database refuse real writes.
    await exec(`ALTER TABLE users ADD CONSTRAINT refuse_test_name CHECK (name <> 'Refused Name')`);
    await exec(`ALTER TABLE posts ADD CONSTRAINT refuse_test_body CHECK (body NOT LIKE '%refused-body%')`);
    try {
      const email = uniqueEmail('logged');
      const reg = await call('POST', '/auth/register', {
        body: { email, password: PASSWORD, name: 'Refused Name' },
        headers: { 'x-request-id': `dberr-${backend}-1` },
      });
      expect(reg.status).toBe(500);
      expect(reg.body.code).toBe('internal_error');
      const s = await registerAndLogin(call);
      const post = await call('POST', '/posts', {
        token: s.accessToken,
        body: { title: 'fine title', body: 'a refused-body with private words' },
      });
      expect(post.status).toBe(500);
      const rename = await call('PUT', '/users/me', { token: s.accessToken, body: { name: 'Refused Name' } });
      expect(rename.status).toBe(500);

      const errors = app.t.logs.lines.filter((l) => l.includes('"unhandled error"')).map((l) => JSON.parse(l));
      expect(errors).toHaveLength(3);
      expect(errors[0]).toMatchObject({
        requestId: `dberr-${backend}-1`,
        err: { kind: 'database', code: '23514', constraint: 'refuse_test_name', table: 'users' },
      });
      expect(errors[1].err).toMatchObject({ code: '23514', constraint: 'refuse_test_body', table: 'posts' });
      expect(errors[2].err).toMatchObject({ code: '23514', constraint: 'refuse_test_name', table: 'users' });
      const [row] = await app.database.db.select({ h: users.passwordHash }).from(users).where(sql`${users.email} = ${s.email}`);
      for (const line of errors.map((e) => JSON.stringify(e))) {
        for (const needle of [
          '$argon2id',
          row!.h ?? 'no password',
          email,
          'refused-body',
          'private words',
          'Refused Name',
          'Failed query',
          'params',
          'insert into',
          'update ',
        ]) {
          expect(line, needle).not.toContain(needle);
        }
      }
    } finally {
      await exec('ALTER TABLE users DROP CONSTRAINT refuse_test_name');
      await exec('ALTER TABLE posts DROP CONSTRAINT refuse_test_body');
    }
  });

  it('describes a database error the same way wherever it is logged from', async () => {
    const logs = new LogCapture();
    const logger = createLogger('info', logs);
    const err = await app.database.db.execute(sql`select ${'not-a-uuid-secret'}::uuid`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    logger.fatal({ err }, 'failed to start');
    logger.warn({ err: new Error('outer', { cause: err }) }, 'wrapped');
    logger.error(err as Error);
    expect(logs.lines).toHaveLength(3);
    for (const line of logs.lines) {
      expect(JSON.parse(line).err).toEqual({ kind: 'database', code: '22P02' });
      expect(line).not.toContain('not-a-uuid-secret');
    }
  });
});

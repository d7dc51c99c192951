// Audit log and statistics (docs/api.md "Admin"), on both database backends.
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/eventually.js';
import { auditLogs } from '../../src/db/schema.js';
import { isAuditDetail } from '../../src/lib/audit-details.js';
import { pruneAuditLog } from '../../src/modules/admin/admin.service.js';
import { createTestApp, testConfig } from '../helpers/app.js';
import { client, login, loginAdmin, PASSWORD, registerAndLogin, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

describe.each(BACKENDS)('audit log and stats on %s', (backend) => {
  let admin: Session;
  const config = testConfig({ RATE_LIMIT_REQUESTS: '100000', LOGIN_MAX_FAILURES: '2' });
  const app = useTestApp(backend, { config });
  const { call } = app;

  beforeAll(async () => {
    admin = await loginAdmin(call);
  });

  /** Polls /admin/logs until an entry for this request id shows up (the contract allows 2 s). */
  async function entryOf(requestId: string) {
    const start = Date.now();
    while (Date.now() - start < 2000) {
      const res = await call('GET', '/admin/logs?limit=100', { token: admin.accessToken });
      const hit = res.body.items.find((e: { requestId: string }) => e.requestId === requestId);
      if (hit) return hit;
      await sleep(25);
    }
    throw new Error(`no audit entry for ${requestId} within 2 s`);
  }

  it('records every kind of outcome with its action and security detail', async () => {
    const s = await registerAndLogin(call);
    const other = await registerAndLogin(call);
    const post = (await call('POST', '/posts', { token: other.accessToken, body: { title: 't', body: 'b' } })).body.id;
    const rid = (n: string) => ({ 'x-request-id': `audit-${backend}-${n}-${Math.random().toString(36).slice(2, 8)}` });
    const cases: [string, () => Promise<{ headers: Headers; status: number }>, Partial<Record<string, unknown>>][] = [
      [
        'login ok',
        () => call('POST', '/auth/login', { headers: rid('a'), body: { email: s.email, password: PASSWORD } }),
        { status: 200, action: 'auth.login', detail: null, route: '/auth/login' },
      ],
      [
        'login failed',
        () => call('POST', '/auth/login', { headers: rid('b'), body: { email: s.email, password: 'wrong-password-1' } }),
        { status: 401, action: 'auth.login', detail: 'login_failed' },
      ],
      [
        'bad token',
        () => call('GET', '/users/me', { headers: rid('c'), token: 'x.y.z' }),
        { status: 401, action: 'users.me.read', detail: 'invalid_token', actorId: null },
      ],
      [
        'denied',
        () => call('DELETE', `/posts/${post}`, { headers: rid('d'), token: s.accessToken }),
        { status: 403, action: 'posts.delete', detail: 'permission_denied: posts:delete:any', actorId: s.userId },
      ],
      ['unknown route', () => call('GET', '/nowhere', { headers: rid('e') }), { status: 404, action: 'unknown', route: '-' }],
      ['wrong method', () => call('PATCH', '/posts', { headers: rid('f') }), { status: 405, action: 'method_not_allowed' }],
      [
        'too large',
        () =>
          call('POST', '/posts', {
            headers: { ...rid('g'), 'content-type': 'application/json', 'content-length': '70000' },
            raw: 'x'.repeat(70000),
            token: s.accessToken,
          }),
        { status: 413, action: 'posts.create' },
      ],
      [
        'wrong type',
        () => call('POST', '/posts', { headers: { ...rid('h'), 'content-type': 'text/plain' }, raw: 'hi', token: s.accessToken }),
        { status: 415, action: 'posts.create' },
      ],
      [
        'role assigned',
        () =>
          call('PUT', `/users/${other.userId}/roles`, {
            headers: rid('i'),
            token: admin.accessToken,
            body: { roles: ['user', 'moderator'] },
          }),
        { status: 200, action: 'users.roles.assign', detail: 'role_assigned: moderator,user' },
      ],
      [
        'role permissions',
        () =>
          call('PUT', '/roles/moderator/permissions', {
            headers: rid('j'),
            token: admin.accessToken,
            body: {
              permissions: [
                'posts:read',
                'users:read',
                'posts:delete:any',
                'posts:delete:own',
                'posts:create',
                'profile:read',
                'profile:update',
                'auth:refresh',
                'auth:register',
              ],
            },
          }),
        { status: 200, action: 'roles.update', detail: 'role_permissions_changed: moderator' },
      ],
      [
        'login failed again',
        () => call('POST', '/auth/login', { headers: rid('k'), body: { email: s.email, password: 'wrong-password-2' } }),
        { status: 401, detail: 'login_failed' },
      ],
      [
        'locked',
        () => call('POST', '/auth/login', { headers: rid('l'), body: { email: s.email, password: PASSWORD } }),
        { status: 429, action: 'auth.login', detail: 'login_locked' },
      ],
      [
        'reused',
        async () => {
          await call('POST', '/auth/refresh', { body: { refreshToken: other.refreshToken } });
          return call('POST', '/auth/refresh', { headers: rid('m'), body: { refreshToken: other.refreshToken } });
        },
        { status: 401, action: 'auth.refresh', detail: 'refresh_token_reused' },
      ],
    ];
    for (const [name, run, expected] of cases) {
      const res = await run();
      expect(res.status, name).toBe(expected.status);
      const entry = await entryOf(res.headers.get('x-request-id')!);
      expect(entry, name).toMatchObject(expected);
      expect(entry.ip).toBeTruthy();
      expect(new Date(entry.at).toISOString()).toBe(entry.at);
    }
  });

  it('spells every detail as the catalogue does: snake_case, an argument after ": "', async () => {
    const s = await registerAndLogin(call);
    await login(call, s.email, PASSWORD);
    const third = await login(call, s.email, PASSWORD);
    const sid = JSON.parse(Buffer.from(third.accessToken.split('.')[1]!, 'base64url').toString()).sid;
    const rid = (n: string) => ({ 'x-request-id': `names-${backend}-${n}-${Math.random().toString(36).slice(2, 8)}` });
    // Details that were dotted (session.revoked, mfa.totp_pending, ...) until the catalogue.
    const cases: [string, () => Promise<{ headers: Headers; status: number }>, number, string][] = [
      [
        'one session',
        () => call('DELETE', `/users/me/sessions/${sid}`, { headers: rid('a'), token: s.accessToken }),
        204,
        'session_revoked',
      ],
      [
        'the others',
        () => call('DELETE', '/users/me/sessions', { headers: rid('b'), token: s.accessToken }),
        204,
        'other_sessions_revoked: 1',
      ],
      [
        'totp pending',
        () => call('POST', '/users/me/mfa/totp', { headers: rid('c'), token: s.accessToken, body: { currentPassword: PASSWORD } }),
        200,
        'mfa_totp_pending',
      ],
      ['export', () => call('GET', '/users/me/export', { headers: rid('d'), token: s.accessToken }), 200, 'user_exported'],
      [
        'all by admin',
        () => call('DELETE', `/users/${s.userId}/sessions`, { headers: rid('e'), token: admin.accessToken }),
        204,
        'all_sessions_revoked: 1',
      ],
      ['deleted', () => call('DELETE', `/users/${s.userId}`, { headers: rid('f'), token: admin.accessToken }), 204, 'user_deleted'],
    ];
    for (const [name, run, status, detail] of cases) {
      const res = await run();
      expect(res.status, name).toBe(status);
      expect((await entryOf(res.headers.get('x-request-id')!)).detail, name).toBe(detail);
    }
    // Whatever this file has written so far is in the catalogue, in its form.
    await app.t.services.audit.flush();
    const written = await app.database.db.selectDistinct({ detail: auditLogs.detail }).from(auditLogs);
    const details = written.flatMap((r) => (r.detail === null ? [] : [r.detail]));
    expect(details.length).toBeGreaterThan(5);
    expect(details.filter((d) => !isAuditDetail(d))).toEqual([]);
  });

  it('writes nothing for /healthz, /readyz and /metrics', async () => {
    const tag = `ops-${backend}-${Math.random().toString(36).slice(2)}`;
    for (const path of ['/healthz', '/readyz', '/metrics'])
      await call('GET', path, { headers: { 'x-request-id': `${tag}${path.replace('/', '-')}` } });
    const marker = await call('GET', '/posts', { headers: { 'x-request-id': `${tag}-marker` } });
    await entryOf(marker.headers.get('x-request-id')!);
    const rows = await app.database.db.select({ r: auditLogs.requestId }).from(auditLogs);
    expect(rows.filter((r) => r.r.startsWith(tag)).map((r) => r.r)).toEqual([`${tag}-marker`]);
  });

  it('records rate-limited requests', async () => {
    const limited = await createTestApp({ database: app.database, config: testConfig({ RATE_LIMIT_REQUESTS: '1' }), prepare: false });
    const c = client(limited);
    await c('GET', '/posts');
    const refused = await c('GET', '/posts');
    expect(refused.status).toBe(429);
    await limited.stop();
    expect(await entryOf(refused.headers.get('x-request-id')!)).toMatchObject({
      status: 429,
      action: 'posts.list',
      detail: 'rate_limited',
    });
  });

  it('stores no password, token or hash anywhere in the log', async () => {
    const secret = 'Very-Secret-Passphrase-99';
    const s = await registerAndLogin(call, { password: secret });
    const fresh = await call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
    await call('GET', `/posts?token=${s.accessToken}&password=${secret}&limit=5`, { token: s.accessToken });
    const named = ['pw', 'pwd', 'pass', 'passcode', 'jwt', 'session', 'auth', 'id_token', 'api_key', 'otp'];
    await call('GET', `/posts?${named.map((k, i) => `${k}=${secret}-${i}`).join('&')}&limit=5`, { token: s.accessToken });
    await call('POST', '/auth/login', { body: { email: s.email, password: `${secret}-wrong` } });
    await call('POST', '/auth/logout', { body: { refreshToken: fresh.body.refreshToken } });
    await app.t.services.audit.flush();
    const rows = JSON.stringify(await app.database.db.select().from(auditLogs));
    expect(rows).toContain('[redacted]');
    for (const needle of [
      secret,
      s.refreshToken,
      fresh.body.refreshToken,
      s.accessToken.split('.')[2]!,
      fresh.body.accessToken.split('.')[2]!,
      '$argon2',
    ]) {
      expect(rows).not.toContain(needle);
    }
  });

  it('filters by actor, action, status and time, and pages newest first', async () => {
    const s = await registerAndLogin(call);
    const since = new Date().toISOString();
    for (let i = 0; i < 7; i++) await call('GET', '/posts', { token: s.accessToken });
    await call('GET', '/users/me', { token: s.accessToken });
    await app.t.services.audit.flush();
    const q = (qs: string) => call('GET', `/admin/logs?${qs}`, { token: admin.accessToken });
    const mine = await q(`actorId=${s.userId}&action=posts.list&status=200&since=${encodeURIComponent(since)}&limit=3`);
    expect(mine.status).toBe(200);
    expect(mine.body.items).toHaveLength(3);
    const all = [...mine.body.items];
    let cursor = mine.body.nextCursor;
    while (cursor) {
      const page = await q(`actorId=${s.userId}&action=posts.list&limit=3&cursor=${encodeURIComponent(cursor)}`);
      all.push(...page.body.items);
      cursor = page.body.nextCursor;
    }
    expect(all).toHaveLength(7);
    expect(new Set(all.map((e) => e.id)).size).toBe(7);
    const times = all.map((e) => e.at);
    expect([...times].sort().reverse()).toEqual(times);
    expect(all.every((e) => e.actorId === s.userId && e.action === 'posts.list' && e.status === 200)).toBe(true);
    expect((await q(`actorId=${s.userId}&until=${encodeURIComponent('2000-01-01T00:00:00Z')}`)).body.items).toEqual([]);
    expect((await q('status=abc')).status).toBe(400);
    // Neither a UUID nor a client id.
    expect((await q('actorId=no%20such%20actor')).status).toBe(400);
    expect((await q('since=yesterday')).status).toBe(400);
  });

  it('reports statistics in the contract’s shape, kept across a restart', async () => {
    const s = await registerAndLogin(call);
    await call('POST', '/auth/login', { body: { email: s.email, password: 'wrong-password-9' } });
    await call('GET', '/users', { token: s.accessToken });
    await call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
    await call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } });
    const res = await call('GET', '/admin/stats', { token: admin.accessToken });
    expect(res.status).toBe(200);
    const st = res.body;
    expect(Object.keys(st).sort()).toEqual(['access', 'auth', 'posts', 'roles', 'sessions', 'since', 'users']);
    expect(st.users.total).toBeGreaterThan(1);
    expect(st.users.byRole.admin).toBe(1);
    expect(st.roles).toMatchObject({ total: expect.any(Number), custom: expect.any(Number) });
    expect(st.auth.loginSucceeded).toBeGreaterThan(0);
    expect(st.auth.loginFailed).toBeGreaterThan(0);
    expect(st.auth.refreshReused).toBeGreaterThan(0);
    expect(st.access.denied).toBeGreaterThan(0);
    expect(st.access.byPermission['users:read'].denied).toBeGreaterThan(0);
    expect(st.sessions.active).toBeGreaterThan(0);

    // A new instance over the same database (a restart) sees the same counters.
    await app.t.stop();
    const restarted = await createTestApp({ database: app.database, config, prepare: true });
    const after = await client(restarted)('GET', '/admin/stats', { token: admin.accessToken });
    expect(after.body.auth).toEqual(st.auth);
    expect(after.body.since).toBe(st.since);
    expect(after.body.access.byPermission['users:read']).toEqual(st.access.byPermission['users:read']);
    await restarted.stop();
  });

  it('adds up counters of two instances', async () => {
    const before = (await call('GET', '/admin/stats', { token: admin.accessToken })).body.auth.loginFailed;
    const second = await createTestApp({ database: app.database, config, prepare: false, keyRing: app.t.deps.keyRing });
    const c2 = client(second);
    const s = await registerAndLogin(call);
    for (const c of [call, c2, c2]) await c('POST', '/auth/login', { body: { email: s.email, password: 'nope-nope-nope' } });
    await second.stop();
    const after = (await call('GET', '/admin/stats', { token: admin.accessToken })).body.auth.loginFailed;
    expect(after - before).toBe(3);
  });

  it('prunes entries older than AUDIT_RETENTION_DAYS in small batches, keeping the rest', async () => {
    const old = new Date(Date.now() - 91 * 86_400_000);
    const tag = `old-${backend}-${Math.random().toString(36).slice(2)}`;
    await app.database.db.insert(auditLogs).values(
      Array.from({ length: 25 }, (_, i) => ({
        at: old,
        requestId: `${tag}-${i}`,
        ip: '127.0.0.1',
        method: 'GET',
        path: '/x',
        route: '/x',
        status: 200,
        action: 'posts.list',
      })),
    );
    await app.t.services.audit.flush();
    const before = (await app.database.db.select({ id: auditLogs.id }).from(auditLogs)).length;
    const removed = await pruneAuditLog(app.t.services, 10);
    expect(removed).toBe(25);
    expect((await app.database.db.select({ id: auditLogs.id }).from(auditLogs)).length).toBe(before - 25);
    expect(await pruneAuditLog(app.t.services, 10)).toBe(0);
  });

  it('loses no entry of answered requests when stopped right after them', async () => {
    const slow = await createTestApp({
      database: app.database,
      config,
      prepare: false,
      app: { audit: { flushMs: 60_000, batchSize: 10_000 } },
    });
    const c = client(slow);
    const tag = `stop-${backend}-${Math.random().toString(36).slice(2)}`;
    const res = await Promise.all(Array.from({ length: 60 }, (_, i) => c('GET', '/posts', { headers: { 'x-request-id': `${tag}-${i}` } })));
    expect(res.every((r) => r.status === 200)).toBe(true);
    await slow.stop();
    const rows = await app.database.db.select({ r: auditLogs.requestId }).from(auditLogs);
    expect(rows.filter((r) => r.r.startsWith(tag))).toHaveLength(60);
  });

  it('keeps recording after requests whose path holds NUL, other control characters or broken UTF-8', async () => {
    const tag = `ctl-${backend}-${Math.random().toString(36).slice(2, 8)}`;
    const hostile = ['/%00', '/posts/%00', '/users/%00/roles', '/%1b%5B31m%07', '/%ED%A0%80', '/posts?cursor=%00&limit=1'];
    for (const [i, path] of hostile.entries()) {
      const res = await call('GET', path, { headers: { 'x-request-id': `${tag}-${i}` } });
      expect(res.status, path).toBeLessThan(500);
    }
    const marker = await call('GET', '/posts', { headers: { 'x-request-id': `${tag}-marker` } });
    expect(await entryOf(marker.headers.get('x-request-id')!)).toMatchObject({ status: 200 });
    expect(await entryOf(`${tag}-0`)).toMatchObject({ path: '/\\u0000', status: 404 });
    for (let i = 1; i < hostile.length; i++) await entryOf(`${tag}-${i}`);
  });

  it('writes the rest of a batch when the database refuses one row of it, and logs that without the row', async () => {
    // A constraint the test adds makes the database refuse one path for real (SQLSTATE 23514).
    await app.database.db.execute(sql.raw(`ALTER TABLE audit_logs ADD CONSTRAINT refuse_test_path CHECK (path <> '/refused-secret-path')`));
    try {
      const tag = `refused-${backend}-${Math.random().toString(36).slice(2, 8)}`;
      const paths = ['/posts', '/refused-secret-path', '/posts', '/nowhere'];
      for (const [i, path] of paths.entries()) await call('GET', path, { headers: { 'x-request-id': `${tag}-${i}` } });
      for (const i of [0, 2, 3]) await entryOf(`${tag}-${i}`);
      await app.t.services.audit.flush();
      const rows = await app.database.db.select({ r: auditLogs.requestId }).from(auditLogs);
      expect(
        rows
          .filter((r) => r.r.startsWith(tag))
          .map((r) => r.r)
          .sort(),
      ).toEqual([`${tag}-0`, `${tag}-2`, `${tag}-3`]);
      const warning = app.t.logs.lines.find((l) => l.includes('refused by the database'));
      expect(warning).toBeDefined();
      expect(JSON.parse(warning!)).toMatchObject({ dropped: 1, sqlstate: { '23514': 1 } });
      expect(app.t.logs.text.split('\n').filter((l) => l.includes('refused-secret-path') && !l.includes('"msg":"request"'))).toEqual([]);
    } finally {
      await app.database.db.execute(sql.raw('ALTER TABLE audit_logs DROP CONSTRAINT refuse_test_path'));
    }
  });
});

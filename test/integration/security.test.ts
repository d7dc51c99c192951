// Security checks not covered elsewhere (see SECURITY.md for the whole list).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { MemoryStore } from '../../src/store/memory.js';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { client, registerAndLogin, type Call } from '../helpers/http.js';
import { openDatabase } from '../helpers/services.js';

describe('security checks', () => {
  let t: TestApp;
  let call: Call;
  let dispose: () => Promise<void>;
  let database: Awaited<ReturnType<typeof openDatabase>>['database'];

  beforeAll(async () => {
    const db = await openDatabase('pglite');
    dispose = db.dispose;
    database = db.database;
    t = await createTestApp({ database, config: testConfig({ CORS_ORIGINS: 'https://app.example.com' }) });
    call = client(t);
  });
  afterAll(async () => {
    await t.stop();
    await dispose();
  });

  it('sends security headers on every response, errors included', async () => {
    const s = await registerAndLogin(call);
    for (const [method, path, token] of [['GET', '/posts'], ['GET', '/nope'], ['GET', '/users/me', s.accessToken], ['GET', '/users/me'], ['GET', '/healthz']] as const) {
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

  it('allows cross-origin browser access only to the configured origins', async () => {
    const allowed = await call('OPTIONS', '/posts', { headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    const simple = await call('GET', '/posts', { headers: { origin: 'https://app.example.com' } });
    expect(simple.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const denied = await call('GET', '/posts', { headers: { origin: 'https://evil.example.net' } });
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    const preflightDenied = await call('OPTIONS', '/posts', { headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'DELETE' } });
    expect(preflightDenied.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers an unexpected failure with a bare 500 internal_error, logging it with the request id', async () => {
    // A store that fails in a way no code path expects.
    const broken: Store = Object.assign(new MemoryStore(), {
      batch: async () => {
        throw new Error('secret internal detail: connection string postgres://u:pw@host');
      },
    });
    const b = await createTestApp({ database, store: broken, prepare: false });
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
    const rows = await database.db.select().from(refreshTokens);
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

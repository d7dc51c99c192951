// Races, on both backends: exactly one winner where the contract says so.
import { describe, expect, it } from 'vitest';
import { loginAdmin, PASSWORD, registerAndLogin, uniqueEmail, userWithRoles } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

describe.each(BACKENDS)('concurrency on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;

  it('50 parallel refreshes of one token: exactly one success, and the session is revoked', async () => {
    const s = await registerAndLogin(call);
    const results = await Promise.all(Array.from({ length: 50 }, () => call('POST', '/auth/refresh', { body: { refreshToken: s.refreshToken } })));
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(results.filter((r) => r.status === 401).every((r) => r.body.code === 'refresh_token_reused')).toBe(true);
    expect(results.filter((r) => r.status >= 500)).toEqual([]);
    // The reuse revoked the session: even the winner's new tokens are dead.
    expect((await call('GET', '/users/me', { token: ok[0]!.body.accessToken })).status).toBe(401);
    expect((await call('POST', '/auth/refresh', { body: { refreshToken: ok[0]!.body.refreshToken } })).status).toBe(401);
  });

  it('20 parallel registrations of one email: exactly one 201', async () => {
    const email = uniqueEmail('race');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call('POST', '/auth/register', { body: { email, password: PASSWORD, name: `R${i}` } })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.code === 'email_taken')).toBe(true);
    expect(results.filter((r) => r.status === 409)).toHaveLength(19);
  });

  it('two admins demoting each other: one admin remains', async () => {
    const admin = await loginAdmin(call);
    const second = await userWithRoles(call, admin, ['admin']);
    const results = await Promise.all([
      call('PUT', `/users/${second.userId}/roles`, { token: admin.accessToken, body: { roles: ['user'] } }),
      call('PUT', `/users/${admin.userId}/roles`, { token: second.accessToken, body: { roles: ['user'] } }),
    ]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const survivor = results[0]!.status === 200 ? admin : second;
    const roles = await call('GET', '/roles', { token: survivor.accessToken });
    expect(roles.body.items.find((r: { name: string }) => r.name === 'admin').userCount).toBe(1);
    if (survivor === second) {
      await call('PUT', `/users/${admin.userId}/roles`, { token: second.accessToken, body: { roles: ['admin'] } });
    }
  });

  it('parallel deletions of one post: one 204, the rest 404', async () => {
    const s = await registerAndLogin(call);
    const id = (await call('POST', '/posts', { token: s.accessToken, body: { title: 't', body: 'b' } })).body.id;
    const results = await Promise.all(Array.from({ length: 20 }, () => call('DELETE', `/posts/${id}`, { token: s.accessToken })));
    expect(results.filter((r) => r.status === 204)).toHaveLength(1);
    expect(results.filter((r) => r.status === 404)).toHaveLength(19);
  });
});

// Client lookups are served from each instance's memory while the clients
// version is unchanged: two instances over one PostgreSQL and one Redis show
// that a change made on one is seen by the other on its very next request.
import { describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { client, loginAdmin } from '../helpers/http.js';
import { useTwoInstances } from '../helpers/two-instances.js';

const REDIRECT = 'https://rp.example.test/callback';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('cached OAuth clients on two instances', () => {
  const two = useTwoInstances();

  /** Authenticates as the client at the token endpoint: 400 invalid_grant when it did, 401 invalid_client when not. */
  const authenticates = async (app: TestApp, id: string, secret: string): Promise<number> => {
    const res = await app.request('/oauth2/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'not-a-token' }).toString(),
    });
    return res.status;
  };

  const register = async (id: string) => {
    const admin = await loginAdmin(client(two.a));
    const res = await client(two.a)('POST', '/admin/clients', {
      token: admin.accessToken,
      body: { id, name: id, type: 'confidential', redirectUris: [REDIRECT], scopes: ['openid'] },
    });
    expect(res.status).toBe(201);
    return { admin, secret: res.body.clientSecret as string };
  };

  it('refuses the old secret on the other instance at the very next request after a rotation (no overlap)', async () => {
    const { admin, secret } = await register('cached-rotated');
    // Both instances have the client in memory.
    for (let i = 0; i < 3; i++) {
      expect(await authenticates(two.a, 'cached-rotated', secret)).toBe(400);
      expect(await authenticates(two.b, 'cached-rotated', secret)).toBe(400);
    }
    const rotated = await client(two.a)('POST', '/admin/clients/cached-rotated/secret', { token: admin.accessToken });
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.clientSecret as string;
    expect(await authenticates(two.b, 'cached-rotated', secret)).toBe(401);
    expect(await authenticates(two.b, 'cached-rotated', fresh)).toBe(400);
    expect(await authenticates(two.a, 'cached-rotated', secret)).toBe(401);
  });

  it('refuses a client deleted on the other instance at the very next request', async () => {
    const { admin, secret } = await register('cached-deleted');
    expect(await authenticates(two.b, 'cached-deleted', secret)).toBe(400);
    expect(await authenticates(two.b, 'cached-deleted', secret)).toBe(400);
    expect((await client(two.a)('DELETE', '/admin/clients/cached-deleted', { token: admin.accessToken })).status).toBe(204);
    expect(await authenticates(two.b, 'cached-deleted', secret)).toBe(401);
  });

  it('serves a changed client (its redirect URIs) on the other instance once the version has travelled', async () => {
    const { admin } = await register('cached-changed');
    const authorize = (redirect: string) =>
      two.b.request(
        `/oauth2/authorize?${new URLSearchParams({ client_id: 'cached-changed', redirect_uri: redirect, response_type: 'code', scope: 'openid' })}`,
      );
    const other = 'https://rp.example.test/other';
    // An unregistered redirect URI is an error page, never a redirect.
    expect((await authorize(other)).status).toBe(400);
    const {
      id: _,
      source: __,
      createdAt: ___,
      updatedAt: ____,
      ...fields
    } = (await client(two.a)('GET', '/admin/clients/cached-changed', { token: admin.accessToken })).body;
    const put = await client(two.a)('PUT', '/admin/clients/cached-changed', {
      token: admin.accessToken,
      body: { ...fields, redirectUris: [other] },
    });
    expect(put.status).toBe(200);
    let status = 0;
    for (let i = 0; i < 50 && status !== 302; i++) {
      status = (await authorize(other)).status;
      if (status !== 302) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe(302);
  });
});

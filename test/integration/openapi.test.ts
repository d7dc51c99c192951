// The OpenAPI document describes every route, with its permission and its
// problem responses, and is valid OpenAPI 3.1.
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeAll, describe, expect, it } from 'vitest';
import { metaOf } from '../../src/middleware/route-meta.js';
import { ALL_PERMISSIONS } from '../../src/security/permissions.js';
import { documentedProblems } from '../helpers/documented.js';
import { loginAdmin, PASSWORD, registerAndLogin, userWithRoles } from '../helpers/http.js';
import { useTestApp } from '../helpers/use-app.js';

describe('OpenAPI document', () => {
  const app = useTestApp('pglite');
  let doc: any;

  beforeAll(async () => {
    const res = await app.t.request('/openapi.json');
    expect(res.status).toBe(200);
    doc = await res.json();
  });

  const toOpenApiPath = (p: string) => (p.replace(/\/$/, '') || '/').replace(/:([A-Za-z_]+)/g, '{$1}');

  it('lists every route of the app, with the permission it needs', () => {
    const routes = app.t.app.routes.filter((r) => r.method !== 'ALL');
    expect(routes.length).toBeGreaterThan(20);
    const perms = new Set<string>();
    for (const r of routes) {
      const op = doc.paths[toOpenApiPath(r.path)]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.path} is missing from the document`).toBeDefined();
      const meta = metaOf(routes.find((x) => x.path === r.path && x.method === r.method && metaOf(x.handler))?.handler);
      if (meta) {
        expect(op.operationId).toBe(meta.action);
        expect(op['x-permission']).toEqual(meta.permission ? [meta.permission, ...(meta.also ?? [])] : []);
        for (const p of op['x-permission'] ?? []) perms.add(p);
      }
    }
    expect([...perms].sort()).toEqual([...ALL_PERMISSIONS]);
  });

  it('describes errors as problem JSON and bodies from the zod schemas', () => {
    const register = doc.paths['/auth/register'].post;
    expect(register.requestBody.content['application/json'].schema).toMatchObject({
      type: 'object',
      required: ['email', 'password', 'name'],
      additionalProperties: false,
    });
    for (const status of ['400', '409', '413', '415', '429']) {
      expect(register.responses[status].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
    }
    expect(register.responses['409'].description).toContain('email_taken');
    expect(doc.components.schemas.Problem.required).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'code', 'requestId']),
    );
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/users/me'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/posts'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['cursor', 'limit']);
  });

  it('documents every problem a route really answers under the status it really sends', async () => {
    const { call } = app;
    const documented = documentedProblems(app.t.app, doc);
    const admin = await loginAdmin(call);
    const s = await registerAndLogin(call);
    const guestOnly = await userWithRoles(call, admin, ['guest']);
    const post = (await call('POST', '/posts', { token: admin.accessToken, body: { title: 't', body: 'b' } })).body.id;
    const helper = await call('POST', '/roles', {
      token: admin.accessToken,
      body: { name: 'doc-helper', permissions: ['users:roles:assign'] },
    });
    expect(helper.status).toBe(201);
    const delegate = await userWithRoles(call, admin, ['user', 'doc-helper']);
    const cases: [string, string, { body?: unknown; token?: string; raw?: string; headers?: Record<string, string> }][] = [
      ['POST', '/auth/register', { body: { email: s.email, password: PASSWORD, name: 'Again' } }],
      ['POST', '/auth/register', { raw: '{', headers: { 'content-type': 'application/json' } }],
      ['POST', '/auth/login', { body: { email: s.email, password: 'wrong-password-1' } }],
      ['POST', '/auth/refresh', { body: { refreshToken: 'never-issued' } }],
      ['POST', '/auth/refresh', { body: { refreshToken: guestOnly.refreshToken } }],
      ['GET', '/users/me', {}],
      ['GET', '/users/me', { token: 'not.a.token' }],
      ['PUT', '/users/me', { token: s.accessToken, body: { password: 'a-new-long-passphrase-7' } }],
      ['PUT', '/users/me', { token: s.accessToken, body: { password: 'a-new-long-passphrase-7', currentPassword: 'wrong-current-pw' } }],
      ['PUT', '/users/me', { token: s.accessToken, body: { email: admin.email, currentPassword: PASSWORD } }],
      ['GET', '/users', { token: s.accessToken }],
      ['GET', '/users/00000000-0000-4000-8000-000000000000', { token: admin.accessToken }],
      ['PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles: ['no-such-role'] } }],
      ['PUT', `/users/${admin.userId}/roles`, { token: admin.accessToken, body: { roles: ['user'] } }],
      ['PUT', `/users/${s.userId}/roles`, { token: delegate.accessToken, body: { roles: ['admin'] } }],
      ['POST', '/roles', { token: admin.accessToken, body: { name: 'doc-helper' } }],
      ['POST', '/roles', { token: admin.accessToken, body: { name: 'doc-other', permissions: ['no:such'] } }],
      ['PUT', '/roles/admin/permissions', { token: admin.accessToken, body: { permissions: [] } }],
      ['PUT', '/roles/nope-role/permissions', { token: admin.accessToken, body: { permissions: [] } }],
      ['DELETE', '/roles/user', { token: admin.accessToken }],
      ['GET', '/posts/00000000-0000-4000-8000-000000000000', {}],
      ['DELETE', `/posts/${post}`, { token: s.accessToken }],
      ['POST', '/posts', { token: s.accessToken, raw: 'x', headers: { 'content-type': 'text/plain' } }],
      ['GET', '/admin/logs?status=abc', { token: admin.accessToken }],
      ['GET', '/admin/stats', { token: s.accessToken }],
    ];
    const seen = new Set<string>();
    for (const [method, path, opts] of cases) {
      const res = await call(method, path, opts);
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      const op = documented(method, path)!;
      expect(
        op.documents(res.status, res.body.code),
        `${op.route} answered ${res.status} ${res.body.code}, not in its documented responses`,
      ).toBe(true);
      seen.add(`${res.status} ${res.body.code}`);
    }
    // The case that drifted: PUT /users/me answers a wrong currentPassword with 403, and says so.
    expect(seen).toContain('403 invalid_credentials');
    expect(doc.paths['/users/me'].put.responses['401']?.description ?? '').not.toContain('invalid_credentials');
  });

  it('describes every tag an operation uses, and no other', () => {
    const used = new Set<string>();
    for (const ops of Object.values(doc.paths) as Record<string, { tags?: string[] }>[]) {
      for (const op of Object.values(ops)) for (const t of op.tags ?? []) used.add(t);
    }
    const listed = (doc.tags as { name: string; description?: string }[]).map((t) => t.name);
    expect(listed.sort()).toEqual([...used].sort());
    expect((doc.tags as { description?: string }[]).filter((t) => !t.description)).toEqual([]);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('serves interactive docs at /docs', async () => {
    const res = await app.t.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('/openapi.json');
    expect(html.toLowerCase()).toContain('swagger');
  });
});

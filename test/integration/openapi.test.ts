// The OpenAPI document describes every route, with its permission and its
// problem responses, and is valid OpenAPI 3.1.
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeAll, describe, expect, it } from 'vitest';
import { metaOf } from '../../src/middleware/route-meta.js';
import { ALL_PERMISSIONS } from '../../src/security/permissions.js';
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
        (op['x-permission'] ?? []).forEach((p: string) => perms.add(p));
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
    expect(doc.components.schemas.Problem.required).toEqual(expect.arrayContaining(['type', 'title', 'status', 'detail', 'code', 'requestId']));
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/users/me'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/posts'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['cursor', 'limit']);
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

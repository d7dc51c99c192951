// HTTP conventions of API.md, on both database backends.
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

describe.each(BACKENDS)('HTTP conventions on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;

  const expectProblem = (res: { status: number; body: any; headers: Headers }, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
    expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
  };

  it('answers malformed JSON with 400 invalid_json', async () => {
    expectProblem(await call('POST', '/auth/login', { raw: '{"email":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  });

  it('answers a non-JSON body with 415 unsupported_media_type', async () => {
    expectProblem(await call('POST', '/auth/login', { raw: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
  });

  it('answers a body over 64 KiB with 413 payload_too_large', async () => {
    const big = JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(70 * 1024) });
    expectProblem(await call('POST', '/auth/login', { raw: big, headers: { 'content-type': 'application/json', 'content-length': String(big.length) } }), 413, 'payload_too_large');
  });

  it('rejects unknown fields with 400 validation_failed listing the field', async () => {
    const res = await call('POST', '/auth/register', { body: { email: 'x@example.test', password: 'a-long-passphrase-9', name: 'X', roles: ['admin'] } });
    expectProblem(res, 400, 'validation_failed');
    expect(res.body.errors).toContainEqual({ path: 'roles', message: expect.any(String) });
  });

  it('lists each field problem of a bad body', async () => {
    const res = await call('POST', '/auth/register', { body: { email: 'not-an-email', password: 'short', name: '' } });
    expectProblem(res, 400, 'validation_failed');
    expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['email', 'name', 'password']);
  });

  it('answers an unknown route with 404 not_found', async () => {
    expectProblem(await call('GET', '/nope'), 404, 'not_found');
  });

  it('answers a known path with a wrong method with 405 and Allow', async () => {
    const res = await call('PATCH', '/posts');
    expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('GET, HEAD, POST');
  });

  it('echoes a well-formed X-Request-Id and replaces a malformed one', async () => {
    const ok = await call('GET', '/healthz', { headers: { 'x-request-id': 'abc.DEF-123_x' } });
    expect(ok.headers.get('x-request-id')).toBe('abc.DEF-123_x');
    const bad = await call('GET', '/posts', { headers: { 'x-request-id': 'no spaces <allowed>' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a malformed id in a path with 400 and an unknown one with 404', async () => {
    expectProblem(await call('GET', '/posts/not-a-uuid'), 400, 'validation_failed');
    expectProblem(await call('GET', '/posts/00000000-0000-4000-8000-000000000000'), 404, 'not_found');
  });

  it('reports health and readiness', async () => {
    expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: 'up' });
  });

  it('serves Prometheus metrics with request counts by route and status', async () => {
    await call('GET', '/posts');
    const res = await call('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/http_requests_total\{route="\/posts",method="GET",status="200"\} \d+/);
    expect(res.text).toContain('http_request_duration_seconds_bucket');
    expect(res.text).toContain('db_pool_max');
  });

  it('sets nosniff on every response', async () => {
    for (const path of ['/healthz', '/posts', '/nope']) {
      expect((await call('GET', path)).headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

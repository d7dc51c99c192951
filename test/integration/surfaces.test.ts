// The surfaces side by side (docs/architecture.md): each path is answered by
// one surface's own chain. The probe of the review that asked for them: a form
// body and a Basic header reach the OAuth surface, the public keys ignore an
// Authorization header, and the JSON API answers exactly as it always has.
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { requestId } from '../../src/middleware/request-id.js';
import { apiSurface } from '../../src/surfaces/api/index.js';
import { type OAuthEnv, oauthSurface } from '../../src/surfaces/oauth/index.js';
import { client } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const ID = { 'x-request-id': 'surfaces-test' };

/** A problem's exact text, as the API has always written it. */
const problemText = (code: string, title: string, status: number, detail: string) =>
  JSON.stringify({ type: `urn:auth-system:problem:${code}`, title, status, detail, code, requestId: 'surfaces-test' });

describe.each(BACKENDS)('surfaces on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;

  describe('the JSON API keeps its chain, byte for byte', () => {
    it('answers a form body with 415 problem JSON, also at POST /auth/refresh', async () => {
      const res = await call('POST', '/auth/refresh', { raw: 'refresh_token=x&grant_type=refresh_token', headers: { ...FORM, ...ID } });
      expect(res.status).toBe(415);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.text).toBe(
        problemText('unsupported_media_type', 'The body must be application/json', 415, 'Send the body as application/json'),
      );
    });

    it('judges a bad Bearer token on an API route: 401 invalid_token', async () => {
      const res = await call('GET', '/users/me', { token: 'not.a.token', headers: ID });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect(res.text).toBe(problemText('invalid_token', 'The access token is not valid', 401, 'The access token is invalid or expired'));
    });

    it('judges a Basic header on an API route as a bad token too', async () => {
      const res = await call('GET', '/posts', { headers: { ...ID, authorization: basic('a', 'b') } });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_token');
    });

    it('answers an unknown path with 404 problem JSON, and a wrong method with 405 and Allow', async () => {
      const unknown = await call('GET', '/nope', { headers: ID });
      expect(unknown.status).toBe(404);
      expect(unknown.text).toBe(problemText('not_found', 'Not found', 404, 'No route for GET /nope'));
      const wrong = await call('DELETE', '/auth/refresh', { headers: ID });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('POST');
      expect(wrong.text).toBe(problemText('method_not_allowed', 'Method not allowed', 405, 'Use POST'));
      // A page's path is known to the whole app's 405 table.
      const page = await call('POST', '/login', { headers: ID });
      expect(page.status).toBe(405);
      expect(page.headers.get('allow')).toBe('GET, HEAD');
      expect(page.headers.get('content-type')).toBe('application/problem+json');
    });

    it('still sends its rate-limit headers', async () => {
      const res = await call('GET', '/posts');
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).not.toBeNull();
    });
  });

  describe('the OAuth surface', () => {
    it('serves the public keys whatever Authorization header comes along', async () => {
      const plain = await app.t.request('/.well-known/jwks.json');
      const body = await plain.text();
      expect(plain.status).toBe(200);
      for (const authorization of [basic('some-client', 'its secret'), 'Bearer not.a.token', 'Basic !!!']) {
        const res = await app.t.request('/.well-known/jwks.json', { headers: { authorization } });
        expect(res.status, authorization).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/json');
        expect(res.headers.get('cache-control')).toBe('public, max-age=300');
        expect(await res.text()).toBe(body);
      }
      expect(JSON.parse(body).keys.length).toBeGreaterThan(0);
    });

    it('answers its unknown paths and methods as OAuth errors, never cached, before any API middleware', async () => {
      // A request as an OAuth client sends it, to no endpoint: the API would have said 415 (form) or 401 (Basic).
      const res = await call('POST', '/oauth2/no-such-endpoint', {
        raw: 'grant_type=client_credentials',
        headers: { ...FORM, ...ID, authorization: basic('some-client', 'its secret') },
      });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-request-id')).toBe('surfaces-test');
      expect(res.headers.get('ratelimit-limit')).toBeNull();
      expect(res.body).toEqual({ error: 'not_found', error_description: 'No endpoint for POST /oauth2/no-such-endpoint' });

      const wrong = await call('POST', '/.well-known/jwks.json', { raw: '{}', headers: { 'content-type': 'application/json' } });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('GET, HEAD');
      expect(wrong.body).toEqual({ error: 'method_not_allowed', error_description: 'Use GET, HEAD' });
      expect((await call('GET', '/.well-known/no-such-document')).body.error).toBe('not_found');
    });

    it('counts its requests in the metrics, by route', async () => {
      await app.t.request('/.well-known/jwks.json');
      const metrics = await (await app.t.request('/metrics')).text();
      expect(metrics).toMatch(/http_requests_total\{[^}]*route="\/\.well-known\/jwks\.json"[^}]*status="200"/);
    });
  });

  describe('the pages surface', () => {
    it('serves the pages, and answers its errors as an HTML page under the pages policy', async () => {
      const page = await app.t.request('/login');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const missing = await app.t.request('/assets/nope.js', { headers: ID });
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/^text\/html/);
      expect(missing.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(missing.headers.get('x-request-id')).toBe('surfaces-test');
      const html = await missing.text();
      expect(html).toContain('<h1>Not found</h1>');
      expect(html).toContain('surfaces-test');
      expect(html).not.toContain('nope.js');
    });
  });

  describe("the OAuth surface's chain, with an endpoint of the test's own", () => {
    // The provider's endpoints do not exist yet: the test hands the surface one
    // that shows what reached it, and mounts the surfaces as app.ts does.
    const composed = () => {
      const endpoints = new Hono<OAuthEnv>()
        .post('/echo', (c) => c.json({ form: { ...c.var.form }, client: c.var.clientCredentials }, 200))
        .get('/boom', () => {
          throw new Error('secret detail of a bug');
        });
      const svc = app.t.services;
      const root = new Hono().use(requestId()).route('/', oauthSurface(svc, endpoints)).route('/', apiSurface(svc));
      return client({ request: root.request });
    };

    it('takes a form body and a Basic header: unknown and empty parameters are no error', async () => {
      const res = await composed()('POST', '/oauth2/echo', {
        raw: 'grant_type=client_credentials&scope=a+b&unknown_param=1&empty=',
        headers: { ...FORM, authorization: basic('my%3Aclient', 'p%40ss+word') },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        form: { grant_type: 'client_credentials', scope: 'a b', unknown_param: '1' },
        client: { method: 'client_secret_basic', clientId: 'my:client', clientSecret: 'p@ss word' },
      });
    });

    it('reads client credentials from the form too, and none at all', async () => {
      const call2 = composed();
      const post = await call2('POST', '/oauth2/echo', { raw: 'client_id=c1&client_secret=s1', headers: FORM });
      expect(post.body.client).toEqual({ method: 'client_secret_post', clientId: 'c1', clientSecret: 's1' });
      const pub = await call2('POST', '/oauth2/echo', { raw: 'client_id=c1', headers: FORM });
      expect(pub.body.client).toEqual({ method: 'none', clientId: 'c1' });
      const bare = await call2('POST', '/oauth2/echo', {});
      expect(bare.body).toEqual({ form: {}, client: null });
      // A Bearer token is for the endpoint (userinfo) to read, not a client credential.
      const bearer = await call2('POST', '/oauth2/echo', { raw: 'a=1', headers: { ...FORM, authorization: 'Bearer xyz' } });
      expect(bearer.body.client).toBeNull();
    });

    it('refuses what the RFCs refuse, as OAuth errors', async () => {
      const call2 = composed();
      const cases: [string, Parameters<typeof call2>[2], number, string][] = [
        ['a JSON body', { body: { grant_type: 'x' } }, 400, 'invalid_request'],
        ['a repeated parameter', { raw: 'scope=a&scope=b', headers: FORM }, 400, 'invalid_request'],
        ['malformed Basic credentials', { raw: 'a=1', headers: { ...FORM, authorization: 'Basic bm9jb2xvbg==' } }, 401, 'invalid_client'],
        [
          'two client authentication methods',
          { raw: 'client_secret=s', headers: { ...FORM, authorization: basic('c', 's') } },
          400,
          'invalid_request',
        ],
        ['a body over the limit', { raw: `a=${'x'.repeat(70_000)}`, headers: FORM }, 413, 'invalid_request'],
      ];
      for (const [what, opts, status, error] of cases) {
        const res = await call2('POST', '/oauth2/echo', opts);
        expect(res.status, what).toBe(status);
        expect(res.body.error, what).toBe(error);
        expect(typeof res.body.error_description, what).toBe('string');
        expect(res.headers.get('cache-control'), what).toBe('no-store');
        if (error === 'invalid_client') expect(res.headers.get('www-authenticate')).toBe('Basic realm="oauth2"');
      }
    });

    it('answers an unexpected error with 500 server_error, without its message', async () => {
      const res = await composed()('GET', '/oauth2/boom');
      expect(res.status).toBe(500);
      expect(res.body.error).toBe('server_error');
      expect(res.text).not.toContain('secret detail');
    });
  });
});

// Property-based fuzzing of every endpoint: whatever arrives (wrong types,
// nulls, deep nesting, huge strings, invalid UTF-8, prototype keys, odd headers,
// malformed JWTs, forwarded addresses that are not addresses), the answer is a documented problem (or a success), never a
// 5xx and never a hang. FUZZ_RUNS raises the case count (`npm run fuzz`).
import { isIP } from 'node:net';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/lib/problem.js';
import { metaOf } from '../../src/middleware/route-meta.js';
import { documentedProblems } from '../helpers/documented.js';
import { loginAdmin, PASSWORD, registerAndLogin, type Session } from '../helpers/http.js';
import { browserCookieFor, idTokenFor, pkce, type RegisteredClient, registerClient } from '../helpers/oauth.js';
import { type CraftedIssuer, startCraftedIssuer } from '../helpers/upstream.js';
import { useTestApp } from '../helpers/use-app.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2500);

describe('fuzzing every endpoint', () => {
  const app = useTestApp('pglite', {
    overrides: { RATE_LIMIT_REQUESTS: '1000000', LOGIN_MAX_FAILURES: '10000', LOGIN_IP_MAX_FAILURES: '1000000' },
  });
  let user: Session;
  let admin: Session;
  let routes: { method: string; path: string }[];
  let documented: ReturnType<typeof documentedProblems>;

  beforeAll(async () => {
    documented = documentedProblems(app.t.app, await (await app.t.request('/openapi.json')).json());
    const { call } = app;
    user = await registerAndLogin(call);
    admin = await loginAdmin(call);
    const seen = new Set<string>();
    routes = app.t.app.routes
      .filter((r) => r.method !== 'ALL' && metaOf(r.handler))
      .map((r) => ({ method: r.method, path: r.path.replace(/\/$/, '') || '/' }))
      .filter((r) => !seen.has(`${r.method} ${r.path}`) && seen.add(`${r.method} ${r.path}`));
  });

  const uuid = fc.uuid();
  // Text the database refuses or that breaks UTF-8: NUL, other controls, unpaired surrogates.
  const hostileText = fc.string({
    unit: fc.oneof(
      fc.constantFrom('\u0000', '\u0001', '\u001b', '\u007f', '\ud800', '\udfff', '\n', '\t'),
      fc.constantFrom('a', 'Z', '@', '.', '-', ' '),
    ),
    maxLength: 30,
  });
  const text = (maxLength: number) => fc.oneof(fc.string({ maxLength }), hostileText);
  // Times at and past what timestamptz and toISOString() agree on; cursors that decode to them.
  const extremeTime = fc.oneof(
    fc.constantFrom(
      '0000-01-01T00:00:00Z',
      '0001-01-01T00:00:00+05:00',
      '9999-12-31T23:59:59-05:00',
      '+275760-09-13T00:00:00Z',
      '-000001-01-01T00:00:00Z',
      '1970-01-01T00:00:00Z',
    ),
    fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  );
  const craftedCursor = fc
    .tuple(
      fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 16n }), fc.constantFrom(253402300800000n, 999999999999999n)),
      fc.oneof(fc.uuid(), hostileText),
    )
    .map(([ms, id]) => Buffer.from(`${ms}.${id}`).toString('base64url'));
  const segment = fc.oneof(
    uuid,
    fc.string({ maxLength: 40 }),
    hostileText,
    fc.constantFrom('me', 'admin', 'guest', '..', '%00', '%E0%A4%A', '%ED%A0%80', 'null', '__proto__', 'a'.repeat(300)),
  );
  const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'roles', 'toString', '');
  const leaf = fc.oneof(
    fc.string({ maxLength: 50 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.string({ minLength: 5000, maxLength: 20000 }),
  );
  const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 5 }),
    object: fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), hostileKey), tie('value'), { maxKeys: 6 }),
  })).value;
  const deep = fc.integer({ min: 50, max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n));
  // Deep nesting where a schema once let anything through (a passkey's extension
  // outputs, an extra member of its response) and in plain fields: spliced as text.
  const deepInside = fc
    .tuple(
      fc.integer({ min: 30, max: 20_000 }),
      fc.constantFrom(
        '{"response":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AA","authenticatorData":"AA","signature":"AA"},"clientExtensionResults":{"largeBlob":DEEP}}}',
        '{"name":"n","response":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AA","attestationObject":"AA","publicKey":DEEP},"clientExtensionResults":{}}}',
        '{"mfaToken":"x","passkey":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AA","authenticatorData":"AA","signature":"AA","x":DEEP}}}',
        '{"email":"a@b.c","password":DEEP,"name":{"a":DEEP}}',
      ),
      fc.constantFrom('[', '{"a":'),
    )
    .map(([n, body, open]) => body.replaceAll('DEEP', `${open.repeat(n)}0${(open === '[' ? ']' : '}').repeat(n)}`));
  const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const clientData = fc.oneof(
    fc.record({
      type: fc.constantFrom('webauthn.create', 'webauthn.get', 'x'),
      challenge: fc.oneof(fc.base64String({ minLength: 20, maxLength: 60 }), hostileText, fc.integer()),
      origin: fc.oneof(fc.constant('http://localhost:3000'), hostileText),
    }),
    json,
  );
  const credential = fc.record(
    {
      id: fc.oneof(
        fc.base64String({ maxLength: 60 }).map((s) => s.replace(/[+/=]/g, 'A')),
        hostileText,
      ),
      rawId: fc.base64String({ maxLength: 60 }).map((s) => s.replace(/[+/=]/g, 'A')),
      type: fc.constantFrom('public-key', 'x'),
      response: fc.record(
        {
          clientDataJSON: fc.oneof(clientData.map(b64url), fc.string({ maxLength: 80 })),
          attestationObject: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64url')),
          authenticatorData: fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b).toString('base64url')),
          signature: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('base64url')),
          userHandle: fc.oneof(fc.base64String({ maxLength: 30 }), fc.constant(null)),
        },
        { requiredKeys: [] },
      ),
      clientExtensionResults: fc.oneof(fc.constant({}), json),
    },
    { requiredKeys: [] },
  );
  const plausibleBody = fc.record(
    {
      email: fc.oneof(
        fc.emailAddress(),
        fc.string(),
        hostileText.map((t) => `${t}@example.test`),
        fc.constant(null),
      ),
      password: fc.oneof(text(200), fc.integer()),
      name: fc.oneof(text(120), fc.constant([])),
      title: text(250),
      body: text(300),
      description: text(100),
      roles: fc.oneof(fc.array(text(20)), fc.string()),
      permissions: fc.array(text(30)),
      refreshToken: fc.oneof(fc.string({ maxLength: 600 }), fc.constant(null)),
      currentPassword: fc.string({ maxLength: 50 }),
      token: fc.oneof(fc.string({ maxLength: 600 }), fc.base64String({ minLength: 40, maxLength: 48 }), hostileText, fc.constant(null)),
      code: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), hostileText),
      mfaToken: fc.oneof(fc.string({ maxLength: 300 }), fc.base64String({ minLength: 40, maxLength: 48 }), fc.constant(null)),
      // WebAuthn credential JSON whose parts decode to garbage, hostile text or near-valid client data.
      response: credential,
      passkey: credential,
    },
    { requiredKeys: [] },
  );
  const rawBody = fc.oneof(
    json.map((v) => JSON.stringify(v)),
    plausibleBody.map((v) => JSON.stringify(v)),
    hostileKey.map((k) => `{"${k}":{"admin":true},"email":"a@b.c"}`),
    deep,
    deepInside,
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const authorization = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    { arbitrary: fc.constant('user'), weight: 3 },
    { arbitrary: fc.constant('admin'), weight: 4 },
    fc.string({ maxLength: 100 }).map((s) => `Bearer ${s}`),
    fc.tuple(json, json, fc.string({ maxLength: 40 })).map(([h, p, s]) => `Bearer ${b64(h)}.${b64(p)}.${s}`),
    fc.constantFrom('Bearer', 'Basic dXNlcjpwYXNz', 'bearer  a.b.c', `Bearer ${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`),
  );
  const contentType = fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/merge-patch+json',
    '',
    'application/json; boundary=x',
  );
  const queryValue = fc.oneof(fc.string({ maxLength: 60 }), hostileText, extremeTime, craftedCursor);
  const query = fc.dictionary(
    fc.constantFrom('limit', 'cursor', 'q', 'role', 'actorId', 'action', 'status', 'since', 'until', 'x', '__proto__'),
    queryValue,
    { maxKeys: 4 },
  );
  const extraHeaders = fc.dictionary(
    fc.constantFrom('x-request-id', 'x-forwarded-for', 'accept', 'origin', 'content-length'),
    fc.string({ maxLength: 300 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
    { maxKeys: 3 },
  );

  it(`answers ${RUNS} hostile requests with documented problems, never a 5xx`, async () => {
    const codes = new Set(Object.keys(ERROR_CODES));
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.array(segment, { minLength: 2, maxLength: 2 }),
        query,
        fc.option(rawBody, { nil: undefined }),
        contentType,
        authorization,
        extraHeaders,
        async (pick, segs, q, body, type, auth, headers) => {
          const route = routes[pick % routes.length]!;
          let i = 0;
          const path = route.path.replace(/:[A-Za-z]+/g, () => encodeURIComponent(segs[i++ % 2]!.toWellFormed()));
          const qs = new URLSearchParams(q).toString();
          const h: Record<string, string> = { ...headers };
          delete h['content-length'];
          if (type) h['content-type'] = type;
          if (auth === 'user') h.authorization = `Bearer ${user.accessToken}`;
          else if (auth === 'admin') h.authorization = `Bearer ${admin.accessToken}`;
          else if (auth !== undefined) h.authorization = auth;
          const init: RequestInit = { method: route.method, headers: h };
          if (body !== undefined && route.method !== 'GET' && route.method !== 'HEAD') init.body = body;
          const res = await Promise.race([
            app.t.request(`${path}${qs ? `?${qs}` : ''}`, init),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('hang')), 10_000)),
          ]);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const text = await res.text();
          if (res.status >= 500) throw new Error(`${route.method} ${path} -> ${res.status}: ${text.slice(0, 300)}`);
          // The provider's endpoints answer as their RFCs say: OAuth errors (JSON) or, to a browser, HTML pages.
          // The external sign-in's browser endpoints answer with pages (a path they do not match is the API's).
          if (res.status >= 400 && path.startsWith('/auth/external/') && /^text\/html/.test(res.headers.get('content-type') ?? '')) return;
          if (res.status >= 400 && path.startsWith('/oauth2/')) {
            expect(res.headers.get('content-type')).toMatch(/^(application\/json|text\/html)/);
            return;
          }
          if (res.status >= 400) {
            expect(res.headers.get('content-type')).toBe('application/problem+json');
            const p = JSON.parse(text) as { code: string; status: number };
            expect(codes.has(p.code), p.code).toBe(true);
            expect(p.status).toBe(res.status);
            // The OpenAPI document lists this code under this status for the route that answered.
            const op = documented(route.method, path);
            if (op)
              expect(
                op.documents(res.status, p.code),
                `${op.route} answered ${res.status} ${p.code}, not in its documented responses`,
              ).toBe(true);
          }
        },
      ),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    console.log(`fuzz: ${RUNS} cases over ${routes.length} routes; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    // Still healthy afterwards.
    expect((await app.t.request('/healthz')).status).toBe(200);
    expect((await app.call('GET', '/users/me', { token: user.accessToken })).status).toBe(200);
  }, 300_000);
});

describe('fuzzing forwarded addresses', () => {
  // One trusted hop: the last X-Forwarded-For entry names the client, if it is an IP address.
  const app = useTestApp('pglite', {
    overrides: { TRUST_PROXY: '1', RATE_LIMIT_REQUESTS: '1000000', LOGIN_MAX_FAILURES: '10000', LOGIN_IP_MAX_FAILURES: '1000000' },
  });
  const notAnAddress = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.constantFrom('unknown', '', ' ', '[::1', '::1]', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '[1.2.3.4]', '1.2.3.4:99999', '[::1]:x'),
    fc.constantFrom('fe80::1%', '::ffff:1.2.3', '1::2::3', '<script>', 'for=1.2.3.4', '"1.2.3.4"', '_gateway', 'localhost'),
    fc.string({ minLength: 1000, maxLength: 8000 }),
  );
  const entry = fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    fc.ipV6().map((a) => `[${a}]:443`),
    fc.ipV4().map((a) => `${a}:8080`),
    fc.ipV6().map((a) => `${a}%eth0`),
    notAnAddress,
  );
  const forwarded = fc
    .tuple(fc.array(entry, { minLength: 1, maxLength: 6 }), fc.constantFrom(',', ', ', ' , '))
    .map(([entries, sep]) => entries.join(sep))
    .filter((s) => /^[\x20-\x7e]*$/.test(s));

  it('never takes a forwarded entry that is not an IP address as the client', async () => {
    const s = await registerAndLogin(app.call);
    await fc.assert(
      fc.asyncProperty(forwarded, async (header) => {
        const res = await app.call('POST', '/auth/login', {
          headers: { 'x-forwarded-for': header },
          body: { email: s.email, password: PASSWORD },
        });
        expect(res.status, header.slice(0, 200)).toBe(200);
        const listed = await app.call('GET', '/users/me/sessions', { token: res.body.accessToken });
        const ip: string = listed.body.items.find((x: { current: boolean }) => x.current).ip;
        expect(isIP(ip), `${header.slice(0, 200)} -> ${ip.slice(0, 200)}`).not.toBe(0);
      }),
      { numRuns: Math.ceil(RUNS / 10), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
  }, 300_000);
});

describe('fuzzing the OpenID provider (/oauth2)', () => {
  const ISSUER = 'http://localhost:3000';
  const app = useTestApp('pglite', {
    overrides: { RATE_LIMIT_REQUESTS: '1000000', LOGIN_MAX_FAILURES: '10000', LOGIN_IP_MAX_FAILURES: '1000000' },
  });
  let rp: RegisteredClient;
  let user: Session;
  let cookie: string;
  let hint: string;
  /** Of another user: a logout with it asks this browser's user rather than signing them out. */
  let otherHint: string;
  const REDIRECT = 'https://rp.example/cb';
  const POST_LOGOUT = 'https://rp.example/logged-out';
  const LIMIT = 64 * 1024;

  beforeAll(async () => {
    rp = await registerClient(app.t, { firstParty: true, redirectUris: [REDIRECT], postLogoutRedirectUris: [POST_LOGOUT] });
    user = await registerAndLogin(app.call);
    cookie = await browserCookieFor(app.t, user);
    hint = await idTokenFor(app.t, { sub: user.userId, aud: rp.id });
    otherHint = await idTokenFor(app.t, { sub: (await registerAndLogin(app.call)).userId, aud: rp.id });
  });

  /** Redirect URIs made to look like the registered one: every one of them is another URI. */
  const lookAlike = fc.oneof(
    fc.constantFrom(
      'https://RP.example/cb',
      'HTTPS://rp.example/cb',
      'https://rp.example/CB',
      'https://rp.example/cb/',
      'https://rp.example/cb?',
      'https://rp.example/cb#',
      'https://rp.example/cb#frag',
      'https://rp.example:443/cb',
      'https://rp.example:8443/cb',
      'https://rp.example./cb',
      'http://rp.example/cb',
      '//rp.example/cb',
      'rp.example/cb',
      'https://rp.example@evil.test/cb',
      'https://evil.test@rp.example/cb',
      'https://rp.example\\@evil.test/cb',
      'https:\\\\rp.example/cb',
      'https://rp.example\\cb',
      'https://rp.example%2Fcb',
      'https://rp.example/%63b',
      'https://rp.example/c%62',
      'https://rp.example/./cb',
      'https://rp.example/%2e/cb',
      'https://rp.example/x/../cb',
      'https://rp.example/x/%2e%2e/cb',
      'https://rp.example%2eevil.test/cb',
      'https://rp.example.evil.test/cb',
      'https://r\u0440.example/cb',
      'https://xn--r-8sb.example/cb',
      'https://rp.exampl\u0435/cb',
      'https://rp.example/cb\u0000',
      'https://rp.example/cb%00',
      ' https://rp.example/cb',
      'https://rp.example/cb ',
      'https://rp.example/cb\t',
      'https://rp.example/cb\n',
      'https://rp.example/cb?x=1',
      'https://rp.example/cb&x=1',
      'https://rp.example/cb;x',
      'javascript://rp.example/cb',
    ),
    fc
      .tuple(fc.constantFrom('', '/', '?', '#', '@evil.test', '%', '%2F', '\\', '.', ':1'), fc.constantFrom('', 'x', '%00', '\u00ff'))
      .map(([a, b]) => `${REDIRECT}${a}${b}`)
      .filter((u) => u !== REDIRECT),
  );

  /** Where the provider may send a browser: its own pages, or exactly a registered URI. */
  function expectSafeLocation(location: string | null, sent: string) {
    if (location === null) return;
    if (location.startsWith('/')) {
      expect(location, sent).toMatch(/^\/(login\?|oauth2\/(authorize|consent)\?)/);
      return;
    }
    const url = new URL(location);
    if (url.origin === ISSUER) {
      expect(url.pathname, sent).toBe('/oauth2/authorize');
      return;
    }
    expect(url.host, sent).toBe('rp.example');
    const base = location.split('?')[0];
    expect([REDIRECT, POST_LOGOUT], `${sent} -> ${location}`).toContain(base);
    if (base === REDIRECT) {
      // An authorization response: a code or an error (RFC 6749 4.1.2), and the issuer (RFC 9207).
      const q = url.searchParams;
      expect(q.has('code') !== q.has('error'), `${sent} -> ${location}`).toBe(true);
      expect(q.get('iss')).toBe(ISSUER);
    }
  }

  it('never redirects to a look-alike of the registered redirect_uri, nor of the post_logout_redirect_uri', async () => {
    await fc.assert(
      fc.asyncProperty(lookAlike, fc.boolean(), async (uri, withSession) => {
        const q = new URLSearchParams({ client_id: rp.id, redirect_uri: uri, response_type: 'code', scope: 'openid', state: 's' });
        const res = withSession
          ? await app.t.request(`/oauth2/authorize?${q}`, { headers: { cookie } })
          : await app.t.request(`/oauth2/authorize?${q}`);
        expect(res.status, uri).toBe(400);
        expect(res.headers.get('location'), uri).toBeNull();
        expect(res.headers.get('content-type')).toMatch(/^text\/html/);
        // Logout: a valid hint of another sign-in (no session here), the look-alike never followed.
        const out = await app.t.request(
          `/oauth2/logout?${new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: uri.replace('/cb', '/logged-out'), state: 's' })}`,
        );
        expect(out.status, uri).toBeLessThan(500);
        expect(out.headers.get('location'), uri).toBeNull();
      }),
      { numRuns: Math.min(RUNS, 300) },
    );
  }, 120_000);

  it('takes a loopback redirect URI on any port (RFC 8252 7.3), and no look-alike of it', async () => {
    const native = await registerClient(app.t, { type: 'public', firstParty: true, redirectUris: ['http://127.0.0.1/callback'] });
    const { challenge } = await pkce();
    const loopbackLike = fc.oneof(
      fc.integer({ min: 0, max: 200_000 }).map((port) => `http://127.0.0.1:${port}/callback`),
      fc.constantFrom(
        'http://127.0.0.1:80@evil.test/callback',
        'http://127.0.0.1.evil.test/callback',
        'http://127.0.0.1:8080\\@evil.test/callback',
        'http://127.0.0.1:8080/callback@evil.test',
        'http://127.0.0.1:8080/callback#x',
        'http://127.0.0.1:8080/%2e%2e/callback',
        'http://127.0.0.1:8080//evil.test/callback',
        'http://localhost:8080/callback',
        'http://[::1]:8080/callback',
        'https://127.0.0.1:8080/callback',
        'http://127.0.0.2:8080/callback',
        'http://127.1:8080/callback',
        'http://0x7f.0.0.1:8080/callback',
        'http://127.0.0.1:+80/callback',
        'http://127.0.0.1:8080/Callback',
      ),
    );
    await fc.assert(
      fc.asyncProperty(loopbackLike, async (uri) => {
        const q = new URLSearchParams({
          client_id: native.id,
          redirect_uri: uri,
          response_type: 'code',
          scope: 'openid',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        });
        const res = await app.t.request(`/oauth2/authorize?${q}`, { headers: { cookie } });
        const location = res.headers.get('location');
        if (res.status === 400) {
          expect(location).toBeNull();
          return;
        }
        expect(res.status, uri).toBe(302);
        expect(location!.startsWith(`${uri}?`), uri).toBe(true);
        const url = new URL(location!);
        expect([url.protocol, url.hostname, url.pathname], uri).toEqual(['http:', '127.0.0.1', '/callback']);
        expect(url.username + url.password + url.hash, uri).toBe('');
      }),
      { numRuns: Math.min(RUNS, 300) },
    );
  }, 120_000);

  const NAMES = [
    'client_id',
    'redirect_uri',
    'response_type',
    'scope',
    'state',
    'nonce',
    'prompt',
    'max_age',
    'id_token_hint',
    'code_challenge',
    'code_challenge_method',
    'grant_type',
    'code',
    'code_verifier',
    'refresh_token',
    'client_secret',
    'access_token',
    'post_logout_redirect_uri',
    'interaction',
    'csrf_token',
    'decision',
    'request',
    'request_uri',
    'response_mode',
    '__proto__',
    'constructor',
  ] as const;
  const rawText = fc.string({
    unit: fc.oneof(
      fc.constantFrom('%', '%G1', '%zz', '%FF', '%FE%FF', '%C0%AF', '%ED%A0%80', '%00', '%0A', '%1B', '%7F', '+', '&', '=', ';', '#', '\\'),
      fc.constantFrom('a', 'Z', '0', '.', '-', '~', ' ', '/', ':', '@', '?'),
      fc.constantFrom('\u0000', '\u0001', '\r', '\n', '\t', '\u007f', '\u00ff', '\ud800', '\u202e'),
    ),
    maxLength: 40,
  });
  const value = fc.oneof(
    fc.constantFrom(
      'code',
      'openid',
      'openid profile email offline_access',
      'none',
      'login',
      'authorization_code',
      'refresh_token',
      'client_credentials',
      REDIRECT,
      POST_LOGOUT,
      'S256',
      'allow',
      'deny',
      '0',
      '-1',
      '99999999999999999999',
    ),
    lookAlike.map(encodeURIComponent),
    rawText,
    fc.constantFrom('A'.repeat(5000), 'b'.repeat(LIMIT - 1000), 'c'.repeat(LIMIT + 10)),
  );
  /** A query string or form body as bytes on the wire: duplicates kept, names and values as sent. */
  const pairs = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...NAMES), rawText), fc.option(value, { nil: undefined }), fc.boolean()), {
    maxLength: 8,
  });
  const ENDPOINTS = [
    ['GET', '/oauth2/authorize'],
    ['POST', '/oauth2/authorize'],
    ['POST', '/oauth2/token'],
    ['GET', '/oauth2/userinfo'],
    ['POST', '/oauth2/userinfo'],
    ['GET', '/oauth2/logout'],
    ['POST', '/oauth2/logout'],
    ['POST', '/oauth2/logout/confirm'],
    ['GET', '/oauth2/consent'],
    ['POST', '/oauth2/consent'],
  ] as const;
  const JSON_ENDPOINTS = new Set(['/oauth2/token', '/oauth2/userinfo']);
  /** A well-formed request of each endpoint, for the hostile pairs to follow (so checks past the first ones are reached). */
  const baseOf = (path: string): string => {
    if (path === '/oauth2/authorize')
      return new URLSearchParams({ client_id: rp.id, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid' }).toString();
    if (path === '/oauth2/token') return new URLSearchParams({ grant_type: 'authorization_code', redirect_uri: REDIRECT }).toString();
    if (path === '/oauth2/logout')
      return new URLSearchParams({ id_token_hint: otherHint, post_logout_redirect_uri: POST_LOGOUT }).toString();
    return '';
  };

  it(`answers ${RUNS} hostile /oauth2 requests by the RFCs: never a 5xx, never a redirect off the registered URIs`, async () => {
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS),
        pairs,
        fc.boolean(),
        fc.constantFrom<string | undefined>(
          'application/x-www-form-urlencoded',
          'application/x-www-form-urlencoded; charset=utf-8',
          'text/plain',
          undefined,
        ),
        fc.constantFrom<'cookie' | 'garbage' | undefined>('cookie', 'garbage', undefined),
        fc.constantFrom<'basic' | 'badBasic' | 'bearer' | 'badBearer' | undefined>('basic', 'badBasic', 'bearer', 'badBearer', undefined),
        fc.constantFrom<string | undefined>(ISSUER, 'https://evil.test', 'null', undefined),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 40 }), { nil: undefined }),
        fc.boolean(),
        async ([method, path], ps, inQuery, type, withCookie, auth, origin, rawBytes, withBase) => {
          const hostile = ps
            .map(([n, v, encode]) => {
              const name = encode ? encodeURIComponent(n.toWellFormed()) : n;
              if (v === undefined) return name;
              return `${name}=${encode ? encodeURIComponent(v.toWellFormed()) : v}`;
            })
            .join('&');
          const wire = withBase ? [baseOf(path), hostile].filter(Boolean).join('&') : hostile;
          const h: Record<string, string> = {};
          if (type) h['content-type'] = type;
          if (withCookie === 'cookie') h.cookie = cookie;
          else if (withCookie === 'garbage') h.cookie = `${cookie.split('=')[0]}=x.${'y'.repeat(43)}; other=%ff`;
          if (auth === 'basic') h.authorization = `Basic ${Buffer.from(`${rp.id}:${rp.secret}`).toString('base64')}`;
          else if (auth === 'badBasic') h.authorization = 'Basic %%%';
          else if (auth === 'bearer') h.authorization = `Bearer ${user.accessToken}`;
          else if (auth === 'badBearer') h.authorization = 'Bearer a.b.c';
          if (origin) h.origin = origin;
          const init: RequestInit = { method, headers: h };
          let url: string = path;
          if (method === 'GET' || inQuery) url = `${path}?${wire}`;
          if (method === 'POST' && !inQuery) init.body = rawBytes ? Buffer.concat([Buffer.from(wire), Buffer.from(rawBytes)]) : wire;
          let res: Response;
          try {
            res = await Promise.race([
              app.t.request(url, init),
              new Promise<never>((_, reject) => setTimeout(() => reject(new Error('hang')), 10_000)),
            ]);
          } catch (err) {
            // A URL no client could send (the Request constructor refuses it) is not the server's to answer.
            if (err instanceof TypeError) return;
            throw err;
          }
          const text = await res.text();
          const where = `${method} ${url.slice(0, 300)}`;
          statuses.set(`${method} ${path} ${res.status}`, (statuses.get(`${method} ${path} ${res.status}`) ?? 0) + 1);
          if (res.status >= 500) throw new Error(`${where} -> ${res.status}: ${text.slice(0, 300)}`);
          expectSafeLocation(res.headers.get('location'), where);
          if (res.status < 400) return;
          if (JSON_ENDPOINTS.has(path)) {
            expect(res.headers.get('content-type'), where).toMatch(/^application\/json/);
            expect(typeof JSON.parse(text).error, where).toBe('string');
          } else {
            expect(res.headers.get('content-type'), `${where} -> ${res.status} ${text.slice(0, 200)}`).toMatch(/^text\/html/);
          }
        },
      ),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    console.log(`oauth fuzz: ${RUNS} cases; ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    expect((await app.call('GET', '/users/me', { token: user.accessToken })).status).toBe(200);
  }, 300_000);
});

describe('fuzzing the external sign-in callback (/auth/external/:provider/callback)', () => {
  const app = useTestApp('pglite', { overrides: { RATE_LIMIT_REQUESTS: '1000000' } });
  let crafted: CraftedIssuer;
  beforeAll(async () => {
    crafted = await startCraftedIssuer();
    const admin = await loginAdmin(app.call);
    const res = await app.call('POST', '/admin/identity-providers', {
      token: admin.accessToken,
      body: {
        id: 'crafted',
        type: 'oidc',
        name: 'Crafted',
        issuer: crafted.issuer,
        clientId: crafted.clientId,
        clientSecret: 'x'.repeat(20),
        scopes: ['openid'],
        trustEmailVerified: true,
        enabled: true,
      },
    });
    expect(res.status, res.text).toBe(201);
    return () => crafted.stop();
  });

  const hostileValue = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.constantFrom(
      '',
      '%',
      '%00',
      '\u0000',
      '<script>alert(1)</script>',
      'A'.repeat(43),
      'https://evil.test',
      '//evil.test',
      'access_denied',
      'x'.repeat(5000),
    ),
  );
  const param = fc.tuple(
    fc.constantFrom('code', 'state', 'error', 'error_description', 'iss', 'session_state', '__proto__', 'next'),
    hostileValue,
  );

  it(`answers ${Math.ceil(RUNS / 10)} hostile callbacks with an HTML error page, never a 5xx nor a redirect off the site`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(param, { maxLength: 6 }),
        fc.boolean(),
        fc.constantFrom('crafted', 'nobody', 'Crafted', 'a'.repeat(100)),
        async (ps, realFlow, provider) => {
          const q = new URLSearchParams();
          const headers: Record<string, string> = {};
          if (realFlow) {
            // A flow this browser really started: the hostile parameters come after its state.
            const start = await app.t.request('/auth/external/crafted');
            expect(start.status).toBe(302);
            q.append('state', new URL(start.headers.get('location')!).searchParams.get('state')!);
            headers.cookie = start.headers.get('set-cookie')!.split(';')[0]!;
          }
          for (const [k, v] of ps) q.append(k, v.toWellFormed());
          const path = `/auth/external/${provider}/callback?${q}`;
          const res = await app.t.request(path, { headers });
          const text = await res.text();
          if (res.status >= 500) throw new Error(`${path.slice(0, 300)} -> ${res.status}: ${text.slice(0, 300)}`);
          expect(res.status, path.slice(0, 200)).toBeGreaterThanOrEqual(400);
          expect(res.headers.get('content-type')).toMatch(/^text\/html/);
          expect(res.headers.get('location')).toBeNull();
          expect(text).not.toContain('<script>');
        },
      ),
      { numRuns: Math.ceil(RUNS / 10), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
  }, 300_000);
});

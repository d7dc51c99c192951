// The GitHub strategy against a GitHub-style server on loopback: what GitHub
// sees of the requests, the profile it makes, and every failure as a stable
// sign-in error (the hosted pages and linking are external-github.test.ts's).
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGithubStrategy } from '../../src/signin/upstream/github.js';
import type { UpstreamProvider } from '../../src/signin/upstream/providers.js';
import { ExternalSignInError, type UpstreamStrategy } from '../../src/signin/upstream/strategy.js';
import { FAULTS, type GithubServer, startGithubServer } from '../helpers/github-server.js';
import { pkcePair, UserAgent } from '../helpers/oidc-peers.js';

const REDIRECT = 'http://127.0.0.1:1/auth/external/github/callback';
const APP = { clientId: 'Iv1.0123456789abcdef', clientSecret: 'gh-secret-0123456789abcdef0123456789abcdef', redirectUris: [REDIRECT] };
const octocat = () => ({
  id: 583231,
  login: 'octocat',
  name: 'The Octocat',
  emails: [
    { email: 'Octocat@Example.com', primary: true, verified: true },
    { email: 'old@example.com', primary: false, verified: true },
  ],
});

function providerFor(server: GithubServer, over: Partial<UpstreamProvider> = {}): UpstreamProvider {
  return {
    id: 'github',
    type: 'github',
    name: server.apiUrl.endsWith('/api/v3') ? 'Acme GitHub Enterprise' : 'GitHub',
    issuer: null,
    githubUrl: server.url,
    githubApiUrl: server.apiUrl,
    clientId: APP.clientId,
    clientSecret: APP.clientSecret,
    scopes: [],
    trustEmailVerified: true,
    enabled: true,
    ...over,
  };
}

/** The browser's part: to GitHub, sign in as `login` (or cancel), back to the callback URL (not requested). */
async function signIn(strategy: UpstreamStrategy, provider: UpstreamProvider, login: string | null = 'octocat') {
  const { verifier, challenge } = await pkcePair();
  const state = randomBytes(32).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const authorizeUrl = await strategy.authorizationUrl(provider, { redirectUri: REDIRECT, state, nonce, codeChallenge: challenge });
  const ua = new UserAgent();
  const stopAt = (u: URL) => u.href.startsWith(REDIRECT);
  let page = await ua.get(authorizeUrl, { stopAt });
  if (!stopAt(new URL(page.url)))
    page = await ua.submit(page, login === null ? {} : { login }, { stopAt, button: login === null ? 'Cancel' : 'Authorize' });
  const callback = { url: new URL(page.url), redirectUri: REDIRECT, state, nonce, codeVerifier: verifier };
  return { authorizeUrl, callback, finish: () => strategy.finish(provider, callback) };
}

async function failure(p: Promise<unknown>): Promise<ExternalSignInError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExternalSignInError);
  return err as ExternalSignInError;
}

describe.each([
  ['github.com (API on its own origin)', false],
  ['GitHub Enterprise Server (API under /api/v3)', true],
])('GitHub strategy, %s', (_label, enterprise) => {
  let server: GithubServer;
  const strategy = createGithubStrategy({ production: false, timeoutMs: 1000 });

  beforeAll(async () => {
    server = await startGithubServer({ apps: [APP], accounts: [octocat()], enterprise });
  });
  afterAll(() => server.stop());
  afterEach(() => {
    server.faults = {};
    server.autoLogin = null;
    server.accounts.set(583231, octocat());
  });

  it('sends the browser to GitHub with state, PKCE S256 and the default scopes, and no nonce', async () => {
    const { authorizeUrl } = await signIn(strategy, providerFor(server));
    expect(authorizeUrl.origin + authorizeUrl.pathname).toBe(`${server.url}/login/oauth/authorize`);
    const p = authorizeUrl.searchParams;
    expect(p.get('client_id')).toBe(APP.clientId);
    expect(p.get('redirect_uri')).toBe(REDIRECT);
    expect(p.get('response_type')).toBe('code');
    expect(p.get('scope')).toBe('read:user user:email');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('state')).toMatch(/^[\w-]{43}$/);
    expect(p.has('nonce')).toBe(false);
  });

  it('makes the profile from /user and the primary verified address, keyed by the numeric id', async () => {
    const { finish } = await signIn(strategy, providerFor(server));
    expect(await finish()).toEqual({ subject: '583231', email: 'octocat@example.com', emailVerified: true, name: 'The Octocat' });
    // GitHub saw the secret in the form body with the verifier, and the documented API headers.
    expect(server.tokenRequests.at(-1)).toEqual({ clientAuth: 'post', hadVerifier: true, result: 'ok' });
    const apiCalls = server.requests.filter((r) => r.path.endsWith('/user') || r.path.endsWith('/user/emails')).slice(-2);
    expect(apiCalls.map((r) => r.path)).toEqual(enterprise ? ['/api/v3/user', '/api/v3/user/emails'] : ['/user', '/user/emails']);
    for (const r of apiCalls) {
      expect(r).toMatchObject({ accept: 'application/vnd.github+json', apiVersion: '2022-11-28', auth: 'Bearer' });
      expect(r.userAgent).not.toBe('');
    }
  });

  it('keeps the subject when the login and the address change, and names the user by login without a name', async () => {
    server.accounts.set(583231, {
      id: 583231,
      login: 'octo-renamed',
      name: null,
      emails: [{ email: 'new@example.com', primary: true, verified: true }],
    });
    const { finish } = await signIn(strategy, providerFor(server), 'octo-renamed');
    expect(await finish()).toEqual({ subject: '583231', email: 'new@example.com', emailVerified: true, name: 'octo-renamed' });
  });

  it('says an unverified primary address is unverified', async () => {
    server.accounts.set(583231, {
      ...octocat(),
      emails: [
        { email: 'unproven@example.com', primary: true, verified: false },
        { email: 'proven@example.com', primary: false, verified: true },
      ],
    });
    const { finish } = await signIn(strategy, providerFor(server));
    expect(await finish()).toMatchObject({ email: 'unproven@example.com', emailVerified: false });
  });

  it('without user:email, takes the public address as unverified', async () => {
    server.accounts.set(583231, { ...octocat(), publicEmail: 'public@example.com' });
    const { finish } = await signIn(strategy, providerFor(server, { scopes: ['read:user'] }));
    expect(await finish()).toMatchObject({ subject: '583231', email: 'public@example.com', emailVerified: false });
  });

  it('signs in without the form when GitHub already has the user and the grant', async () => {
    server.autoLogin = 'octocat';
    const { finish } = await signIn(strategy, providerFor(server));
    expect((await finish()).subject).toBe('583231');
  });

  it('a cancel at GitHub is access_denied', async () => {
    const { finish } = await signIn(strategy, providerFor(server), null);
    expect((await failure(finish())).code).toBe('access_denied');
  });

  it('a replayed code is refused (GitHub: 200 with bad_verification_code)', async () => {
    const { finish } = await signIn(strategy, providerFor(server));
    await finish();
    const err = await failure(finish());
    expect(err.code).toBe('upstream_invalid_response');
    expect(err.detail).toContain('bad_verification_code');
    expect(server.tokenRequests.at(-1)?.result).toBe('bad_verification_code');
  });

  it('a wrong PKCE verifier, a wrong client secret and another state are refused', async () => {
    const a = await signIn(strategy, providerFor(server));
    expect((await failure(strategy.finish(providerFor(server), { ...a.callback, codeVerifier: 'x'.repeat(43) }))).code).toBe(
      'upstream_invalid_response',
    );
    const b = await signIn(strategy, providerFor(server));
    const wrongSecret = await failure(strategy.finish(providerFor(server, { clientSecret: 'nope' }), b.callback));
    expect(wrongSecret.code).toBe('upstream_invalid_response');
    const c = await signIn(strategy, providerFor(server));
    expect((await failure(strategy.finish(providerFor(server), { ...c.callback, state: 'another-state' }))).code).toBe(
      'upstream_invalid_response',
    );
  });

  it.each([
    ['token', 'badVerificationCode', 'upstream_invalid_response'],
    ['token', 'serverError', 'upstream_unavailable'],
    ['token', 'badGateway', 'upstream_unavailable'],
    ['token', 'notJson', 'upstream_invalid_response'],
    ['token', 'truncatedJson', 'upstream_invalid_response'],
    ['token', 'aList', 'upstream_invalid_response'],
    ['token', 'reset', 'upstream_unavailable'],
    ['token', 'hang', 'upstream_unavailable'],
    ['token', 'huge', 'upstream_invalid_response'],
    ['token', 'endless', 'upstream_invalid_response'],
    ['user', 'notJson', 'upstream_invalid_response'],
    ['user', 'truncatedJson', 'upstream_invalid_response'],
    ['user', 'wrongShape', 'upstream_invalid_response'],
    ['user', 'aList', 'upstream_invalid_response'],
    ['user', 'badCredentials', 'upstream_invalid_response'],
    ['user', 'serverError', 'upstream_unavailable'],
    ['user', 'reset', 'upstream_unavailable'],
    ['user', 'hang', 'upstream_unavailable'],
    ['user', 'huge', 'upstream_invalid_response'],
    ['user', 'endless', 'upstream_invalid_response'],
    ['emails', 'emailsNotAList', 'upstream_invalid_response'],
    ['emails', 'notJson', 'upstream_invalid_response'],
    ['emails', 'badGateway', 'upstream_unavailable'],
  ] as const)('%s answering %s is %s', async (endpoint, fault, code) => {
    const { callback } = await signIn(strategy, providerFor(server));
    server.faults[endpoint] = fault === 'hang' || fault === 'reset' || fault === 'endless' ? fault : FAULTS[fault];
    const err = await failure(strategy.finish(providerFor(server), callback));
    expect(err.code).toBe(code);
    // The words name the provider as the admin named it, never what GitHub answered.
    expect(err.description).toContain(providerFor(server).name);
    // Nothing secret in what is shown or logged.
    for (const text of [err.message, err.description, err.detail ?? ''])
      for (const secret of [callback.url.searchParams.get('code')!, callback.state, callback.codeVerifier, APP.clientSecret])
        expect(text).not.toContain(secret);
  });

  it('GitHub down altogether is upstream_unavailable', async () => {
    const { callback } = await signIn(strategy, providerFor(server));
    const down = providerFor(server, { githubUrl: 'http://127.0.0.1:9', githubApiUrl: 'http://127.0.0.1:9' });
    expect((await failure(strategy.finish(down, callback))).code).toBe('upstream_unavailable');
  });

  it('in production, an http:// GitHub URL is never requested', async () => {
    const production = createGithubStrategy({ production: true });
    const before = server.requests.length;
    const { verifier, challenge } = await pkcePair();
    const request = { redirectUri: REDIRECT, state: 's', nonce: 'n', codeChallenge: challenge };
    expect((await failure(production.authorizationUrl(providerFor(server), request))).code).toBe('upstream_unavailable');
    const callback = {
      url: new URL(`${REDIRECT}?code=abc&state=s`),
      redirectUri: REDIRECT,
      state: 's',
      nonce: 'n',
      codeVerifier: verifier,
    };
    expect((await failure(production.finish(providerFor(server), callback))).code).toBe('upstream_unavailable');
    expect(server.requests.length).toBe(before);
  });
});

describe('GitHub strategy against arbitrary answers', () => {
  let server: GithubServer;
  const strategy = createGithubStrategy({ production: false, timeoutMs: 2000 });
  beforeAll(async () => {
    server = await startGithubServer({ apps: [APP], accounts: [octocat()] });
    server.autoLogin = 'octocat';
  });
  afterAll(() => server.stop());

  const anyValue = fc.oneof(
    fc.jsonValue(),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.constantFrom(-1, 0, 2 ** 53, 1.5, '583231', '', 'x'.repeat(300), 'a@b', 'ok@example.com\n', null),
  );
  const userLike = fc.record(
    {
      id: fc.oneof(fc.nat(), anyValue),
      login: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), anyValue),
      name: anyValue,
      email: anyValue,
    },
    { requiredKeys: [] },
  );
  const emailLike = fc.record(
    { email: fc.oneof(fc.emailAddress(), anyValue), primary: fc.oneof(fc.boolean(), anyValue), verified: fc.oneof(fc.boolean(), anyValue) },
    { requiredKeys: [] },
  );
  const tokenLike = fc.record(
    {
      access_token: fc.oneof(fc.string(), anyValue),
      token_type: fc.oneof(fc.constantFrom('bearer', 'Bearer', 'mac'), anyValue),
      error: anyValue,
      scope: anyValue,
    },
    { requiredKeys: [] },
  );
  const answer = (shape: fc.Arbitrary<unknown>) =>
    fc.record({
      status: fc.constantFrom(200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 422, 429, 500, 503),
      contentType: fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'text/html',
        'text/plain',
        'application/x-www-form-urlencoded',
      ),
      body: fc.oneof(
        shape.map((v) => JSON.stringify(v)),
        fc.string({ unit: 'binary', maxLength: 500 }),
        anyValue.map((v) => JSON.stringify(v) ?? ''),
      ),
    });
  const fault = fc.oneof(
    fc.record({ endpoint: fc.constant('token' as const), fault: answer(tokenLike) }),
    fc.record({ endpoint: fc.constant('user' as const), fault: answer(userLike) }),
    fc.record({ endpoint: fc.constant('emails' as const), fault: answer(fc.array(emailLike, { maxLength: 4 })) }),
  );

  it('ends in a well-formed profile or a stable sign-in error, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fault, async ({ endpoint, fault: f }) => {
        const { callback } = await signIn(strategy, providerFor(server));
        server.faults = { [endpoint]: f };
        try {
          const profile = await strategy.finish(providerFor(server), callback);
          expect(profile.subject).toMatch(/^[1-9]\d{0,15}$/);
          expect(profile.email === null || /^[^\s@]+@[^\s@]+$/.test(profile.email)).toBe(true);
          expect(typeof profile.emailVerified).toBe('boolean');
          if (profile.emailVerified) expect(profile.email).not.toBeNull();
          if (profile.name !== null) expect(profile.name).toMatch(/^\S(.{0,98}\S)?$/);
        } catch (err) {
          expect(err).toBeInstanceOf(ExternalSignInError);
          expect(['upstream_invalid_response', 'upstream_unavailable']).toContain((err as ExternalSignInError).code);
          // Fixed words: nothing of the answer is shown.
          expect((err as ExternalSignInError).description).toMatch(
            /^GitHub (gave an answer that could not be used|could not be reached):[^:]*$/,
          );
        } finally {
          server.faults = {};
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

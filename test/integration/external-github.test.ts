// Sign-in with GitHub (docs/api.md "Sign-in with external identity providers"),
// on both backends, through the service's own routes: GET /auth/external/github
// sends the browser to a GitHub-style server on loopback (test/helpers/github-server.ts),
// the user signs in there, and the callback ends signed in or on an error page.
// The strategy's own failure cases are test/unit/github-strategy.test.ts's.
import { eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { FAULTS, type GithubAccount, type GithubServer, startGithubServer } from '../helpers/github-server.js';
import { PASSWORD, registerAndLogin, uniqueEmail } from '../helpers/http.js';
import { type ServedProvider, serveProvider } from '../helpers/oauth.js';
import { type Page, UserAgent } from '../helpers/oidc-peers.js';
import { BACKENDS } from '../helpers/services.js';

const CLIENT_ID = 'Iv1.8a61f9b3a7aba766';
const CLIENT_SECRET = 'github-client-secret-0123456789abcdef01234567';

/** Register a GitHub provider at the service, as an admin does. */
async function addGithub(
  sp: ServedProvider,
  id: string,
  server: GithubServer,
  opts: { trustEmailVerified?: boolean; scopes?: string[] } = {},
) {
  const res = await sp.call('POST', '/admin/identity-providers', {
    token: sp.admin.accessToken,
    body: {
      id,
      type: 'github',
      name: 'GitHub',
      githubUrl: server.url,
      githubApiUrl: server.apiUrl,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      ...(opts.scopes ? { scopes: opts.scopes } : {}),
      trustEmailVerified: opts.trustEmailVerified ?? true,
    },
  });
  expect(res.status, res.text).toBe(201);
}

let nextId = 1000;
const account = (over: Partial<GithubAccount> = {}): GithubAccount => {
  const id = nextId++;
  return { id, login: `user${id}`, name: `User ${id}`, emails: [{ email: uniqueEmail('gh'), primary: true, verified: true }], ...over };
};

describe.each(BACKENDS)('sign-in with GitHub on %s', (backend) => {
  let sp: ServedProvider;
  let github: GithubServer;
  let enterprise: GithubServer;

  beforeAll(async () => {
    sp = await serveProvider(backend);
    const app = (id: string) => ({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [`${sp.issuer}/auth/external/${id}/callback`],
    });
    // One OAuth App with two callbacks (a GitHub App may have several): the same GitHub, trusted or not.
    github = await startGithubServer({
      apps: [{ ...app('github'), redirectUris: [...app('github').redirectUris, ...app('gh-untrusted').redirectUris] }],
      accounts: [],
    });
    enterprise = await startGithubServer({ apps: [app('ghe')], accounts: [], enterprise: true });
    await addGithub(sp, 'github', github);
    await addGithub(sp, 'ghe', enterprise);
    await addGithub(sp, 'gh-untrusted', github, { trustEmailVerified: false });
  });
  afterAll(async () => {
    await sp?.stop();
    await github?.stop();
    await enterprise?.stop();
  });
  afterEach(() => {
    github.faults = {};
  });

  /** A browser signs in at GitHub as `login` from the service's start route; ends on the callback's answer (a redirect is not followed). */
  async function signIn(login: string, opts: { ua?: UserAgent; provider?: string } = {}): Promise<{ ua: UserAgent; page: Page }> {
    const ua = opts.ua ?? new UserAgent();
    const provider = opts.provider ?? 'github';
    const back = (u: URL) => u.origin === sp.issuer && !u.pathname.startsWith('/auth/external/');
    const atGithub = await ua.get(`${sp.issuer}/auth/external/${provider}`, { stopAt: back });
    expect(atGithub.status, atGithub.text.slice(0, 300)).toBe(200);
    expect(atGithub.text).toContain('Sign in to GitHub');
    const page = await ua.submit(atGithub, { login }, { button: 'Authorize', stopAt: back });
    return { ua, page };
  }

  /** The account the browser is signed in to, as the pages read it (POST /session/tokens, then GET /users/me). */
  async function me(ua: UserAgent): Promise<{ id: string; email: string; name: string; emailVerified: boolean }> {
    const tokens = await ua.send(`${sp.issuer}/session/tokens`, {
      method: 'POST',
      headers: { origin: sp.issuer, accept: 'application/json' },
    });
    expect(tokens.status).toBe(200);
    const { accessToken } = (await tokens.json()) as { accessToken: string };
    const res = await fetch(`${sp.issuer}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; email: string; name: string; emailVerified: boolean };
  }

  const signedIn = (page: Page) => {
    expect(page.status, page.text.slice(0, 300)).toBe(303);
    expect(new URL(page.url).pathname).toBe('/account');
  };

  const errorPage = (page: Page, status: number, code: string) => {
    expect(page.status, page.text.slice(0, 300)).toBe(status);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain(code);
  };

  const usersWithEmail = async (email: string) =>
    (await sp.t.services.database.db.select({ n: sql<number>`count(*)::int` }).from(users).where(eq(users.email, email)))[0]!.n;

  it('a new GitHub user gets an account, and comes back to the same one after renaming and changing address', async () => {
    const octo = account({ name: 'Mona Lisa Octocat' });
    github.accounts.set(octo.id, octo);
    const first = await signIn(octo.login);
    signedIn(first.page);
    const created = await me(first.ua);
    expect(created).toMatchObject({ email: octo.emails[0]!.email, name: 'Mona Lisa Octocat', emailVerified: true });

    // The login name and the address change at GitHub: the numeric id is who it is.
    const renamed = { ...octo, login: `${octo.login}-renamed`, emails: [{ email: uniqueEmail('moved'), primary: true, verified: true }] };
    github.accounts.set(octo.id, renamed);
    const second = await signIn(renamed.login);
    signedIn(second.page);
    expect((await me(second.ua)).id).toBe(created.id);
    expect(await usersWithEmail(renamed.emails[0]!.email)).toBe(0);
  });

  it('a verified primary address links to the verified local account that holds it', async () => {
    const local = await registerAndLogin(sp.call);
    await sp.t.services.database.db.update(users).set({ emailVerifiedAt: new Date() }).where(eq(users.id, local.userId));
    const gh = account({ emails: [{ email: local.email.toUpperCase(), primary: true, verified: true }] });
    github.accounts.set(gh.id, gh);
    const { ua, page } = await signIn(gh.login);
    signedIn(page);
    expect((await me(ua)).id).toBe(local.userId);
    // Still one account with that address, and the password still works.
    expect(await usersWithEmail(local.email)).toBe(1);
    expect((await sp.call('POST', '/auth/login', { body: { email: local.email, password: PASSWORD } })).status).toBe(200);
  });

  it('an unverified primary address links nothing and creates nothing', async () => {
    const local = await registerAndLogin(sp.call);
    await sp.t.services.database.db.update(users).set({ emailVerifiedAt: new Date() }).where(eq(users.id, local.userId));
    const gh = account({
      emails: [
        { email: local.email, primary: true, verified: false },
        { email: uniqueEmail('other'), primary: false, verified: true },
      ],
    });
    github.accounts.set(gh.id, gh);
    const { page } = await signIn(gh.login);
    errorPage(page, 403, 'identity_not_linked');
    expect(page.text).toContain('GitHub');
    expect(await usersWithEmail(local.email)).toBe(1);
    expect(await usersWithEmail(gh.emails[1]!.email)).toBe(0);
    // Signing in again changes nothing: no identity was kept.
    errorPage((await signIn(gh.login)).page, 403, 'identity_not_linked');
  });

  it('without trustEmailVerified, the verified flag of GitHub is not believed: a new account whose address is unverified', async () => {
    const gh = account();
    github.accounts.set(gh.id, gh);
    const { ua, page } = await signIn(gh.login, { provider: 'gh-untrusted' });
    signedIn(page);
    expect(await me(ua)).toMatchObject({ email: gh.emails[0]!.email, emailVerified: false });
  });

  it('GitHub Enterprise Server (the API under /api/v3) signs in the same way', async () => {
    const gh = account();
    enterprise.accounts.set(gh.id, gh);
    const { ua, page } = await signIn(gh.login, { provider: 'ghe' });
    signedIn(page);
    expect((await me(ua)).email).toBe(gh.emails[0]!.email);
    expect(enterprise.requests.some((r) => r.path === '/api/v3/user/emails')).toBe(true);
  });

  it('a provider with the default URLs sends the browser to github.com', async () => {
    const res = await sp.call('POST', '/admin/identity-providers', {
      token: sp.admin.accessToken,
      body: { id: 'github-com', type: 'github', name: 'GitHub', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    });
    expect(res.status, res.text).toBe(201);
    const start = await new UserAgent().send(`${sp.issuer}/auth/external/github-com`);
    expect(start.status).toBe(302);
    const to = new URL(start.headers.get('location')!);
    expect(to.origin + to.pathname).toBe('https://github.com/login/oauth/authorize');
    expect(Object.fromEntries(to.searchParams)).toMatchObject({
      client_id: CLIENT_ID,
      redirect_uri: `${sp.issuer}/auth/external/github-com/callback`,
      scope: 'read:user user:email',
      code_challenge_method: 'S256',
    });
  });

  it('a cancel at GitHub ends on the access_denied page', async () => {
    const ua = new UserAgent();
    const back = (u: URL) => u.origin === sp.issuer && !u.pathname.startsWith('/auth/external/');
    const atGithub = await ua.get(`${sp.issuer}/auth/external/github`, { stopAt: back });
    errorPage(await ua.submit(atGithub, {}, { button: 'Cancel', stopAt: back }), 403, 'access_denied');
  });

  it.each([
    ['token', 'badVerificationCode', 400, 'upstream_invalid_response'],
    ['token', 'serverError', 502, 'upstream_unavailable'],
    ['user', 'wrongShape', 400, 'upstream_invalid_response'],
    ['user', 'notJson', 400, 'upstream_invalid_response'],
    ['emails', 'emailsNotAList', 400, 'upstream_invalid_response'],
  ] as const)('GitHub answering %s with %s ends on an error page (%i %s), never a 500', async (endpoint, fault, status, code) => {
    const gh = account();
    github.accounts.set(gh.id, gh);
    github.faults[endpoint] = FAULTS[fault];
    const { page } = await signIn(gh.login);
    errorPage(page, status, code);
    expect(await usersWithEmail(gh.emails[0]!.email)).toBe(0);
  });

  it('a replayed callback URL is refused and the client secret, codes and tokens never reach the log', async () => {
    const gh = account();
    github.accounts.set(gh.id, gh);
    const ua = new UserAgent();
    const toCallback = (u: URL) => u.pathname === '/auth/external/github/callback';
    const atGithub = await ua.get(`${sp.issuer}/auth/external/github`, { stopAt: toCallback });
    const callback = await ua.submit(atGithub, { login: gh.login }, { button: 'Authorize', stopAt: toCallback });
    signedIn(await ua.get(callback.url, { stopAt: (u) => u.pathname === '/account' }));
    errorPage(await ua.get(callback.url, { stopAt: (u) => u.pathname === '/account' }), 400, 'invalid_state');
    const code = new URL(callback.url).searchParams.get('code')!;
    const logs = sp.t.logs.text;
    expect(logs).not.toContain(CLIENT_SECRET);
    expect(logs).not.toContain(code);
    expect(logs).not.toMatch(/gho_[\w-]{10,}/);
  });
});

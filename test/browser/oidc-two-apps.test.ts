// Single sign-on across two apps, in headless Chromium: two small web apps on
// other loopback ports, each a confidential client registered through
// POST /admin/clients, sign a user in through the provider the way any
// server-side OpenID Connect app does (authorization code + PKCE + state +
// nonce, the code exchanged at /oauth2/token with client_secret_basic, the ID
// token verified against the JWKS). App A asks for consent; app B is first
// party and rides the same browser session with prompt=none; RP-initiated
// logout from app A ends that session for both.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { expectClean, openTab, screenshot, submitLogin, type Tab, useBrowserApp } from '../helpers/browser.js';
import { loginAdmin, PASSWORD, registerAndLogin } from '../helpers/http.js';
import { pkce } from '../helpers/oauth.js';
import { rfc6238 } from '../helpers/totp.js';

/** What an app's server got from the provider for the last sign-in. */
type SignedIn = { idToken: string; accessToken: string; claims: JWTPayload };

/**
 * A small server-side web app that signs its users in with the provider: its
 * home page links to /signin, which sends the browser to /oauth2/authorize;
 * /callback checks state and iss, exchanges the code and verifies the ID token;
 * /signout is RP-initiated logout back to /signed-out. No library: raw fetch and jose.
 */
class RelyingParty {
  readonly failures: string[] = [];
  signedIn: SignedIn | null = null;
  clientId = '';
  secret = '';
  private readonly pending = new Map<string, { nonce: string; verifier: string }>();
  private readonly server: Server;
  private origin_ = '';
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(
    readonly name: string,
    private readonly issuer: string,
    private readonly now: () => number,
  ) {
    this.jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.failures.push(`${req.url}: ${err.message}`);
        // In the title too: a test waiting for another title reports this one.
        this.page(res, 500, `${this.name} failed: ${err.message}`, '');
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin_ = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  get origin(): string {
    return this.origin_;
  }
  get redirectUri(): string {
    return `${this.origin}/callback`;
  }
  get postLogoutRedirectUri(): string {
    return `${this.origin}/signed-out`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const q = url.searchParams;
    switch (url.pathname) {
      case '/':
        return this.page(res, 200, this.name, '<p><a href="/signin">Sign in with auth-system</a></p>');
      case '/signin': {
        const state = randomBytes(16).toString('base64url');
        const nonce = randomBytes(16).toString('base64url');
        const { verifier, challenge } = await pkce();
        this.pending.set(state, { nonce, verifier });
        const authorize = new URLSearchParams({
          client_id: this.clientId,
          redirect_uri: this.redirectUri,
          response_type: 'code',
          scope: 'openid profile email',
          state,
          nonce,
          code_challenge: challenge,
          code_challenge_method: 'S256',
          ...(q.get('prompt') ? { prompt: q.get('prompt')! } : {}),
        });
        return this.redirect(res, `${this.issuer}/oauth2/authorize?${authorize}`);
      }
      case '/callback': {
        const state = q.get('state') ?? '';
        const flow = this.pending.get(state);
        if (!flow) throw new Error(`unknown state ${state}`);
        this.pending.delete(state);
        if (q.get('iss') !== this.issuer) throw new Error(`iss ${q.get('iss')} is not ${this.issuer}`);
        const error = q.get('error');
        if (error) return this.page(res, 200, `${this.name}: not signed in`, `<p id="error">${html(error)}</p>`);
        const signedIn = await this.exchange(q.get('code') ?? '', flow);
        this.signedIn = signedIn;
        const { email, name } = signedIn.claims as { email?: string; name?: string };
        return this.page(
          res,
          200,
          `${this.name}: signed in`,
          `<p>Name: <span id="name">${html(name ?? '')}</span></p><p>Email: <span id="email">${html(email ?? '')}</span></p>`,
        );
      }
      case '/signout': {
        if (!this.signedIn) throw new Error('not signed in');
        const logout = new URLSearchParams({
          id_token_hint: this.signedIn.idToken,
          post_logout_redirect_uri: this.postLogoutRedirectUri,
          state: 'bye',
        });
        this.signedIn = null;
        return this.redirect(res, `${this.issuer}/oauth2/logout?${logout}`);
      }
      case '/signed-out':
        if (q.get('state') !== 'bye') throw new Error(`state ${q.get('state')} after logout`);
        return this.page(res, 200, `${this.name}: signed out`, '<p><a href="/signin">Sign in again</a></p>');
      default:
        return this.page(res, 404, 'Not found', '');
    }
  }

  /** The back channel: the code for tokens (client_secret_basic, the PKCE verifier), the ID token checked. */
  private async exchange(code: string, flow: { nonce: string; verifier: string }): Promise<SignedIn> {
    const basic = Buffer.from(`${encodeURIComponent(this.clientId)}:${encodeURIComponent(this.secret)}`).toString('base64');
    const res = await fetch(`${this.issuer}/oauth2/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: this.redirectUri, code_verifier: flow.verifier }),
    });
    const body = (await res.json()) as { id_token?: string; access_token?: string; token_type?: string; error?: string };
    if (res.status !== 200 || !body.id_token || !body.access_token)
      throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`);
    if (body.token_type?.toLowerCase() !== 'bearer') throw new Error(`token_type ${body.token_type}`);
    const { payload } = await jwtVerify(body.id_token, this.jwks, {
      issuer: this.issuer,
      audience: this.clientId,
      algorithms: ['RS256'],
      currentDate: new Date(this.now()),
    });
    if (payload.nonce !== flow.nonce) throw new Error(`nonce ${payload.nonce} is not the one sent`);
    return { idToken: body.id_token, accessToken: body.access_token, claims: payload };
  }

  private redirect(res: ServerResponse, location: string): void {
    res.writeHead(302, { location, 'cache-control': 'no-store' }).end();
  }

  private page(res: ServerResponse, status: number, title: string, body: string): void {
    res
      .writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(`<!doctype html><html><head><title>${html(title)}</title></head><body><h1>${html(title)}</h1>${body}</body></html>`);
  }
}

const html = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A document the browser loaded in a navigation (each redirect of it too). */
type Loaded = { status: number; url: URL; contentType: string };

describe('single sign-on across two apps in a browser', () => {
  const b = useBrowserApp();
  const apps: RelyingParty[] = [];
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop()));
  });

  /** An app on its own port, registered through the admin API as a confidential client. */
  async function app(name: string, firstParty: boolean): Promise<RelyingParty> {
    const rp = await new RelyingParty(name, b.origin, b.clock.now).start();
    apps.push(rp);
    const admin = await loginAdmin(b.call);
    const created = await b.call('POST', '/admin/clients', {
      token: admin.accessToken,
      body: {
        name,
        type: 'confidential',
        redirectUris: [rp.redirectUri],
        postLogoutRedirectUris: [rp.postLogoutRedirectUri],
        grantTypes: ['authorization_code'],
        scopes: ['openid', 'profile', 'email'],
        firstParty,
      },
    });
    expect(created.status, created.text).toBe(201);
    rp.clientId = created.body.id;
    rp.secret = created.body.clientSecret;
    return rp;
  }

  /** Every document the tab loads from now on (navigations, redirects included). */
  function documents(tab: Tab): Loaded[] {
    const loaded: Loaded[] = [];
    tab.page.on('response', (res) => {
      if (!res.request().isNavigationRequest()) return;
      loaded.push({ status: res.status(), url: new URL(res.url()), contentType: res.headers()['content-type'] ?? '' });
    });
    return loaded;
  }

  /** The documents loaded, as "STATUS WHO PATH" (WHO: service, or A and B, the apps in the order made). */
  const chain = (loaded: Loaded[]): string[] =>
    loaded.map((d) => {
      const app = apps.findIndex((a) => a.origin === d.url.origin);
      const who = d.url.origin === b.origin ? 'service' : app >= 0 ? 'AB'[app] : d.url.origin;
      return `${d.status} ${who} ${d.url.pathname}`;
    });

  const userinfo = (accessToken: string) => fetch(`${b.origin}/oauth2/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });

  it('sign in to app A with password, TOTP and consent; app B with prompt=none; RP-initiated logout from A ends both', async () => {
    const a = await app('Team Wiki', false);
    const bApp = await app('Notes', true);

    // A user with TOTP, enrolled through the API.
    const user = await registerAndLogin(b.call, { name: 'Ada Lovelace' });
    const enrol = await b.call('POST', '/users/me/mfa/totp', { token: user.accessToken, body: { currentPassword: PASSWORD } });
    expect(enrol.status, enrol.text).toBe(200);
    b.clock.nextStep();
    const confirm = await b.call('POST', '/users/me/mfa/totp/confirm', {
      token: user.accessToken,
      body: { code: rfc6238(enrol.body.secret, b.clock.now()) },
    });
    expect(confirm.status, confirm.text).toBe(200);

    const tab = await openTab(b.browser, b, { otherOrigins: [a.origin, bApp.origin] });
    const { page } = tab;
    const loaded = documents(tab);

    // 1. App A: its link sends the browser to /oauth2/authorize, which sends it on to /login.
    await page.goto(`${a.origin}/`);
    await page.getByRole('link', { name: 'Sign in with auth-system' }).click();
    await page.waitForURL((u) => u.origin === b.origin && u.pathname === '/login');
    await submitLogin(page, user.email, PASSWORD);
    // The second step, with a code of the next time step (a code is used once).
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Second step');
    b.clock.nextStep();
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(rfc6238(enrol.body.secret, b.clock.now()));
    await page.getByRole('button', { name: 'Continue' }).click();
    // Back at the authorization, which asks for consent: app A is not first party.
    await expect.poll(() => page.title()).toBe('Allow Team Wiki? · auth-system');
    expect(new URL(page.url()).origin).toBe(b.origin);
    await screenshot(page, 'consent');
    await page.getByRole('button', { name: 'Allow' }).click();
    // App A's callback exchanged the code and shows who signed in, from the verified ID token.
    await page.waitForURL((u) => u.origin === a.origin && u.pathname === '/callback');
    await expect.poll(() => page.title()).toBe('Team Wiki: signed in');
    expect(await page.locator('#email').textContent()).toBe(user.email);
    expect(await page.locator('#name').textContent()).toBe('Ada Lovelace');
    expect(a.failures).toEqual([]);
    const signedInA = a.signedIn!;
    expect(signedInA.claims).toMatchObject({ sub: user.userId, azp: a.clientId, amr: ['pwd', 'otp'], email_verified: false });
    expect(typeof signedInA.claims.sid).toBe('string');
    // The way there: A, the authorization, /login (its second step is in the page), back, consent, A.
    expect(chain(loaded)).toEqual([
      '200 A /',
      '302 A /signin',
      '302 service /oauth2/authorize',
      '200 service /login',
      '302 service /oauth2/authorize',
      '200 service /oauth2/consent',
      '303 service /oauth2/consent',
      '200 A /callback',
    ]);

    // 2. App B, first party, with prompt=none: the browser session answers; no page of the service shows.
    loaded.length = 0;
    await page.goto(`${bApp.origin}/signin?prompt=none`);
    await expect.poll(() => page.title()).toBe('Notes: signed in');
    expect(await page.locator('#email').textContent()).toBe(user.email);
    expect(bApp.failures).toEqual([]);
    expect(chain(loaded)).toEqual(['302 B /signin', '302 service /oauth2/authorize', '200 B /callback']);
    expect(loaded.filter((d) => d.url.origin === b.origin && d.contentType.includes('text/html'))).toEqual([]);
    const signedInB = bApp.signedIn!;
    // The same sign-in: the same user and session, with the MFA it was made with.
    expect(signedInB.claims).toMatchObject({ sub: user.userId, aud: bApp.clientId, sid: signedInA.claims.sid, amr: ['pwd', 'otp'] });
    expect(signedInB.claims.auth_time).toBe(signedInA.claims.auth_time);
    // Both apps' access tokens work at userinfo.
    for (const token of [signedInA.accessToken, signedInB.accessToken]) {
      const res = await userinfo(token);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ sub: user.userId, email: user.email });
    }

    // 3. RP-initiated logout from app A, with its ID token as the hint: straight back to A, no page asks.
    loaded.length = 0;
    await page.goto(`${a.origin}/signout`);
    await expect.poll(() => page.title()).toBe('Team Wiki: signed out');
    expect(new URL(page.url()).href).toBe(`${a.postLogoutRedirectUri}?state=bye`);
    expect(chain(loaded)).toEqual(['302 A /signout', '302 service /oauth2/logout', '200 A /signed-out']);
    expect(a.failures).toEqual([]);

    // The browser session is gone: app B's prompt=none is now login_required.
    await page.goto(`${bApp.origin}/signin?prompt=none`);
    await expect.poll(() => page.title()).toBe('Notes: not signed in');
    expect(await page.locator('#error').textContent()).toBe('login_required');
    expect(bApp.failures).toEqual([]);

    // And the session behind both apps' access tokens has ended.
    for (const token of [signedInA.accessToken, signedInB.accessToken]) {
      const res = await userinfo(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    }

    // The password step answers 401 mfa_required, which the login page takes as the next step.
    expectClean(tab, { http: ['POST /auth/login 401'] });
    await tab.context.close();
  });
});

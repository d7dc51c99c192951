// Sign-in with an external identity provider in headless Chromium, as a user
// meets it: the "Continue with …" button on /login, the provider's own sign-in
// and consent pages (oidc-provider on another origin), and back on /account
// signed in with the identity listed; linking from /account; the MFA step the
// callback hands to /login in the fragment; unlinking; the console's section.
// Every tab ends with no script error, CSP violation or request to an origin
// other than the service's and the provider's (test/helpers/browser.ts).
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN } from '../helpers/app.js';
import { claimsOf, expectClean, landsOn, openTab, screenshot, signIn, storedTokens, type Tab, useBrowserApp } from '../helpers/browser.js';
import { login, loginAdmin, PASSWORD, registerAndLogin, uniqueEmail } from '../helpers/http.js';
import { type PeerProvider, startOidcProvider } from '../helpers/oidc-peers.js';
import { rfc6238 } from '../helpers/totp.js';

const IDP = { id: 'acme', name: 'Acme ID' };
const CLIENT = { id: 'auth-system-pages', secret: 'upstream-client-secret-of-the-test' };

/** Sign `accountId` in on the provider's development pages (its login form takes any password), consenting when asked. */
async function signInAtUpstream(page: Page, upstream: PeerProvider, accountId: string): Promise<void> {
  for (let step = 0; step < 4; step++) {
    await page.waitForLoadState('domcontentloaded');
    if (!page.url().startsWith(upstream.issuer)) return;
    const login = page.locator('input[name="login"]');
    if (await login.count()) {
      await login.fill(accountId);
      await page.locator('input[name="password"]').fill('any password');
    }
    const before = page.url();
    await page.locator('button[type="submit"]').first().click();
    await page.waitForURL((u) => u.href !== before, { waitUntil: 'domcontentloaded' });
  }
  throw new Error(`still at the provider: ${page.url()}`);
}

describe('sign-in with an external identity provider, in a browser', () => {
  const b = useBrowserApp();
  let upstream: PeerProvider;
  const accounts: Record<string, { email: string; email_verified?: boolean; name?: string }> = {};
  /** What the provider's own pages asked of other origins (its development pages load a web font): not the service's doing. */
  const fromUpstream = new WeakMap<Tab, Set<string>>();
  const open = async (path: string): Promise<Tab> => {
    const tab = await openTab(b.browser, b, { otherOrigins: [upstream.issuer] });
    const asked = new Set<string>();
    fromUpstream.set(tab, asked);
    tab.context.on('request', (req) => {
      if (req.frame().url().startsWith(`${upstream.issuer}/`)) asked.add(`${req.method()} ${req.url()}`);
    });
    // Nothing leaves the machine: the provider page's font stylesheet is answered empty here.
    await tab.context.route(/^https:\/\/fonts\.(googleapis|gstatic)\.com\//, (route) =>
      route.fulfill({ status: 200, contentType: 'text/css', body: '' }),
    );
    await tab.page.goto(path);
    return tab;
  };
  /** expectClean for the service's pages: what the provider's pages did is theirs. */
  const expectOursClean = (tab: Tab, opts: { http?: string[] } = {}) => {
    const asked = fromUpstream.get(tab) ?? new Set<string>();
    tab.problems.foreign = tab.problems.foreign.filter((r) => !asked.has(r));
    tab.problems.consoleErrors = tab.problems.consoleErrors.filter((e) => !e.startsWith(`${upstream.issuer}/`));
    expectClean(tab, opts);
  };

  beforeAll(async () => {
    upstream = await startOidcProvider({
      clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret, redirect_uris: [`${b.origin}/auth/external/${IDP.id}/callback`] }],
      accounts,
    });
    const admin = await loginAdmin(b.call);
    const made = await b.call('POST', '/admin/identity-providers', {
      token: admin.accessToken,
      body: {
        id: IDP.id,
        type: 'oidc',
        name: IDP.name,
        issuer: upstream.issuer,
        clientId: CLIENT.id,
        clientSecret: CLIENT.secret,
        trustEmailVerified: true,
      },
    });
    expect(made.status, made.text).toBe(201);
  });
  afterAll(async () => {
    await upstream?.stop();
  });

  it('signs up from the /login button through the provider, and lands on /account signed in with the identity listed', async () => {
    const email = uniqueEmail('ext');
    const id = 'grace';
    accounts[id] = { email, email_verified: true, name: 'Grace Hopper' };
    const tab = await open('/login');
    const { page } = tab;
    const button = page.getByRole('link', { name: `Continue with ${IDP.name}` });
    expect(await button.getAttribute('href')).toBe(`/auth/external/${IDP.id}?next=%2Faccount`);
    await button.click();
    await page.waitForURL((u) => u.href.startsWith(upstream.issuer));
    await signInAtUpstream(page, upstream, id);
    await landsOn(page, '/account');
    await expect.poll(() => page.locator('.who').first().textContent()).toContain(email);
    const linked = page.getByRole('region', { name: 'Linked sign-in methods' });
    await expect.poll(() => linked.getByRole('listitem').allInnerTexts()).toEqual([expect.stringContaining(`${IDP.name} · ${email}`)]);
    // The tab holds its own token pair now, from the browser session the callback set.
    const tokens = await storedTokens(page);
    expect(claimsOf(tokens!.accessToken).amr).toEqual(['fed']);
    // No password: signing out ends it; /account then sends to /login.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await landsOn(page, '/login');
    await page.goto('/account');
    await landsOn(page, '/login');
    expectOursClean(tab, { http: ['POST /session/tokens 401'] });
    await tab.context.close();
  });

  it('links the provider from /account; with TOTP on, its sign-in asks for the code on /login; unlinking needs the password and code', async () => {
    const s = await registerAndLogin(b.call, { name: 'Alan Turing' });
    const alan = { id: 'alan', email: uniqueEmail('upstream-alan'), email_verified: true, name: 'Alan T.' };
    accounts[alan.id] = alan;
    const tab = await open('/login');
    const { page } = tab;
    await signIn(page, s.email, PASSWORD);
    const linked = page.getByRole('region', { name: 'Linked sign-in methods' });
    await linked.getByText('No identity provider linked.').waitFor();
    await linked.getByRole('link', { name: `Link ${IDP.name}` }).click();
    await page.waitForURL((u) => u.href.startsWith(upstream.issuer));
    await signInAtUpstream(page, upstream, alan.id);
    await landsOn(page, '/account');
    await expect.poll(() => linked.getByRole('listitem').allInnerTexts()).toEqual([expect.stringContaining(`${IDP.name} · ${alan.email}`)]);
    expect(await linked.getByRole('link', { name: `Link ${IDP.name}` }).count()).toBe(0);
    const [identity] = (await b.call('GET', '/users/me/identities', { token: s.accessToken })).body.items;
    expect(identity).toMatchObject({ provider: IDP.id, email: alan.email });

    // TOTP on (through the API), then signed out everywhere in this browser.
    const enrol = await b.call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: { currentPassword: PASSWORD } });
    expect(enrol.status, enrol.text).toBe(200);
    b.clock.nextStep();
    const confirm = await b.call('POST', '/users/me/mfa/totp/confirm', {
      token: s.accessToken,
      body: { code: rfc6238(enrol.body.secret, b.clock.now()) },
    });
    expect(confirm.status, confirm.text).toBe(200);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await landsOn(page, '/login');

    // The provider's sign-in (its session there is still live: no form) ends on /login's second step, the fragment gone.
    await page.getByRole('link', { name: `Continue with ${IDP.name}` }).click();
    await page.waitForURL((u) => u.pathname === '/login');
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Second step');
    expect(new URL(page.url()).hash).toBe('');
    b.clock.nextStep();
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(rfc6238(enrol.body.secret, b.clock.now()));
    await page.getByRole('button', { name: 'Continue' }).click();
    await landsOn(page, '/account');
    expect(claimsOf((await storedTokens(page))!.accessToken).amr).toEqual(['fed', 'otp']);

    // Unlink: the current password and a code.
    await linked.getByRole('button', { name: `Unlink ${IDP.name}` }).click();
    const form = page.getByRole('form', { name: `Confirm: unlink ${IDP.name}` });
    await form.getByLabel('Current password').fill('not the password');
    b.clock.nextStep();
    await form.getByLabel('Authenticator or recovery code').fill(rfc6238(enrol.body.secret, b.clock.now()));
    await form.getByRole('button', { name: 'Unlink' }).click();
    await form.getByRole('alert').waitFor();
    await form.getByLabel('Current password').fill(PASSWORD);
    b.clock.nextStep();
    await form.getByLabel('Authenticator or recovery code').fill(rfc6238(enrol.body.secret, b.clock.now()));
    await form.getByRole('button', { name: 'Unlink' }).click();
    await linked.getByText('No identity provider linked.').waitFor();
    const listed = await b.call('GET', '/users/me/identities', { token: s.accessToken });
    expect(listed.body.items).toEqual([]);
    expectOursClean(tab, { http: [`DELETE /users/me/identities/${identity.id} 403`] });
    await tab.context.close();
  });

  it('an account without a password: the last way to sign in stays (in plain words), a first password is set with no current one, then the provider unlinks', async () => {
    const ada = { id: 'ada', email: uniqueEmail('ext-ada'), email_verified: true, name: 'Ada' };
    accounts[ada.id] = ada;
    const tab = await open('/login');
    const { page } = tab;
    await page.getByRole('link', { name: `Continue with ${IDP.name}` }).click();
    await signInAtUpstream(page, upstream, ada.id);
    await landsOn(page, '/account');
    const linked = page.getByRole('region', { name: 'Linked sign-in methods' });
    const unlink = linked.getByRole('button', { name: `Unlink ${IDP.name}` });
    await unlink.waitFor();
    const token = (await storedTokens(page))!.accessToken;
    const [identity] = (await b.call('GET', '/users/me/identities', { token })).body.items;

    // The only way in: refused, and said so. No password is asked for: the sign-in a moment ago is the proof.
    await unlink.click();
    const form = page.getByRole('form', { name: `Confirm: unlink ${IDP.name}` });
    expect(await form.getByLabel('Current password').count()).toBe(0);
    await form.getByRole('button', { name: 'Unlink' }).click();
    await expect.poll(() => form.getByRole('alert').textContent()).toContain('only way left to sign in');

    // A first password, with no current one.
    const password = page.getByRole('region', { name: 'Password' });
    expect(await password.getByLabel('Current password').count()).toBe(0);
    await password.getByLabel('New password').fill(PASSWORD);
    await password.getByRole('button', { name: 'Set a password' }).click();
    await password.getByRole('status').waitFor();

    // Now the password is the step-up, and the provider can go.
    await page.reload();
    await unlink.click();
    await form.getByLabel('Current password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Unlink' }).click();
    await linked.getByText('No identity provider linked.').waitFor();
    expect((await login(b.call, ada.email, PASSWORD)).accessToken).toBeTruthy();
    expectOursClean(tab, { http: [`DELETE /users/me/identities/${identity.id} 409`] });
    await tab.context.close();
  });

  it('the console adds, disables and deletes a provider; /login shows the enabled ones (docs/screenshots/login-providers.png)', async () => {
    const tab = await open('/login');
    const { page } = tab;
    await signIn(page, ADMIN.email, ADMIN.password, '/console');
    await page.getByRole('tab', { name: 'Identity providers' }).click();
    const section = page.getByRole('region', { name: 'Identity providers' });
    await expect.poll(() => section.locator('tbody').textContent()).toContain(IDP.name);
    await section.getByText('Add an identity provider').click();
    const form = section.getByRole('form', { name: 'New identity provider' });
    await form.getByLabel('Id', { exact: true }).fill('bad id');
    await form.getByLabel(/^Name/).fill('Example GitHub');
    await form.getByLabel('Type').selectOption('github');
    await form.getByLabel('Client id').fill('Iv1.0123456789abcdef');
    await form.getByLabel('Client secret', { exact: true }).fill('github-secret');
    await form.getByRole('button', { name: 'Add the provider' }).click();
    await form.getByRole('alert').waitFor();
    await form.getByLabel('Id', { exact: true }).fill('github');
    await form.getByRole('button', { name: 'Add the provider' }).click();
    const detail = section.getByRole('region', { name: 'Identity provider github' });
    await expect.poll(() => detail.textContent()).toContain('secret stored');
    expect(await detail.textContent()).not.toContain('github-secret');

    // Both on /login.
    const visitor = await open('/login');
    const buttons = visitor.page.getByRole('navigation', { name: 'Sign in with another provider' }).getByRole('link');
    await expect.poll(() => buttons.allInnerTexts()).toEqual([`Continue with ${IDP.name}`, 'Continue with Example GitHub']);
    await screenshot(visitor.page, 'login-providers');
    // /register too, each button carrying the page's next.
    await visitor.page.goto('/register?next=/console');
    const signUp = visitor.page.getByRole('navigation', { name: 'Sign up with another provider' }).getByRole('link');
    await expect.poll(() => signUp.allInnerTexts()).toEqual([`Continue with ${IDP.name}`, 'Continue with Example GitHub']);
    expect(await signUp.first().getAttribute('href')).toBe(`/auth/external/${IDP.id}?next=%2Fconsole`);
    await visitor.page.goto('/login');

    // Edited: a GitHub Enterprise Server and a new secret (the stored one is never shown, only that there is one).
    await detail.getByText('Edit the provider or set its secret').click();
    const edit = detail.getByRole('form', { name: 'Edit github' });
    await edit.getByLabel('GitHub URL').fill('https://github.example.com');
    await edit.getByLabel('GitHub API URL').fill('https://github.example.com/api/v3');
    await edit.getByLabel('New client secret').fill('another-github-secret');
    await edit.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => detail.locator('.who').first().textContent()).toContain('GitHub · https://github.example.com');
    const stored = await b.call('GET', '/admin/identity-providers/github', { token: (await storedTokens(page))!.accessToken });
    expect(stored.body).toMatchObject({ githubApiUrl: 'https://github.example.com/api/v3', hasClientSecret: true });
    expect(stored.text).not.toContain('another-github-secret');

    // Disabled: gone from /login; deleted: gone from the console.
    await detail.getByRole('button', { name: 'Disable' }).click();
    await expect.poll(() => detail.textContent()).toContain('disabled');
    await visitor.page.reload();
    await expect.poll(() => buttons.allInnerTexts()).toEqual([`Continue with ${IDP.name}`]);
    page.once('dialog', (d) => void d.accept());
    await detail.getByRole('button', { name: 'Delete the provider' }).click();
    await expect.poll(() => section.locator('tbody').textContent()).not.toContain('Example GitHub');
    expectOursClean(visitor);
    expectOursClean(tab, { http: ['POST /admin/identity-providers 400'] });
    await visitor.context.close();
    await tab.context.close();
  });
});

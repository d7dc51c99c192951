// The provider's browser session in headless Chromium: signing in on /login
// leaves the HttpOnly cookie of that sign-in, /login resumes an authorization
// waiting for it, signing out ends it, and /account shows the connected apps.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadBrowserSession } from '../../src/access/browser-session.js';
import { oauthClients, oauthGrants } from '../../src/db/schema.js';
import { claimsOf, expectClean, landsOn, signIn, storedTokens, submitLogin, useBrowserApp } from '../helpers/browser.js';
import { PASSWORD, registerAndLogin } from '../helpers/http.js';
import { rfc6238 } from '../helpers/totp.js';

const RESUME = '/oauth2/authorize?interaction=abcdefghijklmnop';

describe('the browser session in a browser', () => {
  const b = useBrowserApp();

  const browserCookie = async (tab: { context: import('playwright-core').BrowserContext }) =>
    (await tab.context.cookies(b.origin)).find((c) => c.name === 'auth_session');

  it('signing in on /login sets the HttpOnly, SameSite=Lax cookie of that sign-in; signing out ends it', async () => {
    const s = await registerAndLogin(b.call);
    const tab = await b.open('/login');
    const { page } = tab;
    await signIn(page, s.email, PASSWORD);

    const cookie = await browserCookie(tab);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', secure: false });
    const tokens = await storedTokens(page);
    const sid = claimsOf(tokens!.accessToken).sid as string;
    expect(cookie!.value.startsWith(`${sid}.`)).toBe(true);
    // Scripts of the page cannot read it.
    expect(await page.evaluate(() => document.cookie)).not.toContain('auth_session');
    expect(await loadBrowserSession(b.t.deps.database.db, cookie!.value, b.clock.now())).toMatchObject({
      sessionId: sid,
      userId: s.userId,
    });

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await landsOn(page, '/login');
    expect(await browserCookie(tab)).toBeUndefined();
    expect(await loadBrowserSession(b.t.deps.database.db, cookie!.value, b.clock.now())).toBeNull();
    expectClean(tab);
    await tab.context.close();
  });

  it('/login?next=<an authorization> shows the form even with tokens held, says why, and resumes it after sign-in', async () => {
    const s = await registerAndLogin(b.call);
    const tab = await b.open('/login');
    const { page } = tab;
    await signIn(page, s.email, PASSWORD);
    const first = (await browserCookie(tab))!.value;

    // Already signed in in this tab: an app asking for a fresh sign-in (prompt=login) still gets the form.
    await page.goto(`/login?next=${encodeURIComponent(RESUME)}`);
    await expect.poll(() => page.getByText('Sign in to continue to the app').isVisible()).toBe(true);
    await submitLogin(page, s.email, PASSWORD);
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
    expect(new URL(page.url()).search).toBe('?interaction=abcdefghijklmnop');
    // The new sign-in is the browser session now.
    const second = (await browserCookie(tab))!.value;
    expect(second.split('.')[0]).not.toBe(first.split('.')[0]);
    expect(tab.problems).toEqual({ consoleErrors: [], pageErrors: [], csp: [], foreign: [] });
    await tab.context.close();
  });

  it('after the MFA step too: the cookie carries the second factor, and the authorization resumes', async () => {
    const s = await registerAndLogin(b.call);
    const enrol = await b.call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: { currentPassword: PASSWORD } });
    expect(enrol.status, enrol.text).toBe(200);
    b.clock.nextStep();
    const confirm = await b.call('POST', '/users/me/mfa/totp/confirm', {
      token: s.accessToken,
      body: { code: rfc6238(enrol.body.secret, b.clock.now()) },
    });
    expect(confirm.status, confirm.text).toBe(200);

    const tab = await b.open(`/login?next=${encodeURIComponent(RESUME)}`);
    const { page } = tab;
    await submitLogin(page, s.email, PASSWORD);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Second step');
    b.clock.nextStep();
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(rfc6238(enrol.body.secret, b.clock.now()));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
    const cookie = (await browserCookie(tab))!;
    expect(await loadBrowserSession(b.t.deps.database.db, cookie.value, b.clock.now())).toMatchObject({
      userId: s.userId,
      amr: ['pwd', 'otp'],
    });
    await tab.context.close();
  });

  it('any other next is refused: the sign-in lands on /account', async () => {
    const s = await registerAndLogin(b.call);
    const tab = await b.open(`/login?next=${encodeURIComponent('/oauth2/authorize?interaction=short')}`);
    const { page } = tab;
    expect(await page.getByText('Sign in to continue to the app').count()).toBe(0);
    await submitLogin(page, s.email, PASSWORD);
    await landsOn(page, '/account');
    expect(await browserCookie(tab)).toBeDefined();
    await tab.context.close();
  });

  it('/account lists the connected apps and revokes one', async () => {
    const s = await registerAndLogin(b.call);
    // Test setup only: the consent page that writes grants is built elsewhere.
    const clientId = `notes-${randomBytes(4).toString('hex')}`;
    const db = b.t.deps.database.db;
    await db.insert(oauthClients).values({ id: clientId, name: 'Notes', type: 'public' });
    await db.insert(oauthGrants).values({ userId: s.userId, clientId, scopes: 'openid profile' });

    const tab = await b.open('/login');
    const { page } = tab;
    await signIn(page, s.email, PASSWORD);
    const apps = page.getByRole('list', { name: 'Your connected apps' });
    await expect.poll(() => apps.textContent()).toContain('Notes');
    expect(await apps.textContent()).toContain('openid, profile');
    await page.getByRole('button', { name: 'Revoke Notes' }).click();
    await expect.poll(() => page.getByText('No apps connected.').isVisible()).toBe(true);
    expect((await b.call('GET', '/users/me/grants', { token: s.accessToken })).body.items).toEqual([]);
    expectClean(tab);
    await tab.context.close();
  });
});

// The provider's own pages in headless Chromium: the consent page's Allow and
// the logout page's Sign out post forms whose answers redirect to the client,
// and Chromium applies the page's form-action to that redirect, so the
// client's origin must be allowed there (and nothing else breaks the CSP).
import { describe, expect, it } from 'vitest';
import { submitLogin, type Tab, useBrowserApp } from '../helpers/browser.js';
import { PASSWORD, registerAndLogin } from '../helpers/http.js';
import { authorizePath, browserCookieFor, type RegisteredClient, registerClient } from '../helpers/oauth.js';

const RP = 'https://rp.example';

describe('the provider pages in a browser', () => {
  const b = useBrowserApp();

  /** A tab whose browser holds a signed-in user's browser session, and the addresses of the client's site it set off for. */
  async function signedInTab(): Promise<{ tab: Tab; visited: string[] }> {
    const user = await registerAndLogin(b.call);
    const [name, value] = (await browserCookieFor(b.t, user)).split('=') as [string, string];
    const tab = await b.open('/login');
    await tab.context.addCookies([{ name, value, url: b.origin, httpOnly: true, sameSite: 'Lax' }]);
    // The client's site is not there: what matters is that the browser set off for it (Playwright cannot
    // fulfil the target of a redirect), which a form-action that forgot the client's origin would stop.
    const visited: string[] = [];
    tab.context.on('request', (req) => {
      if (new URL(req.url()).origin === RP) visited.push(req.url());
    });
    return { tab, visited };
  }

  const clientOf = (): Promise<RegisteredClient> =>
    registerClient(b.t, { name: 'Wiki', redirectUris: [`${RP}/cb`], postLogoutRedirectUris: [`${RP}/bye`] });

  it('Allow on the consent page lands on the client with a code, under the page CSP', async () => {
    const rp = await clientOf();
    const { tab, visited } = await signedInTab();
    const { page } = tab;
    await page.goto(authorizePath(rp, { scope: 'openid email', state: 'browser' }));
    await expect.poll(() => page.title()).toBe('Allow Wiki? · auth-system');
    await page.getByRole('button', { name: 'Allow' }).click();
    await expect.poll(() => visited.length).toBe(1);
    const back = new URL(visited[0]!);
    expect(back.origin + back.pathname).toBe(`${RP}/cb`);
    expect(back.searchParams.get('code')).toBeTruthy();
    expect(back.searchParams.get('state')).toBe('browser');
    expect(back.searchParams.get('iss')).toBe(b.origin);
    expect(tab.problems.csp).toEqual([]);
    expect(tab.problems.pageErrors).toEqual([]);
  });

  it('the whole flow: authorize, sign in on /login, come back, Allow, land on the client with a code', async () => {
    const rp = await clientOf();
    const user = await registerAndLogin(b.call);
    const tab = await b.open('/login');
    const visited: string[] = [];
    tab.context.on('request', (req) => {
      if (new URL(req.url()).origin === RP) visited.push(req.url());
    });
    const { page } = tab;
    await page.goto(authorizePath(rp, { scope: 'openid profile', state: 'whole' }));
    await page.waitForURL((u) => u.pathname === '/login');
    await submitLogin(page, user.email, PASSWORD);
    await expect.poll(() => page.title()).toBe('Allow Wiki? · auth-system');
    await page.getByRole('button', { name: 'Allow' }).click();
    await expect.poll(() => visited.length).toBe(1);
    const back = new URL(visited[0]!);
    expect(back.searchParams.get('code')).toBeTruthy();
    expect(back.searchParams.get('state')).toBe('whole');
    expect(tab.problems.csp).toEqual([]);
    expect(tab.problems.pageErrors).toEqual([]);
  });

  it('Deny lands on the client with access_denied', async () => {
    const rp = await clientOf();
    const { tab, visited } = await signedInTab();
    await tab.page.goto(authorizePath(rp, { scope: 'openid' }));
    await tab.page.getByRole('button', { name: 'Deny' }).click();
    await expect.poll(() => visited.length).toBe(1);
    expect(new URL(visited[0]!).searchParams.get('error')).toBe('access_denied');
    expect(tab.problems.csp).toEqual([]);
  });

  it('Sign out on the logout page ends the session and lands on the registered URI', async () => {
    const rp = await clientOf();
    const { tab, visited } = await signedInTab();
    const { page } = tab;
    const q = new URLSearchParams({ client_id: rp.id, post_logout_redirect_uri: rp.postLogoutRedirectUri, state: 'out' });
    await page.goto(`/oauth2/logout?${q}`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => visited.length).toBe(1);
    expect(visited[0]).toBe(`${RP}/bye?state=out`);
    expect(tab.problems.csp).toEqual([]);
    // The browser session is gone: prompt=none now says login_required.
    await page.goto(authorizePath(rp, { prompt: 'none' })).catch(() => {}); // ends on the client's (absent) site
    await expect.poll(() => visited.length).toBe(2);
    expect(new URL(visited[1]!).searchParams.get('error')).toBe('login_required');
  });
});
